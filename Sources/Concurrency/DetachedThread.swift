import Foundation

/// The one way Syncwright starts a thread: a detached pthread with an 8 MiB stack.
///
/// Not Foundation's `Thread`, which keeps a little memory of every thread it ever started: a
/// daemon that starts threads per run and per pass grew by it. Not the cooperative pool either:
/// the work handed here blocks (git, SQLite, files, directory servers), and the pool has one
/// thread per core.
public enum DetachedThread {
    /// The stack each thread gets: deep recursion in YAML and LDIF parsing needs more than the
    /// 512 KiB a secondary thread has by default.
    public static let stackSize = 8 << 20

    /// Runs `body` on a new thread. Returns false, without running it, when no thread could be
    /// had (a resource limit); the caller then does the work itself.
    @discardableResult
    public static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        let work = Unmanaged.passRetained(Work(body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let started = pthread_create(&thread, &attributes, { context in
            guard let context else { return nil }
            Unmanaged<Work>.fromOpaque(context).takeRetainedValue().body()
            return nil
        }, work.toOpaque())
        if started != 0 {
            work.release()
            return false
        }
        return true
    }

    /// Runs `body` on a new thread, or here when no thread could be had.
    public static func run(_ body: @escaping @Sendable () -> Void) {
        if !start(body) { body() }
    }

    private final class Work: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}

/// Runs blocking work (git, SQLite, directories) on a thread of its own and awaits its result,
/// so that the few threads of the cooperative pool stay free for the loop.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DetachedThread.run { continuation.resume(with: Result { try body() }) }
    }
}

/// Frees `value` on a thread of its own. A first load's change set holds a million entries;
/// freeing them takes a while, and nothing needs to wait for it.
public func freeInBackground<T>(_ value: consuming T) {
    let box = FreedLater(value)
    DetachedThread.run { box.drop() }
}

/// What `freeInBackground` frees.
///
/// `@unchecked Sendable`: after `init`, only the thread `freeInBackground` starts touches `value`.
private final class FreedLater<T>: @unchecked Sendable {
    private var value: T?
    init(_ value: consuming T) { self.value = value }
    func drop() { value = nil }
}
