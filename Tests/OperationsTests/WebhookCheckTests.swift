import Operations
import Testing

/// The push webhook's checks, against the providers' own documented examples.
@Suite struct WebhookCheckTests {
    /// GitHub's documented test values ("Validating webhook deliveries").
    static let githubSecret = "It's a Secret to Everybody"
    static let githubBody = Array("Hello, World!".utf8)
    static let githubSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    @Test func githubsDocumentedSignaturePassesAndAnyChangeFails() {
        let check = WebhookCheck(secret: Self.githubSecret, branch: "main")
        // Authentic, but the body is no push payload: the signature passed, the body did not.
        #expect(check.check(headers: ["X-Hub-Signature-256": Self.githubSignature, "X-GitHub-Event": "push"],
                            body: Self.githubBody) == .badRequest("the GitHub push body is not JSON with a ref"))
        var tampered = Self.githubBody
        tampered[0] ^= 1
        #expect(check.check(headers: ["X-Hub-Signature-256": Self.githubSignature, "X-GitHub-Event": "push"], body: tampered)
            == .unauthorized("the signature does not match the body and the secret"))
        let other = WebhookCheck(secret: "another secret", branch: "main")
        #expect(other.check(headers: ["x-hub-signature-256": Self.githubSignature, "x-github-event": "push"], body: Self.githubBody)
            .result == "unauthorized")
    }

    @Test func eachProviderIsReadByItsOwnHeaders() {
        let check = WebhookCheck(secret: "s3cret", branch: "main")
        let push = Array(#"{"ref":"refs/heads/main"}"#.utf8)
        #expect(check.check(headers: ["X-Gitlab-Token": "s3cret", "X-Gitlab-Event": "Push Hook"], body: push)
            == .push(ref: "refs/heads/main", provider: "GitLab"))
        #expect(check.check(headers: ["X-Gitlab-Token": "s3cret!", "X-Gitlab-Event": "Push Hook"], body: push).result == "unauthorized")
        #expect(check.check(headers: ["X-Gitlab-Token": "s3cret", "X-Gitlab-Event": "Tag Push Hook"], body: push)
            == .ignored("GitLab event Tag Push Hook, not a push"))
        #expect(check.check(headers: [:], body: push).result == "unauthorized")
        #expect(check.check(headers: ["X-Hub-Signature-256": "sha256=zz", "X-GitHub-Event": "push"], body: push)
            == .unauthorized("the signature is not a SHA-256 HMAC in hex"))
        let other = Array(#"{"ref":"refs/heads/feature"}"#.utf8)
        #expect(check.check(headers: ["X-Gitlab-Token": "s3cret", "X-Gitlab-Event": "Push Hook"], body: other)
            == .ignored("a push to refs/heads/feature, not to the config branch main"))
    }
}
