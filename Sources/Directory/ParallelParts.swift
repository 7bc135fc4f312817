import Foundation

/// Maps an array on all cores, keeping the order.
public enum ParallelParts {
    public static func map<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
        let count = items.count
        guard count > 256 else { return items.map(transform) }
        let results = Results<R>(count: count)
        let chunks = min(ProcessInfo.processInfo.activeProcessorCount * 4, (count + 255) / 256)
        nonisolated(unsafe) let base = results.base
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = chunk * count / chunks, end = (chunk + 1) * count / chunks
            for i in start..<end { (base + i).initialize(to: transform(items[i])) }
        }
        return results.collect()
    }

    /// Slots written by disjoint indices from `concurrentPerform`.
    ///
    /// `@unchecked Sendable`: each index is written exactly once, by one iteration, and read only
    /// after `concurrentPerform` has returned, which orders the writes before the reads.
    final class Results<R>: @unchecked Sendable {
        private let buffer: UnsafeMutableBufferPointer<R>
        init(count: Int) { buffer = .allocate(capacity: count) }
        /// The first slot; slot `i` is `base + i`, each initialized once by one iteration.
        var base: UnsafeMutablePointer<R> { buffer.baseAddress! }
        func set(_ index: Int, _ value: R) { (buffer.baseAddress.map { $0 + index })?.initialize(to: value) }
        /// Moves the results out; every slot must have been set.
        func collect() -> [R] {
            guard let base = buffer.baseAddress else { return [] }
            return (0..<buffer.count).map { (base + $0).move() }
        }
        deinit { buffer.deallocate() }
    }
}
