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
