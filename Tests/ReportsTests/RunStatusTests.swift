import Foundation
import Reports
import Testing

/// The run-status rule, as a table: (job statuses, whether an abort stopped the run) → status.
@Suite struct RunStatusTests {
    static let table: [([JobStatus], Bool, RunStatus)] = [
        ([.succeeded, .succeeded], false, .succeeded),
        ([.succeeded, .awaitingApproval], false, .awaitingApproval),
        ([.failed], false, .failed),
        ([.failed], true, .aborted),
        ([.failed, .notRun], true, .aborted),
        ([.succeeded, .failed], true, .aborted), // the last job aborts: aborted, not partial
        ([.succeeded, .failed], false, .partial),
        ([.failed, .failed], false, .failed),
        ([.succeeded, .completedWithErrors], false, .partial),
        ([.completedWithErrors], false, .partial), // objects failed, the rest was written
        ([.completedWithErrors, .failed], false, .partial),
        ([.completedWithErrors, .awaitingApproval], false, .partial),
        ([.notRun], false, .succeeded),
    ]

    @Test func aStoppedRunIsFailedOnTimeoutAndAbortedOnShutdownWhateverItsJobsSay() {
        for jobs: [JobStatus] in [[.succeeded], [.succeeded, .notRun], [.failed], []] {
            #expect(RunStatus.of(jobs, aborted: false, stopped: .timeout) == .failed)
            #expect(RunStatus.of(jobs, aborted: true, stopped: .shutdown) == .aborted)
        }
    }

    @Test func theRule() {
        for (jobs, aborted, expected) in Self.table {
            #expect(RunStatus.of(jobs, aborted: aborted) == expected, "\(jobs) aborted: \(aborted)")
        }
    }
}

/// A reconciler starts hundreds of runs in one second: their ids must still differ. (With 4 random
/// hex digits alone, 1,000 ids in one second repeat almost surely; a repeat lost a run's record.)
@Suite struct RunIDTests {
    @Test func idsMadeInTheSameSecondNeverRepeat() {
        let date = Date(timeIntervalSince1970: 1_796_000_000)
        let ids = (0..<5_000).map { _ in RunReport.makeID(at: date) }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.hasPrefix(RunReport.compactTimestamp(date) + "-") && $0.count == 21 })
        // One the store already holds is not made again.
        let held = Set((0..<65_000).map { String(format: "%@-%04x", RunReport.compactTimestamp(date.addingTimeInterval(1)), $0) })
        let fresh = RunReport.makeID(at: date.addingTimeInterval(1)) { held.contains($0) }
        #expect(!held.contains(fresh))
    }
}
