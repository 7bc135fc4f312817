import CGit2

/// A libgit2 failure, with libgit2's own message and what Syncwright was doing at the time.
public struct GitError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The libgit2 return code (negative), or 0 for failures found by GitKit itself.
    public let code: Int32
    /// libgit2's message, or GitKit's own.
    public let message: String
    /// What we were doing, e.g. "fetching file:///srv/config.git".
    public let operation: String

    public init(code: Int32 = 0, message: String, operation: String) {
        self.code = code
        self.message = message
        self.operation = operation
    }

    public var description: String {
        "\(operation) failed: \(message)"
    }

    /// True when the failure means "no such object or reference" (`GIT_ENOTFOUND`).
    public var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }

    /// True when a push was refused because the remote's branch moved on (`GIT_ENONFASTFORWARD`):
    /// fetch, rebuild on the new tip, and push again.
    public var isRejected: Bool { code == GIT_ENONFASTFORWARD.rawValue }
}

/// The one place that turns a libgit2 return code into a Swift error.
@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(GitError) {
    guard code < 0 else { return }
    var message = "libgit2 error \(code)"
    if let last = git_error_last(), let text = last.pointee.message {
        message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    throw GitError(code: code, message: message, operation: operation())
}

/// libgit2 must be initialised once per process before any other call. Writing to a git process
/// that has exited must fail with EPIPE, not kill this process, so SIGPIPE is ignored.
private let libgit2Ready: Int32 = {
    signal(SIGPIPE, SIG_IGN)
    let ready = git_libgit2_init()
    // libgit2 keeps parsed commits and trees of every open repository in a cache of up to 256 MiB.
    // A long-running reconciler reads a few new ones per publish, for ever: bound it tightly (the
    // hot objects, root trees and tips, are small).
    _ = syncwright_git_set_cache_max_size(1 << 20)
    return ready
}()

func ensureLibgit2() {
    _ = libgit2Ready
}

import Foundation
