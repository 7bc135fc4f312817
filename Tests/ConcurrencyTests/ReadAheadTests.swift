import Concurrency
import Foundation
import Testing

@Suite struct ReadAheadTests {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func add() { lock.withLock { value += 1 } }
        var count: Int { lock.withLock { value } }
    }

    /// A queue bounded by cost holds back the reader once the pages waiting cost more than the
    /// budget, whatever the depth, and lets it go on as pages are taken.
    @Test func aBudgetHoldsTheReaderBackAndEveryPageArrivesInOrder() throws {
        let handed = Counter()
        let pages = ReadAhead<[Int]>(depth: 100, budget: 10, cost: { $0.count }) { body in
            for page in 0..<6 {
                try body(Array(repeating: page, count: 4))
                handed.add()
            }
        }
        defer { pages.finish() }
        // Two pages (cost 8) fit; the third (12 in all) waits.
        let deadline = Date().addingTimeInterval(5)
        while handed.count < 2 && Date() < deadline { usleep(1_000) }
        usleep(100_000)
        #expect(handed.count == 2)
        var seen: [Int] = []
        while let page = try pages.next() { seen.append(page[0]) }
        #expect(seen == [0, 1, 2, 3, 4, 5])
        #expect(handed.count == 6)
    }
}
