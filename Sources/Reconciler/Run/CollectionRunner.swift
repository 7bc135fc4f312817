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

/// What `run --preview` shows for one job.
public struct JobPreview: Sendable, Codable {
    public let job: String
    public let read: Int
    public let create: Int
    public let update: Int
    public let rename: Int
    public let delete: Int
    public let unchanged: Int
    public let skipped: Int
    public let failed: Int
    /// The first changes, as log lines (secrets masked).
    public let lines: [String]
    /// How many changes were left out of `lines`.
    public let moreChanges: Int
    /// Why the job would fail, if it would.
    public let error: String?
    /// The approvers, when a run like this one would raise a request instead of running the job.
    public var needsApprovalFrom: [String]?
    /// Reference values that would name no object, and be left out (nil when none).
    public var unresolved: Int?
    /// True when `error` is a guard that would trip (`deleteThreshold`, the empty-source guard).
    public var guardTripped: Bool?

    /// `read 5; 1 to create, 1 to update, 0 to rename, 0 to delete, 3 unchanged, 0 skipped, 0 failed`.
    public var counts: String {
        "read \(read); \(create) to create, \(update) to update, \(rename) to rename, \(delete) to delete, "
            + "\(unchanged) unchanged, \(skipped) skipped, \(failed) failed"
    }
}

/// A finished run (or preview).
public struct RunOutcome: Sendable, Codable {
    public let report: RunReport
    /// For a preview: per job, what it would do.
    public let previews: [JobPreview]
    /// Each job's log lines, in job order (empty for a preview).
    public let logs: [String: [String]]
}

/// What a run is, as each of its jobs needs to know it.
struct RunContext {
    let collection: String
    let runId: String
    let trigger: RunTrigger
    let revision: String
    let startedAt: Date
    let preview: Bool
    let previewLines: Int
    let scheduled: ScheduledRun?
    let control: RunControl?
    let approved: ApprovalRequest?
    let progress: ((JobProgress) -> Void)?
}

/// What a run has gathered so far, job after job.
struct RunProgress {
    var jobs: [RunReport.Job] = []
    var previews: [JobPreview] = []
    var logs: [String: [String]] = [:]
    /// Requests raised by jobs under a workflow.
    var raised: [ApprovalRequest] = []
    var connections: RunConnections
    /// Whether the run is recorded as in progress yet (it is before its first job writes).
    var begun = false
    /// Why the run stopped early (at a safe point), if it did.
    var stopped: StopReason?
    /// The job whose failure, with `onFailure: abort`, ended the run.
    var abortedBy: String?
    /// Why the approved guard request this run carries out no longer applies, when it does not.
    var movedApproval: String?
    /// What the run's jobs so far add up to under `per: run` delete limits (`policy/limit`).
    var limitTallies: [String: RunPolicies.Tally] = [:]

    init(_ manifests: ManifestLookup) { connections = RunConnections(manifests) }

    /// Why `job` does not run, when an earlier stop or abort says so.
    func notRun(_ job: String) -> RunReport.Job? {
        let reason = if let stopped { "the run was stopped (\(stopped.rawValue))" }
            else if let abortedBy { "\(abortedBy) failed and its onFailure is abort" } else { String?.none }
        return reason.map { RunReport.Job(name: job, status: .notRun, stats: .init(JobStatistics()), durationMs: 0, error: "not run: \($0)") }
    }
}

extension Workspace {
    /// Runs a stored collection now: its jobs in order, with `onFailure` deciding what follows a
    /// failure. With `preview`, computes everything and writes nothing (and records no run).
    ///
    /// A `scheduled` run has trigger `schedule` and skips workflow approval. `control` is asked at
    /// safe points (before each job, between chunks of objects): a timeout stops the run as
    /// `failed`, a shutdown as `aborted`, and what was written before stays written.
    public func run(collection name: String, preview: Bool = false, trigger: RunTrigger = .manual,
                    previewLines: Int = 10, progress: ((JobProgress) -> Void)? = nil,
                    scheduled: ScheduledRun? = nil, control: RunControl? = nil,
                    approved: ApprovalRequest? = nil, runId chosen: String? = nil, overrideWindow: Bool = false) throws -> RunOutcome {
        let clock = control?.clock ?? SystemWallClock()
        guard let applied = try store.appliedRevision() else {
            throw ReconcilerError.nothingApplied
        }
        let collection = try storedCollection(name)
        // An approved request runs its one job, nothing else of the collection.
        let entries = approved.map { request in collection.jobs.filter { $0.job == request.job } } ?? collection.jobs
        if let approved, entries.isEmpty {
            throw ReconcilerError.jobLeftCollection(job: approved.job, request: approved.id, collection: name)
        }
        let started = clock.now()
        // A manual run outside a sync window is refused, unless overridden (and recorded so).
        // Scheduled runs and approved requests are held back by the loop until the window opens.
        var windowOverride: String?
        if !preview, scheduled == nil, approved == nil, let closed = try closedWindow(collection: name, at: started) {
            guard overrideWindow else { throw ReconcilerError.windowClosed(collection: name, reason: closed) }
            windowOverride = "run with --override-window: " + closed
        }
        let runId = chosen ?? RunReport.makeID(at: started) { (try? store.runIDTaken($0)) ?? false }
        // Timed from here, as it always was: the figures (`bench/reconcile_bench.py`) leave out
        // reading the applied revision and the collection, and making the run id.
        var timer = RunTimer()
        let context = RunContext(
            collection: name, runId: runId,
            trigger: approved != nil ? .approval : scheduled == nil ? trigger : .schedule,
            revision: applied.revision, startedAt: started, preview: preview, previewLines: previewLines,
            scheduled: scheduled, control: control, approved: approved, progress: progress)
        var run = RunProgress(ManifestLookup(store: store))
        run.connections.previewing = preview
        timer.lap("setup")
        for entry in entries {
            if run.stopped == nil, !preview, let reason = control?.check() { run.stopped = reason }
            if let skipped = run.notRun(entry.job) {
                run.jobs.append(skipped)
                continue
            }
            let job = timer.timeJob { runJob(entry, context, &run) }
            run.jobs.append(job)
            if job.status == .failed && entry.onFailure == .abort { run.abortedBy = entry.job }
        }
        var report = RunReport(runId: context.runId, collection: name, trigger: context.trigger, revision: applied.revision,
                               status: RunStatus.of(run.jobs.map(\.status), aborted: run.abortedBy != nil, stopped: run.stopped),
                               startedAt: started, finishedAt: clock.now(), jobs: run.jobs)
        report.warnings = try warnings(for: collection.jobs.map(\.job), cache: &run.connections)
        for name in collection.notifications?.channels ?? [] {
            guard let channel = try? self.channel(name, revision: applied.revision), channel.insecureSkipVerify == true else { continue }
            report.warnings = (report.warnings ?? []) + ["notification channel \(name): TLS certificate verification is off "
                + "(insecureSkipVerify), so the server's identity is not checked"]
        }
        report.reason = run.stopped
        report.schedule = scheduled?.schedule
        report.scheduledFor = scheduled?.scheduledFor
        if let notes = scheduled?.notes, !notes.isEmpty { report.notes = notes }
        report.request = approved?.id
        report.windowOverride = windowOverride
        timer.lap("warnings")
        if !preview {
            var requests = run.raised
            if var executed = approved {
                if let moved = run.movedApproval {
                    executed.status = .expired
                    executed.note = moved
                } else {
                    executed.status = .executed
                }
                executed.executedRunId = context.runId
                requests.append(executed)
            }
            // Decided and queued with the run, in its transaction: a crash loses neither. Decided
            // on the collection's notification state as last seen; when another process changed
            // it meanwhile, nothing is recorded, and the run decides again on the state as it is.
            try recordFinished(&report, collection: collection, logs: run.logs, requests: requests) { timer.lap("render") }
            timer.lap("record")
            logger.debug("run bookkeeping", metadata: timer.lapMetadata.mapValues { .string($0) })
            for observer in runObservers.get() { observer(report) }
            logger.info("run finished", metadata: [
                "run": "\(report.runId)", "collection": "\(name)", "status": "\(report.status.rawValue)",
            ].merging(timer.totals.mapValues { .string($0) }) { a, _ in a })
        }
        return RunOutcome(report: report, previews: run.previews, logs: run.logs)
    }

    /// The stored collection `name`, or an error naming those that are applied.
    func storedCollection(_ name: String) throws -> JobCollectionSpec {
        guard let spec = try store.manifest(ObjectKey(.jobCollection, name))?.spec, case .jobCollection(let collection) = spec else {
            let known = try collections().map(\.name)
            throw ReconcilerError.unknownCollection(name, applied: known, orRun: false)
        }
        return collection
    }

    /// Why a run was stopped, for its job's error.
    static func explain(_ reason: StopReason, _ control: RunControl?) -> String {
        switch reason {
        case .timeout:
            if let deadline = control?.deadline { return "timeout: the schedule's time limit ended at \(RunReport.timestamp(deadline))" }
            return "timeout"
        case .shutdown: return "shutdown: the reconciler was told to stop"
        case .replicaLost: return "replicaLost: this replica lost its lease on the state store, and stopped"
        }
    }

    /// What every report of a run of these jobs must say: connections that do not verify TLS.
    func warnings(for jobs: [String], cache: inout RunConnections) throws -> [String]? {
        var names: [String] = []
        for job in jobs {
            guard let j = try? cache.job(job) else { continue }
            for connection in [j.source.connection, j.destination.connection] where !names.contains(connection) {
                names.append(connection)
            }
        }
        let insecure = names.filter { (try? cache.connection($0))?.insecureSkipVerify == true }
        guard !insecure.isEmpty else { return nil }
        return insecure.map { "connection \($0): TLS certificate verification is off (insecureSkipVerify), so the server's identity is not checked" }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let e as ReconcilerError: e.description
        case let e as DirectoryError: e.description
        case let e as TransformError: e.description
        case let e as GitError: e.description
        default: "\(error)"
        }
    }

}
