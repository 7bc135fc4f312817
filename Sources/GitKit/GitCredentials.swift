import CGit2
import Foundation

/// Credentials for a remote, already resolved to values (never stored by GitKit).
///
/// `file://` and local remotes need none. SSH remotes use `sshKey`; HTTPS remotes use `token`.
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

    public init(username: String? = nil, sshKey: SSHKey? = nil, token: String? = nil) {
        self.username = username
        self.sshKey = sshKey
        self.token = token
    }

    public static let none = GitCredentials()
}

/// Carries the credentials into libgit2's C callbacks, and brings back what a push reported.
/// libgit2 calls the credential callback again after a rejected attempt, so the box counts
/// attempts and gives up instead of looping forever.
final class CredentialBox {
    let credentials: GitCredentials
    var attempts = 0
    /// Refs the remote refused in a push, with its reason (`push_update_reference`).
    var rejected: [(ref: String, reason: String)] = []
    init(_ credentials: GitCredentials) { self.credentials = credentials }
}

let credentialCallback: git_credential_acquire_cb = { out, _, usernameFromURL, allowedTypes, payload in
    guard let out, let payload else { return GIT_PASSTHROUGH.rawValue }
    let box = Unmanaged<CredentialBox>.fromOpaque(payload).takeUnretainedValue()
    box.attempts += 1
    guard box.attempts <= 2 else { return GIT_EAUTH.rawValue }
    let creds = box.credentials
    let user = creds.username ?? usernameFromURL.map { String(cString: $0) } ?? "git"
    if allowedTypes & GIT_CREDENTIAL_SSH_KEY.rawValue != 0, let key = creds.sshKey {
        return git_credential_ssh_key_new(out, user, key.publicKeyPath, key.privateKeyPath, key.passphrase)
    }
    if allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let token = creds.token {
        return git_credential_userpass_plaintext_new(out, creds.username ?? "x-access-token", token)
    }
    if allowedTypes & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
        return git_credential_username_new(out, user)
    }
    return GIT_PASSTHROUGH.rawValue
}

/// Fills remote callbacks with the credential callback for `box`; `box` must outlive the call.
func configure(_ callbacks: inout git_remote_callbacks, with box: CredentialBox) {
    callbacks.credentials = credentialCallback
    callbacks.payload = Unmanaged.passUnretained(box).toOpaque()
}
