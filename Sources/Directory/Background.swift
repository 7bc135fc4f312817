import Foundation

/// Work started on a thread of its own; `value()` waits for its result.
///
/// `@unchecked Sendable`: `work` (which may hold objects that are not `Sendable`, such as a
/// `Directory`) is used only by the new thread, and `result` is written once by that thread
/// before it signals `done`; it is read only after `done` has been waited for. `waited` is
/// used only by the thread that asks (`isDone`, `value()`), which must be one thread.
public final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var work: (() throws -> T)?
    private var result: Result<T, any Error>?
    private var waited = false

    public init(_ work: @escaping () throws -> T) {
        self.work = work
        let thread = Thread { [self] in
            result = Result { try self.work!() }
            self.work = nil
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Whether the work has ended, without waiting.
    public var isDone: Bool {
        if !waited, done.wait(timeout: .now()) == .success { waited = true }
        return waited
    }

    /// Waits for the work to end; returns what it returned, or throws what it threw.
    public func value() throws -> T {
        if !waited { done.wait(); waited = true }
        return try result!.get()
    }
}
