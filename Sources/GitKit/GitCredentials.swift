import CGit2
import CSSH2
import Foundation

/// Credentials for a remote, already resolved to values (never stored by GitKit), and how the
/// remote's identity is checked.
///
/// `file://` and local remotes need none. SSH remotes use `sshKey`, else the agent at
/// `SSH_AUTH_SOCK`; their host key must be in `knownHostsFile`. HTTPS remotes use `token` (or
/// `username` and `password`); their certificate must chain to the system CAs or `caFile`.
public struct GitCredentials: Sendable, Equatable {
    public struct SSHKey: Sendable, Equatable {
        public var privateKeyPath: String
        public var publicKeyPath: String?
        public var passphrase: String?
        public init(privateKeyPath: String, publicKeyPath: String? = nil, passphrase: String? = nil) {
            self.privateKeyPath = privateKeyPath
            self.publicKeyPath = publicKeyPath
            self.passphrase = passphrase
        }
    }

    public var username: String?
    public var sshKey: SSHKey?
    public var token: String?
    /// HTTPS basic authentication's password (with `username`).
    public var password: String?
    /// Ask the SSH agent at `SSH_AUTH_SOCK` for a key, when no `sshKey` is given.
    public var useAgent: Bool
    /// The known_hosts file SSH host keys are checked against (nil: `~/.ssh/known_hosts`).
    public var knownHostsFile: String?
    /// PEM certificates of the CAs an HTTPS remote's certificate must chain to (nil: the system's).
    public var caFile: String?
    /// A host key fingerprint (`SHA256:…`) the user checked: a key with it is recorded in
    /// `knownHostsFile` and accepted, in place of the key the file held.
    public var trustHostKey: String?

    public init(username: String? = nil, sshKey: SSHKey? = nil, token: String? = nil, password: String? = nil,
                useAgent: Bool = false, knownHostsFile: String? = nil, caFile: String? = nil, trustHostKey: String? = nil) {
        self.username = username
        self.sshKey = sshKey
        self.token = token
        self.password = password
        self.useAgent = useAgent
        self.knownHostsFile = knownHostsFile
        self.caFile = caFile
        self.trustHostKey = trustHostKey
    }

    public static let none = GitCredentials()

    /// The known_hosts file in effect.
    public var hostKeysFile: String { knownHostsFile ?? KnownHosts.defaultFile }
}

/// A remote's scheme, host and port, read from its URL (`ssh://user@host:port/path`, the
/// scp-like `user@host:path`, `https://host/path`).
public struct RemoteAddress: Sendable, Equatable {
    public var scheme: String
    public var user: String?
    public var host: String
    public var port: Int
    /// True when the URL carries a password (`https://user:secret@host/…`).
    public var hasPassword: Bool

    public init?(_ url: String) {
        if url.contains("://") {
            guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased() else { return nil }
            self.scheme = scheme
            user = parts.user
            hasPassword = parts.password != nil
            host = parts.host ?? ""
            port = parts.port ?? ["ssh": 22, "https": 443, "http": 80, "git": 9418][scheme] ?? 0
        } else if !url.hasPrefix("/"), let colon = url.firstIndex(of: ":"), !url[..<colon].contains("/") {
            // scp-like: [user@]host:path
            scheme = "ssh"
            let login = url[..<colon]
            if let at = login.lastIndex(of: "@") {
                user = String(login[..<at])
                host = String(login[login.index(after: at)...])
            } else {
                user = nil
                host = String(login)
            }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            port = 22
            hasPassword = false
        } else {
            return nil
        }
        if host.isEmpty && scheme != "file" { return nil }
    }

    public var isSSH: Bool { scheme == "ssh" || scheme == "git+ssh" || scheme == "ssh+git" }
    public var isHTTPS: Bool { scheme == "https" }
}

/// Carries the credentials into libgit2's C callbacks, and brings back what a push reported.
/// libgit2 calls the credential callback again after a rejected attempt, so the box counts
/// attempts and gives up instead of looping forever.
final class CredentialBox {
    let credentials: GitCredentials
    let url: String
    var attempts = 0
    /// Which credential the last attempt offered, to say what the remote refused.
    var offered: String?
    /// Why the remote's host key or certificate was refused (the sentence for the error).
    var refusal: String?
    /// Refs the remote refused in a push, with its reason (`push_update_reference`).
    var rejected: [(ref: String, reason: String)] = []
    init(_ credentials: GitCredentials, url: String) {
        self.credentials = credentials
        self.url = url
    }

    /// The error for a failed clone, fetch or push: a refused host key or certificate, or refused
    /// credentials, in words that say what to do; else libgit2's own. Never a secret.
    func failure(_ code: Int32, _ operation: String) -> GitError? {
        guard code < 0 else { return nil }
        if let refusal { return GitError(code: code, message: refusal, operation: operation) }
        // libssh2 says "Unable to extract public key from private key file: Wrong passphrase or
        // invalid/unrecognized private key file format": say which settings those are.
        if let key = credentials.sshKey, let last = git_error_last(), let text = last.pointee.message {
            let said = String(cString: text)
            if said.contains("private key") || said.contains("passphrase") {
                let passphrase = key.passphrase == nil ? "it has no passphrase set (credentials.sshKey.passphraseFrom)"
                    : "check credentials.sshKey.passphraseFrom"
                return GitError(code: code, message: "\(said) (the key is \(key.privateKeyPath), from credentials.sshKey.privateKey; "
                    + "\(passphrase))", operation: operation)
            }
        }
        if attempts > 2 || code == GIT_EAUTH.rawValue {
            let what = offered ?? "no credentials"
            let fix = offered == nil
                ? "set credentials in config.yaml (credentials.sshKey, or credentials.tokenFrom for HTTPS)"
                : "check that it is valid and allowed on the repository"
            return GitError(code: GIT_EAUTH.rawValue, message: "the remote refused \(what); \(fix)", operation: operation)
        }
        return nil
    }
}

let credentialCallback: git_credential_acquire_cb = { out, _, usernameFromURL, allowedTypes, payload in
    guard let out, let payload else { return GIT_PASSTHROUGH.rawValue }
    let box = Unmanaged<CredentialBox>.fromOpaque(payload).takeUnretainedValue()
    box.attempts += 1
    guard box.attempts <= 2 else { return GIT_EAUTH.rawValue }
    let creds = box.credentials
    let user = creds.username ?? usernameFromURL.map { String(cString: $0) } ?? "git"
    if allowedTypes & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 {
        if let key = creds.sshKey {
            box.offered = "the SSH key \(key.privateKeyPath) for user \(user)"
            return git_credential_ssh_key_new(out, user, key.publicKeyPath, key.privateKeyPath, key.passphrase)
        }
        if creds.useAgent {
            box.offered = "the SSH agent's keys (SSH_AUTH_SOCK) for user \(user)"
            return git_credential_ssh_key_from_agent(out, user)
        }
    }
    if allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0 {
        if let token = creds.token {
            let name = creds.username ?? "x-access-token"
            box.offered = "the token (credentials.tokenFrom) for user \(name)"
            return git_credential_userpass_plaintext_new(out, name, token)
        }
        if let password = creds.password, let name = creds.username {
            box.offered = "the password (credentials.passwordFrom) for user \(name)"
            return git_credential_userpass_plaintext_new(out, name, password)
        }
    }
    if allowedTypes & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
        return git_credential_username_new(out, user)
    }
    return GIT_PASSTHROUGH.rawValue
}

/// Checks the remote's identity: an SSH host key against the known_hosts file, an HTTPS
/// certificate by libgit2's verification against the trusted CAs. Nothing is sent before.
let certificateCallback: git_transport_certificate_check_cb = { cert, valid, hostName, payload in
    guard let cert, let payload else { return GIT_ECERTIFICATE.rawValue }
    let box = Unmanaged<CredentialBox>.fromOpaque(payload).takeUnretainedValue()
    let address = RemoteAddress(box.url)
    let host = address?.host ?? hostName.map { String(cString: $0) } ?? "the remote"
    func refuse(_ sentence: String) -> Int32 {
        box.refusal = sentence
        git_error_set_str(Int32(GIT_ERROR_SSH.rawValue), sentence)
        return GIT_ECERTIFICATE.rawValue
    }
    switch cert.pointee.cert_type {
    case GIT_CERT_HOSTKEY_LIBSSH2:
        let port = address?.port ?? 22
        let name = KnownHosts.entryName(host: host, port: port)
        let file = box.credentials.hostKeysFile
        let presented = UnsafeRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
        guard presented.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0,
              presented.type.rawValue & GIT_CERT_SSH_SHA256.rawValue != 0,
              let raw = presented.hostkey, let type = libssh2KeyType(presented.raw_type) else {
            return refuse("the SSH host key of \(name) is of a type Syncwright cannot check against \(file); nothing was sent")
        }
        let blob = Array(UnsafeRawBufferPointer(start: raw, count: presented.hostkey_len))
        let sha = withUnsafeBytes(of: presented.hash_sha256) { Array($0) }
        let key = HostKey(blob: blob, sha256: sha, libssh2Type: type)
        let verdict: HostKeyVerdict
        do {
            verdict = try KnownHosts.check(key, host: host, port: port, in: file)
        } catch {
            return refuse("\(error); nothing was sent to \(name)")
        }
        if verdict == .known { return 0 }
        if let trusted = box.credentials.trustHostKey, trusted == key.fingerprint {
            do {
                try KnownHosts.trust(key, host: host, port: port, in: file)
                return 0
            } catch {
                return refuse("\(error)")
            }
        }
        let how = "check the fingerprint with the server's administrator (ssh-keygen -lf on the server's key), then "
            + "trust it with `syncwright init --trust-host-key \(key.fingerprint)`"
        if verdict == .changed {
            return refuse("the SSH host key of \(name) has CHANGED: it is now \(key.type) \(key.fingerprint), and \(file) "
                + "holds another; someone may be intercepting the connection, or the server's key was replaced. Nothing "
                + "was fetched or pushed; \(how)")
        }
        return refuse("the SSH host key of \(name) (\(key.type) \(key.fingerprint)) is not in \(file); nothing was "
            + "fetched or pushed; \(how)")
    case GIT_CERT_X509:
        if valid != 0 { return 0 }
        let cas = box.credentials.caFile.map { "the CAs in \($0) (caFile)" } ?? "the system's CAs"
        return refuse("the HTTPS certificate of \(host) is not trusted: it does not chain to \(cas), or does not name "
            + "\(host); nothing was sent. If the server uses a private CA, give its certificate as caFile in config.yaml")
    default:
        return valid != 0 ? 0 : refuse("\(host) presented no identity Syncwright can check; nothing was sent")
    }
}

/// libssh2's known_hosts key type for libgit2's.
private func libssh2KeyType(_ type: git_cert_ssh_raw_type_t) -> Int32? {
    switch type {
    case GIT_CERT_SSH_RAW_TYPE_RSA: return Int32(LIBSSH2_KNOWNHOST_KEY_SSHRSA)
    case GIT_CERT_SSH_RAW_TYPE_DSS: return Int32(LIBSSH2_KNOWNHOST_KEY_SSHDSS)
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: return Int32(LIBSSH2_KNOWNHOST_KEY_ECDSA_256)
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: return Int32(LIBSSH2_KNOWNHOST_KEY_ECDSA_384)
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: return Int32(LIBSSH2_KNOWNHOST_KEY_ECDSA_521)
    case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: return Int32(LIBSSH2_KNOWNHOST_KEY_ED25519)
    default: return nil
    }
}

/// The CA file in effect for HTTPS; libgit2 holds it process-wide, so it is set before each
/// connection (every connection of one reconciler uses the same).
private let caLock = NSLock()
nonisolated(unsafe) private var caInEffect: String?

/// Fills remote callbacks with the credential and identity callbacks for `box`; `box` must
/// outlive the call.
func configure(_ callbacks: inout git_remote_callbacks, with box: CredentialBox) throws(GitError) {
    callbacks.credentials = credentialCallback
    callbacks.certificate_check = certificateCallback
    callbacks.payload = Unmanaged.passUnretained(box).toOpaque()
    if RemoteAddress(box.url)?.isHTTPS == true {
        let file = box.credentials.caFile ?? systemCAFile
        caLock.lock()
        defer { caLock.unlock() }
        guard caInEffect != file else { return }
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw GitError(message: "the CA file \(file) cannot be read", operation: "connecting to \(box.url)")
        }
        try check(syncwright_git_set_ssl_cert_file(file), "loading the CA certificates in \(file)")
        caInEffect = file
    }
}

/// Debian's bundle of the system's trusted CAs (from ca-certificates).
let systemCAFile = "/etc/ssl/certs/ca-certificates.crt"
