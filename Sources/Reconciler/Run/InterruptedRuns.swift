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
    /// Accounts for the runs that started and were never recorded: recorded, queued for
    /// publishing, and notified as their collection asks (the job that was cut off failed, so
    /// `jobFails` holds).
    ///
    /// On a store of the home's own, while holding the home claim (then no live process owns
    /// them), they are `interrupted` (the process ended). On a shared store, by the leader only,
    /// the runs whose replica's lease ran out are `failed`, reason `replicaLost`; and when this
    /// replica has just taken the lead, the runs `syncwright run` handed to the one before end too.
    @discardableResult
    public func recoverInterruptedRuns(by command: String, at now: Date = Date()) throws -> [RunReport] {
        guard let shared = shared?.store else {
            return try store.runsInProgress().map { try recordUnfinished($0, by: command, lost: nil, at: now) }
        }
        guard standing.leads.get() else { return [] }
        var recovered: [RunReport] = []
        for orphan in try shared.orphanedRuns() {
            let lost = orphan.replica.map { "the replica that ran it (\(Self.describe($0))) stopped renewing its lease on the state "
                + "store at \(RunReport.timestamp($0.leaseUntil))" } ?? "the process that ran it (pid \(orphan.run.pid)) ended"
            recovered.append(try recordUnfinished(orphan.run, by: command, lost: lost, at: now))
        }
        // Runs handed over by `syncwright run` to the leader that was lost: a follower on another
        // replica's home would wait for them for ever. Their runs are recorded now (or, for a
        // preview, were never begun). Only a leader starts them, so those started are the last
        // leader's, once this replica has just taken the lead.
        if standing.tookLead.get() {
            let lost = Set(recovered.map(\.runId))
            for request in try store.runRequests(status: .started) {
                if try lost.contains(request.runId) || store.runReport(id: request.runId)?.runId == request.runId {
                    try store.update(runRequest: request.id, status: .finished)
                } else {
                    try store.update(runRequest: request.id, status: .failed,
                                     error: "the replica running it stopped renewing its lease on the state store before it ended")
                }
            }
            standing.tookLead.set(false)
        }
        return recovered
    }

    /// Records `run`, found unfinished: `interrupted`, or with `lost` (why its replica is gone)
    /// `failed`, reason `replicaLost`.
    private func recordUnfinished(_ run: RunInProgress, by command: String, lost: String?, at now: Date) throws -> RunReport {
        var jobs = run.finishedJobs
        if let job = run.job {
            let why = lost.map { "replicaLost: \($0) (killed, paused, or cut off from the database) while this job ran" }
                ?? "interrupted: the process (pid \(run.pid)) ended while this job ran (killed, or the machine stopped)"
            jobs.append(RunReport.Job(name: job, status: .failed, stats: .init(), durationMs: 0,
                                      error: why + "; what it wrote up to then stays written, "
                                          + "and the next run of the collection reconciles the rest"))
        }
        var report = RunReport(runId: run.id, collection: run.collection,
                               trigger: run.trigger, revision: run.revision,
                               status: lost == nil ? .interrupted : .failed, startedAt: run.startedAt, finishedAt: now, jobs: jobs)
        if lost != nil { report.reason = .replicaLost }
        report.notes = ["found unfinished at \(RunReport.timestamp(now)) by syncwright \(command)"
                        + (lost.map { " on \(ProcessInfo.processInfo.hostName): \($0)" } ?? "")
                        + "; finishedAt is when it was found, not when it stopped"]
        // Its collection's notifications, as for any run: an interrupted job failed.
        let collection: JobCollectionSpec?
        if let spec = try store.manifest(ObjectKey(.jobCollection, run.collection))?.spec, case .jobCollection(let c) = spec {
            collection = c
        } else {
            collection = nil
        }
        try recordNotifying(&report, collection: collection, logs: [:], requests: [])
        logger.warning(lost == nil ? "a run was interrupted" : "a run was lost with its replica",
                       metadata: ["run": "\(run.id)", "collection": "\(run.collection)", "job": "\(run.job ?? "none")"])
        return report
    }

    /// For a reading command: when no process holds the home (nor the shared store), reports
    /// the runs left unfinished. The claim is taken only when a run is unfinished, so a reader
    /// never makes a writer that starts at the same moment find the home in use.
    public func recoverInterruptedRunsIfIdle(by command: String) {
        guard ((try? store.runsInProgress()) ?? []).isEmpty == false,
              let claim = try? claim(for: command) else { return }
        claim.release()
    }
}
