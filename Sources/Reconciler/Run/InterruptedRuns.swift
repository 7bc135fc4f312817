import Concurrency
import Directory
import Foundation
import GitKit
import Logging
import Manifests
import Reports
import Scheduling
import StateStore
import Sync

extension Workspace {
    /// Marks the runs that started and were never recorded as `interrupted`: recorded, queued for
    /// publishing, and notified as their collection asks (the job that was cut off failed, so
    /// `jobFails` holds). Only while holding the home claim: then no live process owns them.
    @discardableResult
    public func recoverInterruptedRuns(by command: String, at now: Date = Date()) throws -> [RunReport] {
        var recovered: [RunReport] = []
        for run in try store.runsInProgress() {
            var jobs = run.finishedJobs
            if let job = run.job {
                jobs.append(RunReport.Job(name: job, status: .failed, stats: .init(), durationMs: 0,
                                          error: "interrupted: the process (pid \(run.pid)) ended while this job ran "
                                              + "(killed, or the machine stopped); what it wrote up to then stays written, "
                                              + "and the next run of the collection reconciles the rest"))
            }
            var report = RunReport(runId: run.id, collection: run.collection,
                                   trigger: run.trigger, revision: run.revision,
                                   status: .interrupted, startedAt: run.startedAt, finishedAt: now, jobs: jobs)
            report.notes = ["found unfinished at \(RunReport.timestamp(now)) by syncwright \(command); "
                            + "finishedAt is when it was found, not when it stopped"]
            // Its collection's notifications, as for any run: an interrupted job failed.
            let collection: JobCollectionSpec?
            if let spec = try store.manifest(ObjectKey(.jobCollection, run.collection))?.spec, case .jobCollection(let c) = spec {
                collection = c
            } else {
                collection = nil
            }
            try recordNotifying(&report, collection: collection, logs: [:], requests: [])
            logger.warning("a run was interrupted", metadata: ["run": "\(run.id)", "collection": "\(run.collection)",
                                                              "job": "\(run.job ?? "none")"])
            recovered.append(report)
        }
        return recovered
    }

    /// Claims the home for a writing command, then reports the runs an earlier holder left
    /// unfinished. Throws at once when another process holds the home.
    public func claim(for command: String) throws -> HomeClaim {
        let claim = try HomeClaim.claim(home, for: command)
        do {
            try recoverInterruptedRuns(by: command)
        } catch {
            claim.release()
            throw error
        }
        return claim
    }

    /// For a reading command: when no process holds the home, reports the runs left unfinished.
    /// The claim is taken only when a run is unfinished, so a reader never makes a writer that
    /// starts at the same moment find the home in use.
    public func recoverInterruptedRunsIfIdle(by command: String) {
        guard ((try? store.runsInProgress()) ?? []).isEmpty == false,
              let claim = try? HomeClaim.claim(home, for: command) else { return }
        defer { claim.release() }
        _ = try? recoverInterruptedRuns(by: command)
    }
}
