import Concurrency
import Directory
import Foundation
import Logging
import Manifests
import Reports
import StateStore
import Sync

extension Workspace {
    /// Runs one job of a run: records the run as in progress before it writes, opens (and for a
    /// file, locks) its directories, and plans, then applies, previews or asks for approval.
    /// A job that cannot start (a connection, a file, a bad spec) fails as a whole.
    func runJob(_ entry: CollectionEntry, _ context: RunContext, _ run: inout RunProgress) -> RunReport.Job {
        let started = DispatchTime.now()
        do {
            var job = try runJobThrowing(entry, context, &run)
            job.durationMs = RunTimer.milliseconds(since: started)
            return job
        } catch {
            logger.info("job failed", metadata: ["job": "\(entry.job)", "error": "\(Self.describe(error))"])
            if context.preview {
                run.previews.append(JobPreview(job: entry.job, read: 0, create: 0, update: 0, rename: 0, delete: 0,
                                               unchanged: 0, skipped: 0, failed: 0, lines: [], moreChanges: 0,
                                               error: Self.describe(error)))
            }
            return RunReport.Job(name: entry.job, status: .failed, stats: .init(JobStatistics()),
                                 durationMs: RunTimer.milliseconds(since: started), error: Self.describe(error))
        }
    }

    private func runJobThrowing(_ entry: CollectionEntry, _ context: RunContext, _ run: inout RunProgress) throws -> RunReport.Job {
        if !context.preview {
            // Recorded before anything is written (with the job about to work, in one
            // transaction): a run killed mid-write is found and reported by the next command.
            if run.begun {
                try store.progress(run: context.runId, job: entry.job, finishedJobs: run.jobs)
            } else {
                try store.begin(RunInProgress(id: context.runId, collection: context.collection, trigger: context.trigger,
                                              revision: context.revision, startedAt: context.startedAt, pid: Int(getpid()),
                                              job: entry.job, finishedJobs: run.jobs))
                run.begun = true
            }
        }
        // Whether this job's destination was opened by an earlier job of this run: then it is
        // opened again once it is locked (another job may have written it since).
        let destinationWasOpen = run.connections.isOpen(try run.connections.job(entry.job).destination.connection)
        var opened = try prepare(job: entry.job, revision: context.revision, directories: &run.connections)
        try resolveReferences(&opened, revision: context.revision, directories: &run.connections)
        if let workflow = opened.spec.workflow, context.approved == nil, !context.preview,
           context.trigger == .manual || workflow.onScheduledRuns == .require {
            return try requestApproval(entry, workflow: workflow, opened, context, &run)
        }
        // A destination is claimed from its read to its commit: another run writing it meanwhile
        // would lose this one's changes, or this one its (see `DestinationClaim`). A file is also
        // locked, for other processes on this machine.
        var claim: DestinationClaim?
        var lock: DestinationLock?
        if !context.preview {
            let connection = opened.spec.destination.connection
            claim = try claimDestination(
                Self.destinationKey(connection: connection, writtenFile: opened.destination.traits.writtenFile),
                connection: opened.destination.traits.writtenFile ?? "destination connection \(connection)", what: "job \(entry.job)",
                runId: context.runId, holder: "collection \(context.collection), job \(entry.job), run \(context.runId), "
                    + "\(ProcessInfo.processInfo.hostName) pid \(getpid())",
                shouldStop: { context.control?.check() != nil })
        }
        if !context.preview, let file = opened.destination.traits.writtenFile {
            lock = try DestinationLock(file: file, what: "job \(entry.job)",
                                       holder: "collection \(context.collection), job \(entry.job), run \(context.runId), pid \(getpid())",
                                       timeout: home.config.lockTimeout, shouldStop: { context.control?.check() != nil })
            // What an earlier job of this run read of it may be old by now: open it again.
            if destinationWasOpen {
                run.connections.evict(opened.spec.destination.connection)
                opened = try prepare(job: entry.job, revision: context.revision, directories: &run.connections)
                try resolveReferences(&opened, revision: context.revision, directories: &run.connections)
            }
        }
        defer {
            if let lock {
                lock.release()
                // Read again by a later job: another may write it once the lock is free.
                run.connections.evict(opened.spec.destination.connection)
            }
            claim?.give()
        }
        let set = try plan(entry, opened, context, &run)
        logger.debug("job planned", metadata: [
            "job": "\(entry.job)", "destinationMs": "\(String(format: "%.1f", set.timings.destinationMs))",
            "sourceWaitMs": "\(String(format: "%.1f", set.timings.sourceWaitMs))",
            "sourceMs": "\(String(format: "%.1f", set.timings.sourceMs))"])
        if context.preview { return preview(entry, set, opened, context, &run) }
        let asked = try guardRequest(entry, set, opened, context, &run)
        var job = write(entry, consume set, opened, context, &run)
        if let asked {
            job.request = asked.id
            job.error = (job.error ?? "") + "; request \(asked.id) asks \(asked.approvers.joined(separator: ", ")) "
                + "to let this change set through once (syncwright approve \(asked.id))"
        }
        return job
    }

    /// When a guard stopped the job and someone may let it through (the job's workflow
    /// approvers, or the policy's): the request that asks them, for this exact change set. An
    /// open request for the same change set is asked again rather than doubled; one for another
    /// change set (the source moved) expires, and a new one is raised.
    private func guardRequest(_ entry: CollectionEntry, _ set: ChangeSet, _ opened: OpenedJob, _ context: RunContext,
                              _ run: inout RunProgress) throws -> ApprovalRequest? {
        guard let violation = set.guardViolation else { return nil }
        var approvers: [String] = []
        for approver in set.guardApprovers + (opened.spec.workflow?.approvers ?? [])
        where !approvers.contains(where: { Workflow.email(of: $0) == Workflow.email(of: approver) }) {
            approvers.append(approver)
        }
        guard !approvers.isEmpty else { return nil }
        let hash = Self.changeSetHash(set, opened.engine)
        let open = try store.requests(statuses: [.pending, .approved]).filter {
            $0.guardTripped != nil && $0.job == entry.job && $0.collection == context.collection && $0.id != context.approved?.id
        }
        if let same = open.first(where: { $0.changeSetHash == hash }) { return same }
        for var moved in open {
            moved.status = .expired
            moved.note = "the change set moved after the request was raised (the source or the destination changed); "
                + "a new request asks about the change set as it is now"
            run.raised.append(moved)
        }
        let workflow = Workflow(approvers: approvers, expiresAfter: opened.spec.workflow?.expiresAfter)
        var request = try makeRequest(job: entry.job, collection: context.collection, workflow: workflow, set: set,
                                      engine: opened.engine, runId: context.runId, revision: context.revision,
                                      trigger: context.trigger, scheduled: context.scheduled, at: context.startedAt,
                                      taken: Set(run.raised.map(\.id)))
        request.guardTripped = violation
        request.changeSetHash = hash
        run.raised.append(request)
        logger.info("guard request raised", metadata: ["job": "\(entry.job)", "request": "\(request.id)"])
        return request
    }

    /// A change set's fingerprint: every change and failure as the log writes it (secrets
    /// masked), so that a request's approval counts for that change set alone.
    static func changeSetHash(_ set: ChangeSet, _ engine: JobEngine) -> String {
        Canonical.hash((set.changes.flatMap { engine.logLines(for: $0) } + set.failures.map { "! \($0.object) \($0.reason)" })
            .joined(separator: "\n"))
    }

    /// What the job would do; with the run-time policies checked over it, before anything is
    /// written: like a guard, a violation stops the job with nothing written.
    private func plan(_ entry: CollectionEntry, _ opened: OpenedJob, _ context: RunContext,
                      _ run: inout RunProgress) throws -> ChangeSet {
        var set = try opened.engine.plan(source: opened.source, destination: opened.destination, progress: context.progress)
        let policies = try runPolicies(run.connections.manifests, revision: context.revision)
        if set.guardViolation == nil, !policies.isEmpty,
           let found = policies.violation(set, job: entry.job, destination: opened.spec.destination.connection, tallies: &run.limitTallies) {
            set.guardViolation = found.reason
            set.guardApprovers = found.approvers
        }
        // An approved guard request lets this job through once: for the change set it was
        // raised for, and no other.
        if let approved = context.approved, approved.guardTripped != nil, approved.job == entry.job, set.guardViolation != nil {
            if Self.changeSetHash(set, opened.engine) == approved.changeSetHash {
                logger.notice("guard lifted once, by an approved request", metadata: [
                    "job": "\(entry.job)", "request": "\(approved.id)", "guard": "\(set.guardViolation ?? "")"])
                set.guardViolation = nil
            } else {
                run.movedApproval = "the change set moved after the request was approved (the source or the destination "
                    + "changed), so the approval no longer applies; a new request asks about it"
            }
        }
        return set
    }

    /// A job under a workflow is not run: a request is raised, with a dry run of the job for the
    /// approvers to read.
    private func requestApproval(_ entry: CollectionEntry, workflow: Workflow, _ opened: OpenedJob, _ context: RunContext,
                                 _ run: inout RunProgress) throws -> RunReport.Job {
        let set = try plan(entry, opened, context, &run)
        let request = try makeRequest(job: entry.job, collection: context.collection, workflow: workflow, set: set,
                                      engine: opened.engine, runId: context.runId, revision: context.revision,
                                      trigger: context.trigger, scheduled: context.scheduled, at: context.startedAt,
                                      taken: Set(run.raised.map(\.id)))
        run.raised.append(request)
        logger.info("approval requested", metadata: ["job": "\(entry.job)", "request": "\(request.id)"])
        return RunReport.Job(name: entry.job, status: .awaitingApproval, stats: .init(JobStatistics()), durationMs: 0,
                             request: request.id)
    }

    /// What the job would do, counted as a run would count it; applied in memory only, so that
    /// later jobs of the preview see it.
    private func preview(_ entry: CollectionEntry, _ set: ChangeSet, _ opened: OpenedJob, _ context: RunContext,
                         _ run: inout RunProgress) -> RunReport.Job {
        let lines = set.failures.map { "! \($0.object) \($0.reason)" }
            + set.notes.prefix(context.previewLines).map { "? \($0.object) \($0.reason)" }
            + set.changes.prefix(context.previewLines).flatMap { opened.engine.previewLines(for: $0) }
        var preview = JobPreview(
            job: entry.job, read: set.read, create: set.count(.create), update: set.count(.update),
            rename: set.count(.rename), delete: set.count(.delete), unchanged: set.unchanged,
            skipped: set.skipped, failed: set.failures.count, lines: lines,
            moreChanges: max(0, set.changes.count - context.previewLines), error: set.guardViolation)
        if let workflow = opened.spec.workflow, context.trigger == .manual || workflow.onScheduledRuns == .require {
            preview.needsApprovalFrom = workflow.approvers
        }
        if set.unresolved > 0 { preview.unresolved = set.unresolved }
        if set.guardViolation != nil { preview.guardTripped = true }
        run.previews.append(preview)
        var stats = JobStatistics()
        stats.read = set.read
        stats.created = preview.create
        stats.updated = preview.update + preview.rename
        stats.deleted = preview.delete
        stats.unchanged = set.unchanged
        stats.skipped = set.skipped
        stats.failed = set.failures.count
        stats.unresolved = set.unresolved
        if opened.destination.traits.stagesChanges {
            _ = opened.engine.apply(set, to: opened.destination, commit: false)
        }
        return Self.reportJob(entry.job, stats: stats, error: set.guardViolation,
                              failures: Array(set.failures.prefix(JobOutcome.failuresKept)))
    }

    /// Writes the job's changes, stopping at a safe point when the run is told to.
    private func write(_ entry: CollectionEntry, _ set: consuming ChangeSet, _ opened: OpenedJob, _ context: RunContext,
                       _ run: inout RunProgress) -> RunReport.Job {
        var stopReason: StopReason?
        var outcome = opened.engine.apply(set, to: opened.destination, logLimit: home.config.logLineLimit,
                                          progress: context.progress, shouldStop: {
                                              stopReason = context.control?.check()
                                              return stopReason != nil
                                          })
        logger.debug("job written", metadata: [
            "job": "\(entry.job)", "applyMs": "\(String(format: "%.1f", outcome.applyMs))",
            "commitMs": "\(String(format: "%.1f", outcome.commitMs))"])
        if let stopReason {
            run.stopped = stopReason
            outcome.error = "\(Self.explain(stopReason, context.control)); \(outcome.error ?? "stopped")"
        }
        run.logs[entry.job] = outcome.log
        if outcome.error != nil {
            // What it staged may not have been written: later jobs read the file again.
            run.connections.evict(opened.spec.destination.connection)
        }
        freeInBackground(consume set)
        return Self.reportJob(entry.job, stats: outcome.statistics, error: outcome.error, failures: outcome.failures)
    }

    /// A job's line in the run report: failed when it failed as a whole, completed with errors
    /// when only some objects failed.
    static func reportJob(_ name: String, stats: JobStatistics, error: String?, failures: [ObjectFailure]) -> RunReport.Job {
        let status: JobStatus = error != nil ? .failed : stats.failed > 0 ? .completedWithErrors : .succeeded
        var job = RunReport.Job(name: name, status: status, stats: .init(stats), durationMs: 0, error: error)
        if !failures.isEmpty { job.failures = failures.map { RunReport.Failure(object: $0.object, reason: $0.reason) } }
        return job
    }
}
