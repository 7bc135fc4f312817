import CGit2
import CSpawn
import Foundation

/// The git smart protocol over the pipes of a local `git upload-pack` / `git receive-pack`, for
/// remotes on this machine (`file://` URLs and absolute paths): what the `git` CLI itself does for
/// such remotes.
///
/// libgit2's own local transport updates the remote's ref with a forced write and no check of its
/// old value (`local_push_update_remote_ref`), so two pushers racing on one remote can silently
/// overwrite each other's commits. `git receive-pack` updates the ref only if it still holds the
/// value the pusher saw, and reports a refusal per ref, exactly as a network server does. Pushes
/// to local remotes therefore go through here, which also makes tests with `file://` remotes
/// exercise the same smart-protocol push as SSH and HTTPS.
enum PipeTransport {
    /// True for the remotes this transport serves.
    static func serves(_ url: String) -> Bool { url.hasPrefix("file://") || url.hasPrefix("/") }

    /// The folder a local remote URL names.
    static func path(of url: String) -> String {
        guard url.hasPrefix("file://") else { return url }
        return URL(string: url)?.path ?? String(url.dropFirst("file://".count))
    }

    /// Creates the smart transport over this subtransport (a `git_transport_cb`).
    static let transportCallback: git_transport_cb = { out, owner, _ in
        git_transport_smart(out, owner, &definition)
    }

    nonisolated(unsafe) private static var definition = git_smart_subtransport_definition(
        callback: { out, _, _ in
            guard let out else { return -1 }
            out.pointee = PipeSubtransport.make()
            return 0
        },
        rpc: 0,
        param: nil)
}

/// One subtransport: at most one running git process at a time, and the stream over its pipes.
///
/// libgit2 owns the C structs and calls back through them; each struct is allocated with room for
/// a pointer to its Swift owner right after it, which is how the callbacks find their way back.
final class PipeSubtransport {
    private let base: UnsafeMutablePointer<git_smart_subtransport>
    private let stream: UnsafeMutablePointer<git_smart_subtransport_stream>
    private var child: GitProcess?

    private init(base: UnsafeMutablePointer<git_smart_subtransport>,
                 stream: UnsafeMutablePointer<git_smart_subtransport_stream>) {
        self.base = base
        self.stream = stream
    }

    /// A new subtransport for libgit2, retained until libgit2 calls `free`.
    static func make() -> UnsafeMutablePointer<git_smart_subtransport> {
        let base = allocate(git_smart_subtransport.self)
        let stream = allocate(git_smart_subtransport_stream.self)
        let instance = PipeSubtransport(base: base, stream: stream)
        let retained = Unmanaged.passRetained(instance).toOpaque()
        store(retained, after: base)
        store(retained, after: stream)
        base.pointee = git_smart_subtransport(
            action: { out, transport, url, action in
                guard let out, let transport, let url else { return -1 }
                return subtransportOwner(of: transport).action(out, url: String(cString: url), service: action)
            },
            close: { transport in
                guard let transport else { return 0 }
                return subtransportOwner(of: transport).finish()
            },
            free: { transport in
                guard let transport else { return }
                let owner = Unmanaged<PipeSubtransport>.fromOpaque(ownerPointer(after: transport))
                _ = owner.takeUnretainedValue().finish()
                owner.takeUnretainedValue().deallocate()
                owner.release()
            })
        stream.pointee = git_smart_subtransport_stream(
            subtransport: base,
            read: { stream, buffer, size, read in
                guard let stream, let buffer, let read else { return -1 }
                return subtransportOwner(of: stream).read(into: buffer, size: size, read: read)
            },
            write: { stream, buffer, length in
                guard let stream, let buffer else { return -1 }
                return subtransportOwner(of: stream).write(buffer, length: length)
            },
            free: { _ in }) // the stream lives as long as its subtransport
        return base
    }

    fileprivate func deallocate() {
        base.deinitialize(count: 1)
        UnsafeMutableRawPointer(base).deallocate()
        stream.deinitialize(count: 1)
        UnsafeMutableRawPointer(stream).deallocate()
    }

    // MARK: The C callbacks

    fileprivate func action(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_smart_subtransport_stream>?>,
                        url: String, service: git_smart_service_t) -> Int32 {
        switch service {
        case GIT_SERVICE_UPLOADPACK_LS, GIT_SERVICE_RECEIVEPACK_LS:
            _ = finish()
            let program = service == GIT_SERVICE_UPLOADPACK_LS ? "upload-pack" : "receive-pack"
            do {
                try start(program, path: PipeTransport.path(of: url))
            } catch {
                setError("cannot start git \(program) for \(url): \(error)")
                return -1
            }
        default:
            // The negotiation continues on the process the advertisement came from.
            guard child != nil else {
                setError("the smart protocol asked for \(service) before any advertisement")
                return -1
            }
        }
        out.pointee = stream
        return 0
    }

    private func start(_ program: String, path: String) throws {
        child = try GitProcess(arguments: ["git", program, path])
    }

    fileprivate func read(into buffer: UnsafeMutablePointer<CChar>, size: Int,
                          read: UnsafeMutablePointer<Int>) -> Int32 {
        guard let child else { return -1 }
        while true {
            let count = Glibc.read(child.output, buffer, size)
            if count >= 0 {
                if count == 0, let text = child.errorText() { setError("git: \(text)") }
                read.pointee = count
                return 0
            }
            if errno == EINTR { continue }
            setError("reading from git failed: \(String(cString: strerror(errno)))")
            return -1
        }
    }

    fileprivate func write(_ buffer: UnsafePointer<CChar>, length: Int) -> Int32 {
        guard let child else { return -1 }
        var done = 0
        while done < length {
            let count = Glibc.write(child.input, buffer + done, length - done)
            if count < 0 {
                if errno == EINTR { continue }
                let reason = child.errorText() ?? String(cString: strerror(errno))
                setError("writing to git failed: \(reason)")
                return -1
            }
            done += count
        }
        return 0
    }

    /// Closes the pipes and waits for the process. Always 0: the protocol already reported how
    /// the conversation went.
    fileprivate func finish() -> Int32 {
        child?.finish()
        child = nil
        return 0
    }

    private func setError(_ message: String) {
        git_error_set_str(Int32(GIT_ERROR_NET.rawValue), message)
    }

    // MARK: Finding the owner from a C pointer

    private static func allocate<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        let size = MemoryLayout<T>.stride + MemoryLayout<UnsafeMutableRawPointer>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: max(MemoryLayout<T>.alignment, 8))
        return raw.bindMemory(to: T.self, capacity: 1)
    }

    private static func store<T>(_ owner: UnsafeMutableRawPointer, after pointer: UnsafeMutablePointer<T>) {
        (UnsafeMutableRawPointer(pointer) + MemoryLayout<T>.stride).storeBytes(of: owner, as: UnsafeMutableRawPointer.self)
    }

    fileprivate static func load<T>(after pointer: UnsafeMutablePointer<T>) -> UnsafeMutableRawPointer {
        (UnsafeMutableRawPointer(pointer) + MemoryLayout<T>.stride).load(as: UnsafeMutableRawPointer.self)
    }

    fileprivate static func owner<T>(of pointer: UnsafeMutablePointer<T>) -> PipeSubtransport {
        Unmanaged<PipeSubtransport>.fromOpaque(load(after: pointer)).takeUnretainedValue()
    }
}

private func subtransportOwner<T>(of pointer: UnsafeMutablePointer<T>) -> PipeSubtransport {
    PipeSubtransport.owner(of: pointer)
}

private func ownerPointer<T>(after pointer: UnsafeMutablePointer<T>) -> UnsafeMutableRawPointer {
    PipeSubtransport.load(after: pointer)
}

/// A git process with pipes on stdin and stdout, and stderr in an unlinked temporary file (so a
/// chatty process can never block on it). Started with `posix_spawnp` and reaped with `waitpid`:
/// Foundation's `Process.waitUntilExit` polls a run loop every 50 ms, which cost more than the
/// whole push.
final class GitProcess {
    let input: Int32
    let output: Int32
    private let errors: Int32
    private var pid: pid_t
    private var finished = false

    init(arguments: [String]) throws {
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        // Close-on-exec from the start (pipe2), so that no process spawned meanwhile by another
        // thread inherits them; the dup2 onto the child's 0, 1 and 2 makes copies without the flag.
        guard sw_pipe2(&toChild, O_CLOEXEC) == 0, sw_pipe2(&fromChild, O_CLOEXEC) == 0 else { throw Self.failure("making pipes") }
        var template = Array("/tmp/syncwright-git-stderr-XXXXXX".utf8CString)
        let errors = sw_mkostemp(&template, O_CLOEXEC)
        guard errors >= 0 else { throw Self.failure("making a temporary file") }
        unlink(String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors, 2)
        // Nor anything else this process has open that is not close-on-exec.
        sw_spawn_close_from(&actions, 3)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let code = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
        close(toChild[0])
        close(fromChild[1])
        guard code == 0 else {
            [toChild[1], fromChild[0], errors].forEach { _ = close($0) }
            throw Self.failure("running \(arguments[0])", code: code)
        }
        self.pid = pid
        self.input = toChild[1]
        self.output = fromChild[0]
        self.errors = errors
    }

    /// What the process wrote on stderr so far, trimmed; nil when nothing.
    func errorText() -> String? {
        var data = [UInt8](repeating: 0, count: 16_384)
        let count = pread(errors, &data, data.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: data[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    /// How it exited (0: success), once `finish()` has waited for it.
    private(set) var exitStatus: Int32?

    /// Closes its stdin and stdout and waits for it to exit.
    func finish() {
        guard !finished else { return }
        finished = true
        close(input)
        close(output)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    deinit {
        finish()
        close(errors)
    }

    private static func failure(_ what: String, code: Int32 = errno) -> GitError {
        GitError(code: -1, message: String(cString: strerror(code)), operation: what)
    }
}
