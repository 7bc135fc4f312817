import Foundation

/// Work split over all cores (through `DispatchQueue.concurrentPerform`, which runs on a pool
/// of threads that are already there, so short parts cost no thread start).
public enum ParallelParts {
    /// Maps `items` on all cores, keeping the order. Below `grain` items per part it is not worth
    /// it: a list shorter than that is mapped here. Items as costly as whole files take `grain: 1`.
    public static func map<T: Sendable, R: Sendable>(_ items: [T], grain: Int = 256, _ transform: @Sendable (T) -> R) -> [R] {
        let count = items.count, grain = max(1, grain)
        guard count > grain else { return items.map(transform) }
        let results = Results<R>(count: count)
        let parts = min(ProcessInfo.processInfo.activeProcessorCount * 4, (count + grain - 1) / grain)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            for i in part * count / parts..<(part + 1) * count / parts { results.set(i, transform(items[i])) }
        }
        return results.collect()
    }

    /// Calls `body` with each of `parts` part numbers, on all cores; returns when all are done.
    public static func forEach(parts: Int, _ body: @Sendable (Int) -> Void) {
        DispatchQueue.concurrentPerform(iterations: parts, execute: body)
    }

    /// Slots written by disjoint indices from `concurrentPerform`.
    ///
    /// `@unchecked Sendable`: each index is written exactly once, by one iteration, and read only
    /// after `concurrentPerform` has returned, which orders the writes before the reads.
    final class Results<R>: @unchecked Sendable {
        private let buffer: UnsafeMutableBufferPointer<R>
        init(count: Int) { buffer = .allocate(capacity: count) }
        /// Initialises slot `index`; each slot is set once, by one iteration.
        @inline(__always)
        func set(_ index: Int, _ value: R) { (buffer.baseAddress.map { $0 + index })?.initialize(to: value) }
        /// Moves the results out; every slot must have been set.
        func collect() -> [R] {
            guard let base = buffer.baseAddress else { return [] }
            return (0..<buffer.count).map { (base + $0).move() }
        }
        deinit { buffer.deallocate() }
    }
}
