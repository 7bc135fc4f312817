import CSSH2
import Foundation

/// An SSH server's host key as the server presented it.
public struct HostKey: Sendable, Equatable {
    /// The key in SSH wire format (what a known_hosts line holds in base64).
    public let blob: [UInt8]
    /// Its type as SSH names it: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`…
    public let type: String
    /// `SHA256:` and the unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` prints it.
    public let fingerprint: String
    /// libssh2's key-type bits (`LIBSSH2_KNOWNHOST_KEY_*`).
    let libssh2Type: Int32

    init(blob: [UInt8], sha256: [UInt8], libssh2Type: Int32) {
        self.blob = blob
        self.libssh2Type = libssh2Type
        // The blob starts with its own type name: a 4-byte big-endian length, then the name.
        var name = "unknown"
        if blob.count >= 4 {
            let length = Int(blob[0]) << 24 | Int(blob[1]) << 16 | Int(blob[2]) << 8 | Int(blob[3])
            if length > 0, 4 + length <= blob.count {
                name = String(decoding: blob[4..<(4 + length)], as: UTF8.self)
            }
        }
        type = name
        var base64 = Data(sha256).base64EncodedString()
        while base64.hasSuffix("=") { base64.removeLast() }
        fingerprint = "SHA256:" + base64
    }
}

/// What a known_hosts file says of a host's key.
public enum HostKeyVerdict: Sendable, Equatable {
    /// The file holds this key for the host.
    case known
    /// The file holds no key for the host.
    case unknown
    /// The file holds another key for the host: the server's key changed, or someone is in between.
    case changed
}

/// Reads and writes OpenSSH known_hosts files through libssh2 (hashed `|1|` entries and
/// `[host]:port` names included), the same code that checks them in libssh2's own clients.
public enum KnownHosts {
    /// The file used when config.yaml names none: `$HOME/.ssh/known_hosts` (as git reads HOME),
    /// else in the user's home folder.
    public static var defaultFile: String {
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".ssh/known_hosts")
    }

    /// The name a known_hosts line gives a host: `host` on port 22, else `[host]:port`.
    public static func entryName(host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    /// What `file` says of `key` for `host:port`. A missing file knows no host.
    public static func check(_ key: HostKey, host: String, port: Int, in file: String) throws(GitError) -> HostKeyVerdict {
        try withHosts(file) { hosts throws(GitError) in
            switch lookup(hosts, key, host: host, port: port).result {
            case LIBSSH2_KNOWNHOST_CHECK_MATCH: return .known
            case LIBSSH2_KNOWNHOST_CHECK_MISMATCH: return .changed
            default: return .unknown
            }
        }
    }

    /// Records `key` as `host:port`'s key in `file` (created when missing), removing the keys of
    /// the same type it held for the host before: a replaced key is no longer trusted.
    public static func trust(_ key: HostKey, host: String, port: Int, in file: String) throws(GitError) {
        let operation = "recording the host key of \(entryName(host: host, port: port)) in \(file)"
        try withHosts(file) { hosts throws(GitError) in
            while true {
                let (result, entry) = lookup(hosts, key, host: host, port: port)
                if result == LIBSSH2_KNOWNHOST_CHECK_MATCH { return }
                guard result == LIBSSH2_KNOWNHOST_CHECK_MISMATCH, let entry else { break }
                guard libssh2_knownhost_del(hosts, entry) == 0 else {
                    throw GitError(message: "libssh2 could not remove the old key", operation: operation)
                }
            }
            let name = entryName(host: host, port: port)
            let comment = "added by syncwright init --trust-host-key"
            let added = key.blob.withUnsafeBufferPointer { blob in
                blob.baseAddress!.withMemoryRebound(to: CChar.self, capacity: blob.count) { bytes in
                    libssh2_knownhost_addc(hosts, name, nil, bytes, blob.count, comment, comment.utf8.count,
                                           Int32(LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW) | key.libssh2Type,
                                           nil)
                }
            }
            guard added == 0 else { throw GitError(message: "libssh2 could not add the key", operation: operation) }
            let folder = (file as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // Written beside, then renamed over: a failure leaves the old file whole.
            let staged = file + ".syncwright-new"
            guard libssh2_knownhost_writefile(hosts, staged, LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0,
                  rename(staged, file) == 0 else {
                unlink(staged)
                throw GitError(message: "it cannot be written (\(String(cString: strerror(errno))))", operation: operation)
            }
        }
    }

    private static func lookup(_ hosts: OpaquePointer, _ key: HostKey, host: String,
                               port: Int) -> (result: Int32, entry: UnsafeMutablePointer<libssh2_knownhost>?) {
        var entry: UnsafeMutablePointer<libssh2_knownhost>?
        let mask = Int32(LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW) | key.libssh2Type
        let result = key.blob.withUnsafeBufferPointer { blob in
            blob.baseAddress!.withMemoryRebound(to: CChar.self, capacity: blob.count) { bytes in
                // libssh2 looks up `[host]:port` for a port other than 22 (-1: the plain name).
                libssh2_knownhost_checkp(hosts, host, port == 22 ? -1 : Int32(port), bytes, blob.count, mask, &entry)
            }
        }
        return (result, entry)
    }

    private static func withHosts<T>(_ file: String, _ body: (OpaquePointer) throws(GitError) -> T) throws(GitError) -> T {
        libssh2Ready()
        guard let session = syncwright_ssh2_session() else {
            throw GitError(message: "libssh2 could not start", operation: "reading \(file)")
        }
        defer { libssh2_session_free(session) }
        guard let hosts = libssh2_knownhost_init(session) else {
            throw GitError(message: "libssh2 could not start", operation: "reading \(file)")
        }
        defer { libssh2_knownhost_free(hosts) }
        if let data = FileManager.default.contents(atPath: file) {
            // Line by line, not libssh2_knownhost_readfile: that stops at the first line it cannot
            // read (a key type it does not know, an @cert-authority marker), losing the lines after.
            for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
                let text = line.trimmingCharacters(in: .whitespaces)
                guard !text.isEmpty, !text.hasPrefix("#"), !text.hasPrefix("@") else { continue }
                _ = libssh2_knownhost_readline(hosts, text, text.utf8.count, LIBSSH2_KNOWNHOST_FILE_OPENSSH)
            }
        } else if FileManager.default.fileExists(atPath: file) {
            throw GitError(message: "it cannot be read", operation: "reading \(file)")
        }
        return try body(hosts)
    }

    private static let ready: Int32 = libssh2_init(0)
    private static func libssh2Ready() { _ = ready }
}
