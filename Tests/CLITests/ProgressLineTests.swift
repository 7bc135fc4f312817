import Foundation
@testable import syncwright
import Sync
import Testing

/// The live progress line: a percentage when the total is known, and a rate over the last
/// seconds, never since the start.
@Suite struct ProgressLineTests {
    @Test func aRateOverRecentSamplesAndAPercentage() {
        let t0 = Date(timeIntervalSince1970: 1_000)
        let progress = JobProgress(job: "people", phase: .writing, done: 30_000, total: 40_000)
        // 10,000 objects in the first 10 s, then 20,000 in the last 2 s: the rate is the recent one.
        let recent = [(t0.addingTimeInterval(10), 10_000), (t0.addingTimeInterval(12), 30_000)]
        #expect(ProgressMeter.line(progress, samples: recent) == "people: writing 30000 of 40000 objects (75%, 10000/s)")
        let reading = JobProgress(job: "people", phase: .reading, done: 10_000, total: nil)
        #expect(ProgressMeter.line(reading, samples: [(t0, 0)]) == "people: reading 10000 objects",
                "no rate from a single instant (it was 10000000/s)")
    }
}
