import Foundation

// Values that more than one thread touches: how each is kept safe.

/// A value handed to another thread by a caller that does not touch it until that thread is
/// done with it (it waits for `ReadAhead.finish()` or `Background.value()` first). For values
/// that are not `Sendable`, such as an open `Directory`: the compiler cannot check that promise,
/// so each use says why it holds.
public struct HandedOver<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

/// A value shared between threads, read and written under a lock.
///
/// `@unchecked Sendable`: `value` is touched only under `lock`.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func get() -> Value { lock.withLock { value } }
    public func set(_ newValue: Value) { lock.withLock { value = newValue } }
    /// Changes the value in one locked step, and returns what `change` returns.
    @discardableResult
    public func update<T>(_ change: (inout Value) -> T) -> T { lock.withLock { change(&value) } }
}
