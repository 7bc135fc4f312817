import Foundation

/// The pages of a read, made on a thread of its own at most `depth` pages ahead of the reader,
/// so reading (parsing a file, waiting on a server) overlaps the work on the pages before. A
/// page may be the read's entries, or what the reading thread made of them.
///
/// `@unchecked Sendable`: the state below is touched only under `condition`; `read` (which may
/// hold a `Directory`) is used only by the reading thread, and `finish()` waits for that thread
/// to end, so the directory is never used from two threads at once.
public final class ReadAhead<Page>: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [Page] = []
    private var ended = false
    private var failure: (any Error)?
    private var stopped = false
    private let depth: Int
    /// With `cost`: the most the queued pages may cost together (one page is always let in).
    private let budget: Int
    private let cost: ((Page) -> Int)?
    private var queuedCost = 0
    private let exited = DispatchSemaphore(value: 0)
    private var joined = false
    private var read: ((_ page: (Page) throws -> Void) throws -> Void)?

    private struct Stopped: Error {}

    /// - Parameters:
    ///   - depth: at most this many pages wait for `next()`;
    ///   - budget, cost: and, when `cost` is given, at most `budget` of it (say, bytes).
    public init(depth: Int, budget: Int = .max, cost: ((Page) -> Int)? = nil, _ read: @escaping (_ page: (Page) throws -> Void) throws -> Void) {
        self.depth = max(1, depth)
        self.budget = budget
        self.cost = cost
        self.read = read
        let thread = Thread { [self] in
            defer { self.read = nil }
            do {
                try self.read! { page in
                    let pageCost = self.cost?(page) ?? 0
                    condition.lock()
                    defer { condition.unlock() }
                    while (queue.count >= self.depth || (!queue.isEmpty && queuedCost + pageCost > self.budget)) && !stopped {
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
            ended = true
            condition.broadcast()
            condition.unlock()
            exited.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
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
