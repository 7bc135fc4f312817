import CGit2
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
    private var process: Process?
    private var input: FileHandle?
    private var output: FileHandle?
    private var errors = ErrorText()

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
            guard process != nil else {
                setError("the smart protocol asked for \(service) before any advertisement")
                return -1
            }
        }
        out.pointee = stream
        return 0
    }

    private func start(_ program: String, path: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", program, path]
        let input = Pipe(), output = Pipe(), errorPipe = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errorPipe
        let errors = ErrorText()
        errorPipe.fileHandleForReading.readabilityHandler = { handle in errors.append(handle.availableData) }
        try process.run()
        self.process = process
        self.input = input.fileHandleForWriting
        self.output = output.fileHandleForReading
        self.errors = errors
    }

    fileprivate func read(into buffer: UnsafeMutablePointer<CChar>, size: Int,
                      read: UnsafeMutablePointer<Int>) -> Int32 {
        guard let output else { return -1 }
        while true {
            let count = Glibc.read(output.fileDescriptor, buffer, size)
            if count >= 0 {
                if count == 0, let text = errors.text { setError("git: \(text)") }
                read.pointee = count
                return 0
            }
            if errno == EINTR { continue }
            setError("reading from git failed: \(String(cString: strerror(errno)))")
            return -1
        }
    }

    fileprivate func write(_ buffer: UnsafePointer<CChar>, length: Int) -> Int32 {
        guard let input else { return -1 }
        var done = 0
        while done < length {
            let count = Glibc.write(input.fileDescriptor, buffer + done, length - done)
            if count < 0 {
                if errno == EINTR { continue }
                let reason = errors.text ?? String(cString: strerror(errno))
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
        try? input?.close()
        try? output?.close()
        input = nil
        output = nil
        if let process {
            process.waitUntilExit()
            (process.standardError as? Pipe)?.fileHandleForReading.readabilityHandler = nil
        }
        process = nil
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

/// What a git process wrote on stderr, gathered from its reader thread.
final class ErrorText: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ chunk: Data) {
        lock.lock()
        defer { lock.unlock() }
        if data.count < 16_384 { data.append(chunk) }
    }

    /// The text so far, trimmed; nil when there is none.
    var text: String? {
        lock.lock()
        defer { lock.unlock() }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}
