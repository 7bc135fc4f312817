import Foundation

/// Work started on a thread of its own; `value()` waits for its result.
///
/// `@unchecked Sendable`: `result` is written once by the work's thread before it signals
/// `done`, and read only after `done` has been waited for. `waited` is used only by the thread
/// that asks (`isDone`, `value()`), which must be one thread.
public final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?
    private var waited = false

    /// Starts `work` on a new thread (or runs it now, when no thread could be had).
    public init(_ work: @escaping @Sendable () throws -> T) {
        DetachedThread.run { [self] in
            result = Result { try work() }
            done.signal()
        }
    }

    /// Whether the work has ended, without waiting.
    public var isDone: Bool {
        if !waited, done.wait(timeout: .now()) == .success { waited = true }
        return waited
    }

    /// Waits for the work to end; returns what it returned, or throws what it threw.
    public func value() throws -> T {
        if !waited { done.wait(); waited = true }
        guard let result else { preconditionFailure("Background: the work ended without a result") }
        return try result.get()
    }
}
