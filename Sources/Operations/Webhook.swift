import Crypto
import Foundation

/// Checks a push webhook from GitHub, GitLab, or Gitea/Forgejo against the shared secret, and
/// says whether it asks for a pass.
///
/// - GitHub (and Gitea, Forgejo): `X-Hub-Signature-256: sha256=HEX`, the HMAC-SHA256 of the body.
/// - Gitea and Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature: HEX`, the same HMAC.
/// - GitLab: `X-Gitlab-Token`, the secret itself.
///
/// Secrets and signatures are compared in constant time.
public struct WebhookCheck: Sendable {
    let secret: [UInt8]
    /// The config branch: a push elsewhere changes nothing the reconciler reads.
    let branch: String

    public init(secret: String, branch: String) {
        self.secret = Array(secret.utf8)
        self.branch = branch
    }

    /// What becomes of a request.
    public enum Verdict: Sendable, Equatable {
        /// A push to the config branch: start a pass.
        case push(ref: String, provider: String)
        /// Authentic, but asks for nothing (a ping, another event, another branch).
        case ignored(String)
        /// No valid signature or token: 401.
        case unauthorized(String)
        /// Authentic, but not a push this reconciler understands: 400.
        case badRequest(String)

        /// The label it is counted under.
        public var result: String {
            switch self {
            case .push: "accepted"
            case .ignored: "ignored"
            case .unauthorized: "unauthorized"
            case .badRequest: "bad_request"
            }
        }
    }

    /// Judges a request by its headers (names in any case) and body.
    public func check(headers: [String: String], body: [UInt8]) -> Verdict {
        var lowered: [String: String] = [:]
        for (name, value) in headers { lowered[name.lowercased()] = value.trimmingCharacters(in: .whitespaces) }
        let provider: String
        let event: String?
        if let token = lowered["x-gitlab-token"] {
            provider = "GitLab"
            guard Self.sameBytes(Array(token.utf8), secret) else { return .unauthorized("the X-Gitlab-Token is not the secret") }
            event = lowered["x-gitlab-event"].map { $0 == "Push Hook" ? "push" : $0 }
        } else if let signature = lowered["x-hub-signature-256"] ?? lowered["x-gitea-signature"] ?? lowered["x-forgejo-signature"] {
            provider = lowered["x-gitea-event"] != nil ? "Gitea" : lowered["x-forgejo-event"] != nil ? "Forgejo" : "GitHub"
            let hex = signature.hasPrefix("sha256=") ? String(signature.dropFirst(7)) : signature
            guard let given = Self.bytes(hex: hex), given.count == SHA256.byteCount else {
                return .unauthorized("the signature is not a SHA-256 HMAC in hex")
            }
            guard HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: body, using: SymmetricKey(data: secret)) else {
                return .unauthorized("the signature does not match the body and the secret")
            }
            event = lowered["x-github-event"] ?? lowered["x-gitea-event"] ?? lowered["x-forgejo-event"]
        } else {
            return .unauthorized("the request carries no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token")
        }
        switch event {
        case "push": break
        case "ping": return .ignored("\(provider) ping")
        case let other?: return .ignored("\(provider) event \(other), not a push")
        case nil: return .badRequest("the \(provider) request names no event")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let ref = object["ref"] as? String else {
            return .badRequest("the \(provider) push body is not JSON with a ref")
        }
        guard ref == "refs/heads/\(branch)" else { return .ignored("a push to \(ref), not to the config branch \(branch)") }
        return .push(ref: ref, provider: provider)
    }

    /// Equal length and bytes, looked at in full whatever differs (through SHA-256 digests, whose
    /// comparison in swift-crypto takes the same time for any two).
    static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        SHA256.hash(data: a) == SHA256.hash(data: b)
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
