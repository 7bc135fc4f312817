import Foundation

/// The pages of a read, made on a thread of its own at most `depth` pages ahead of the reader,
/// so reading (parsing a file, waiting on a server) overlaps the work on the pages before. A
/// page may be the read's entries, or what the reading thread made of them.
///
/// `@unchecked Sendable`: the state below is touched only under `condition`, and `read` only by
/// the reading thread; `finish()` waits for that thread to end.
public final class ReadAhead<Page>: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [Page] = []
    private var ended = false
    private var failure: (any Error)?
    private var stopped = false
    /// Set when no thread could be had and the read ran on the caller's thread: nothing waits.
    private var unbounded = false
    private let depth: Int
    /// With `cost`: the most the queued pages may cost together (one page is always let in).
    private let budget: Int
    private let cost: (@Sendable (Page) -> Int)?
    private var queuedCost = 0
    private let exited = DispatchSemaphore(value: 0)
    private var joined = false
    private var read: (@Sendable (_ page: (Page) throws -> Void) throws -> Void)?

    private struct Stopped: Error {}

    /// - Parameters:
    ///   - depth: at most this many pages wait for `next()`;
    ///   - budget, cost: and, when `cost` is given, at most `budget` of it (say, bytes).
    ///   - read: hands each page to its argument; runs on the new thread.
    public init(depth: Int, budget: Int = .max, cost: (@Sendable (Page) -> Int)? = nil,
                _ read: @escaping @Sendable (_ page: (Page) throws -> Void) throws -> Void) {
        self.depth = max(1, depth)
        self.budget = budget
        self.cost = cost
        self.read = read
        if !DetachedThread.start({ [self] in work() }) {
            condition.lock()
            unbounded = true
            condition.unlock()
            work()
        }
    }

    private func work() {
        do {
            guard let read else { throw Stopped() }
            try read { page in
                let pageCost = cost?(page) ?? 0
                condition.lock()
                defer { condition.unlock() }
                while !unbounded && (queue.count >= depth || (!queue.isEmpty && queuedCost + pageCost > budget)) && !stopped {
                    condition.wait()
                }
                if stopped { throw Stopped() }
                queuedCost += pageCost
                queue.append(page)
                condition.broadcast()
            }
            condition.lock()
        } catch {
            condition.lock()
            if !(error is Stopped) { failure = error }
        }
        read = nil
        ended = true
        condition.broadcast()
        condition.unlock()
        exited.signal()
    }

    /// The next page; nil after the last. Throws what the read threw, after the pages before it.
    public func next() throws -> Page? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !ended { condition.wait() }
        if !queue.isEmpty {
            condition.broadcast()
            let page = queue.removeFirst()
            if let cost { queuedCost -= cost(page) }
            return page
        }
        if let failure { throw failure }
        return nil
    }

    /// Stops the read if it is still going, and waits for its thread to end. Call once done.
    public func finish() {
        condition.lock()
        stopped = true
        queue.removeAll()
        condition.broadcast()
        condition.unlock()
        if !joined { exited.wait(); joined = true }
    }
}
