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
}

/// A finished run (or preview).
public struct RunOutcome: Sendable, Codable {
    public let report: RunReport
    /// For a preview: per job, what it would do.
    public let previews: [JobPreview]
    /// Each job's log lines, in job order (empty for a preview).
    public let logs: [String: [String]]
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
                    approved: ApprovalRequest? = nil, runId chosen: String? = nil) throws -> RunOutcome {
        let trigger = approved != nil ? .approval : scheduled == nil ? trigger : .schedule
        let clock = control?.clock ?? SystemWallClock()
        guard let applied = try store.appliedRevision() else {
            throw ReconcilerError.failed("nothing is applied yet: run `syncwright apply` first")
        }
        guard let spec = try store.manifest(ObjectKey(.jobCollection, name))?.spec,
              case .jobCollection(let collection) = spec else {
            let known = try collections().map(\.name)
            throw ReconcilerError.failed("no collection named '\(name)' is applied"
                + (known.isEmpty ? "" : " (applied: \(known.joined(separator: ", ")))"))
        }
        let entries: [CollectionEntry]
        if let approved {
            // An approved request runs its one job, nothing else of the collection.
            entries = collection.jobs.filter { $0.job == approved.job }
            guard !entries.isEmpty else {
                throw ReconcilerError.failed("job \(approved.job) of request \(approved.id) is no longer in collection \(name)")
            }
        } else {
            entries = collection.jobs
        }
        let started = clock.now()
        let runId = chosen ?? RunReport.makeID(at: started)
        var raised: [ApprovalRequest] = []
        let startedWall = DispatchTime.now()
        let startedCPU = Self.threadCPUNanoseconds()
        var nanosInJobs: UInt64 = 0
        var cpuInJobs: UInt64 = 0
        var setupCPU: UInt64 = 0
        var stopped: StopReason?
        var jobs: [RunReport.Job] = []
        var previews: [JobPreview] = []
        var logs: [String: [String]] = [:]
        var abortedBy: String?
        // One directory per connection for the whole run: a later job reads what an earlier one
        // wrote, and in a preview what it would have written (staged in memory, never committed).
        var directories = DirectoryCache()
        setupCPU = Self.threadCPUNanoseconds() - startedCPU
        // Recorded before anything is written (with the job about to work, in one transaction):
        // a run killed mid-write is found and reported by the next command.
        var begun = false
        for entry in entries {
            if stopped == nil, !preview, let reason = control?.check() { stopped = reason }
            if let stopped {
                jobs.append(RunReport.Job(name: entry.job, status: .notRun, stats: .init(JobStatistics()), durationMs: 0,
                                          error: "not run: the run was stopped (\(stopped.rawValue))"))
                continue
            }
            if let abortedBy {
                jobs.append(RunReport.Job(name: entry.job, status: .notRun, stats: .init(JobStatistics()), durationMs: 0,
                                          error: "not run: \(abortedBy) failed and its onFailure is abort"))
                continue
            }
            let jobStarted = DispatchTime.now()
            let jobCPU = Self.threadCPUNanoseconds()
            defer {
                nanosInJobs += DispatchTime.now().uptimeNanoseconds - jobStarted.uptimeNanoseconds
                cpuInJobs += Self.threadCPUNanoseconds() - jobCPU
            }
            var status = JobStatus.succeeded
            var stats = JobStatistics()
            var error: String?
            var request: String?
            var failures: [ObjectFailure] = []
            do {
                if !preview {
                    if begun {
                        try store.progress(run: runId, job: entry.job, finishedJobs: jobs)
                    } else {
                        try store.begin(RunInProgress(id: runId, collection: name, trigger: trigger,
                                                      revision: applied.revision, startedAt: started, pid: Int(getpid()),
                                                      job: entry.job, finishedJobs: jobs))
                        begun = true
                    }
                }
                // Whether this job's destination was opened by an earlier job of this run: then
                // it is opened again once it is locked (another job may have written it since).
                let destinationWasOpen = directories.isOpen(try directories.job(entry.job, load: jobSpec).destination.connection)
                var (jobSpec, engine, source, destination) = try prepare(job: entry.job, revision: applied.revision,
                                                                         directories: &directories)
                if let workflow = jobSpec.workflow, approved == nil, !preview,
                   trigger == .manual || workflow.onScheduledRuns == .require {
                    // Not run: a request, with a dry run of the job for the approvers to read.
                    let set = try engine.plan(source: source, destination: destination, progress: progress)
                    let raisedRequest = try makeRequest(job: entry.job, collection: name, workflow: workflow, set: set,
                                                        engine: engine, runId: runId, revision: applied.revision,
                                                        trigger: trigger, scheduled: scheduled, at: started,
                                                        taken: Set(raised.map(\.id)))
                    raised.append(raisedRequest)
                    request = raisedRequest.id
                    status = .awaitingApproval
                    logger.info("approval requested", metadata: ["job": "\(entry.job)", "request": "\(raisedRequest.id)"])
                } else {
                    // A file destination is locked from its read to its commit: another job
                    // writing it meanwhile would lose this one's changes, or this one its.
                    var lock: DestinationLock?
                    if !preview, let file = destination.traits.writtenFile {
                        lock = try DestinationLock(file: file, what: "job \(entry.job)",
                                                   holder: "collection \(name), job \(entry.job), run \(runId), pid \(getpid())",
                                                   timeout: home.config.lockTimeout,
                                                   shouldStop: { control?.check() != nil })
                        // What an earlier job of this run read of it may be old by now: open it again.
                        if destinationWasOpen {
                            directories.evict(jobSpec.destination.connection)
                            (jobSpec, engine, source, destination) = try prepare(job: entry.job, revision: applied.revision,
                                                                                 directories: &directories)
                        }
                    }
                    defer {
                        if let lock {
                            lock.release()
                            // Read again by a later job: another may write it once the lock is free.
                            directories.evict(jobSpec.destination.connection)
                        }
                    }
                    let set = try engine.plan(source: source, destination: destination, progress: progress)
                    logger.debug("job planned", metadata: [
                        "job": "\(entry.job)", "destinationMs": "\(String(format: "%.1f", set.timings.destinationMs))",
                        "sourceWaitMs": "\(String(format: "%.1f", set.timings.sourceWaitMs))",
                        "sourceMs": "\(String(format: "%.1f", set.timings.sourceMs))"])
                    if preview {
                        let lines = set.failures.map { "! \($0.object) \($0.reason)" }
                            + set.changes.prefix(previewLines).flatMap { engine.logLines(for: $0) }
                        var jobPreview = JobPreview(
                            job: entry.job, read: set.read, create: set.count(.create), update: set.count(.update),
                            rename: set.count(.rename), delete: set.count(.delete), unchanged: set.unchanged,
                            skipped: set.skipped, failed: set.failures.count, lines: lines,
                            moreChanges: max(0, set.changes.count - previewLines), error: set.guardViolation)
                        if let workflow = jobSpec.workflow, trigger == .manual || workflow.onScheduledRuns == .require {
                            jobPreview.needsApprovalFrom = workflow.approvers
                        }
                        previews.append(jobPreview)
                        // What a run would count (the JSON form of a preview shows these).
                        stats.read = set.read
                        stats.created = jobPreview.create
                        stats.updated = jobPreview.update + jobPreview.rename
                        stats.deleted = jobPreview.delete
                        stats.unchanged = set.unchanged
                        stats.skipped = set.skipped
                        stats.failed = set.failures.count
                        failures = Array(set.failures.prefix(JobOutcome.failuresKept))
                        error = set.guardViolation
                        if destination.traits.stagesChanges {
                            _ = engine.apply(set, to: destination, commit: false)
                        }
                    } else {
                        var stopReason: StopReason?
                        var outcome = engine.apply(set, to: destination, logLimit: home.config.logLineLimit,
                                                   progress: progress, shouldStop: {
                                                       stopReason = control?.check()
                                                       return stopReason != nil
                                                   })
                        logger.debug("job written", metadata: [
                            "job": "\(entry.job)", "applyMs": "\(String(format: "%.1f", outcome.applyMs))",
                            "commitMs": "\(String(format: "%.1f", outcome.commitMs))"])
                        if let stopReason {
                            stopped = stopReason
                            outcome.error = "\(Self.explain(stopReason, control)); \(outcome.error ?? "stopped")"
                        }
                        stats = outcome.statistics
                        error = outcome.error
                        failures = outcome.failures
                        logs[entry.job] = outcome.log
                        if outcome.error != nil {
                            // What it staged may not have been written: later jobs read the file again.
                            directories.evict(jobSpec.destination.connection)
                        }
                        freeInBackground(consume set)
                    }
                    if error != nil { status = .failed } else if stats.failed > 0 { status = .completedWithErrors }
                }
            } catch {
                // The job could not start (a connection, a file, a bad spec): it fails as a whole.
                jobs.append(RunReport.Job(name: entry.job, status: .failed, stats: .init(JobStatistics()),
                                          durationMs: Self.milliseconds(since: jobStarted), error: Self.describe(error)))
                logger.info("job failed", metadata: ["job": "\(entry.job)", "error": "\(Self.describe(error))"])
                if entry.onFailure == .abort { abortedBy = entry.job }
                if preview {
                    previews.append(JobPreview(job: entry.job, read: 0, create: 0, update: 0, rename: 0, delete: 0,
                                               unchanged: 0, skipped: 0, failed: 0, lines: [], moreChanges: 0,
                                               error: Self.describe(error)))
                }
                continue
            }
            var job = RunReport.Job(name: entry.job, status: status, stats: .init(stats),
                                    durationMs: Self.milliseconds(since: jobStarted), error: error, request: request)
            if !failures.isEmpty { job.failures = failures.map { RunReport.Failure(object: $0.object, reason: $0.reason) } }
            jobs.append(job)
            if status == .failed && entry.onFailure == .abort { abortedBy = entry.job }
        }
        var status = Self.status(of: jobs, aborted: abortedBy != nil)
        switch stopped {
        case .timeout: status = .failed
        case .shutdown: status = .aborted
        case nil: break
        }
        var report = RunReport(runId: runId, collection: name, trigger: trigger,
                               revision: applied.revision, status: status,
                               startedAt: started, finishedAt: clock.now(), jobs: jobs)
        let warningsCPU = Self.threadCPUNanoseconds()
        report.warnings = try warnings(for: collection.jobs.map(\.job), cache: &directories)
        report.reason = stopped
        report.schedule = scheduled?.schedule
        report.scheduledFor = scheduled?.scheduledFor
        if let notes = scheduled?.notes, !notes.isEmpty { report.notes = notes }
        report.request = approved?.id
        var requests = raised
        if var executed = approved {
            executed.status = .executed
            executed.executedRunId = runId
            requests.append(executed)
        }
        if !preview {
            let t0 = Self.threadCPUNanoseconds()
            let joinedLogs = logs.mapValues { $0.joined(separator: "\n") }
            let publication = ReportPages.publication(for: report, logs: logs)
            let t1 = Self.threadCPUNanoseconds()
            try store.record(report, logs: joinedLogs, page: publication, requests: requests.map(Self.publishable))
            let t2 = Self.threadCPUNanoseconds()
            logger.debug("run bookkeeping", metadata: ["renderCpuMs": "\(Self.decimal(t1 - t0))", "recordCpuMs": "\(Self.decimal(t2 - t1))",
                                                       "setupCpuMs": "\(Self.decimal(setupCPU))", "warningsCpuMs": "\(Self.decimal(t0 - warningsCPU))"])
            // ms is the whole run with its bookkeeping (reading the stored state, recording the
            // run), jobsMs the part spent inside jobs; cpuMs and jobsCpuMs the same in this thread's
            // CPU time, which many runs sharing few cores do not inflate.
            let wall = DispatchTime.now().uptimeNanoseconds - startedWall.uptimeNanoseconds
            let cpu = Self.threadCPUNanoseconds() - startedCPU
            logger.info("run finished", metadata: ["run": "\(report.runId)", "collection": "\(name)",
                                                   "status": "\(report.status.rawValue)",
                                                   "ms": "\(Self.decimal(wall))", "jobsMs": "\(Self.decimal(nanosInJobs))",
                                                   "cpuMs": "\(Self.decimal(cpu))", "jobsCpuMs": "\(Self.decimal(cpuInJobs))"])
        }
        return RunOutcome(report: report, previews: previews, logs: logs)
    }

    /// Marks the runs that started and were never recorded as `interrupted`: recorded, and
    /// queued for publishing. Only while holding the home claim: then no live process owns them.
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
            try store.record(report, logs: [:], page: ReportPages.publication(for: report, logs: [:]), requests: [])
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

    /// Why a run was stopped, for its job's error.
    static func explain(_ reason: StopReason, _ control: RunControl?) -> String {
        switch reason {
        case .timeout:
            if let deadline = control?.deadline { return "timeout: the schedule's time limit ended at \(RunReport.timestamp(deadline))" }
            return "timeout"
        case .shutdown: return "shutdown: the reconciler was told to stop"
        }
    }

    /// What every report of a run of these jobs must say: connections that do not verify TLS.
    func warnings(for jobs: [String], cache: inout DirectoryCache) throws -> [String]? {
        var names: [String] = []
        for job in jobs {
            guard let j = try? cache.job(job, load: jobSpec) else { continue }
            for connection in [j.source.connection, j.destination.connection] where !names.contains(connection) {
                names.append(connection)
            }
        }
        let insecure = names.filter { (try? cache.connection($0, load: connection))?.insecureSkipVerify == true }
        guard !insecure.isEmpty else { return nil }
        return insecure.map { "connection \($0): TLS certificate verification is off (insecureSkipVerify), so the server's identity is not checked" }
    }

    /// Masked in every log, report and preview, whatever the manifests say.
    static let defaultSecretAttributes: Set<AttributeName> = ["userPassword", "unicodePwd"]

    static func status(of jobs: [RunReport.Job], aborted: Bool) -> RunStatus {
        RunStatus.of(jobs.map(\.status), aborted: aborted)
    }

    /// CPU time the calling thread has used.
    static func threadCPUNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Nanoseconds as milliseconds with one decimal, for logs.
    static func decimal(_ nanoseconds: UInt64) -> String {
        String(format: "%.1f", Double(nanoseconds) / 1_000_000)
    }

    static func milliseconds(since start: DispatchTime) -> Int {
        Int((DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000)
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

    /// The job's engine and its two directories, opened from the stored connections.
    private func prepare(job name: String, revision: String,
                         directories: inout DirectoryCache) throws -> (JobSpec, JobEngine, Directory, Directory) {
        let job = try directories.job(name, load: jobSpec)
        let sourceConnection = try directories.connection(job.source.connection, load: connection)
        let destinationConnection = try directories.connection(job.destination.connection, load: connection)
        let secrets = Self.defaultSecretAttributes.union(
            [job.secretAttributes, sourceConnection.secretAttributes, destinationConnection.secretAttributes]
                .flatMap { $0 ?? [] }.map { AttributeName($0) })
        let engine = try JobEngine(name: name, spec: job, destinationNeedsDN: destinationConnection.type != .csv,
                                   secretAttributes: secrets)
        var joinDelimiters: [AttributeName: String] = [:]
        for mapping in job.mappings { if let d = mapping.delimiter { joinDelimiters[AttributeName(mapping.destination)] = d } }
        let source = try directories.get(job.source.connection) {
            try open(job.source.connection, sourceConnection, revision: revision, asDestination: false, multiValue: [:])
        }
        let destination = try directories.get(job.destination.connection) {
            try open(job.destination.connection, destinationConnection, revision: revision, asDestination: true,
                     multiValue: joinDelimiters)
        }
        if job.mappings.contains(where: { secrets.contains(AttributeName($0.destination)) }) { destination.willHoldSecrets() }
        return (job, engine, source, destination)
    }

    private func jobSpec(_ name: String) throws -> JobSpec {
        guard let spec = try store.manifest(ObjectKey(.job, name))?.spec, case .job(let job) = spec else {
            throw ReconcilerError.failed("job \(name) is not applied")
        }
        return job
    }

    private func connection(_ name: String) throws -> ConnectionSpec {
        guard let spec = try store.manifest(ObjectKey(.connection, name))?.spec, case .connection(let connection) = spec else {
            throw ReconcilerError.failed("connection \(name) is not applied")
        }
        return connection
    }

    private func open(_ name: String, _ spec: ConnectionSpec, revision: String, asDestination: Bool,
                      multiValue: [AttributeName: String]) throws -> Directory {
        let what = "connection \(name)"
        if spec.type == .ldap {
            guard let url = spec.url, let baseDN = spec.baseDN else { throw ReconcilerError.failed("\(what) names no url or baseDN") }
            let password = try spec.passwordFrom?.resolve("the password of \(what)")
            return LDAPDirectory(LDAPSettings(
                url: url, startTLS: spec.startTLS ?? false, caFile: spec.caFile, insecureSkipVerify: spec.insecureSkipVerify ?? false,
                bindDN: spec.bindDN, password: password, baseDN: baseDN, pageSize: spec.pageSize ?? 500,
                timeout: spec.timeout.flatMap { DurationText($0)?.seconds } ?? 30, maxOutstanding: spec.maxOutstanding ?? 32),
                what: what)
        }
        let location: FileLocation
        if let repoPath = spec.repoPath {
            guard let commit = ObjectID(hex: revision) else { throw ReconcilerError.failed("bad applied revision \(revision)") }
            guard let data = try repository.file(at: commit, path: repoPath) else {
                throw ReconcilerError.failed("\(what): \(repoPath) does not exist at the applied revision \(commit.short)")
            }
            location = .contents(data, label: "\(repoPath)@\(commit.short)")
        } else if let path = spec.path {
            let absolute = path.hasPrefix("/") ? path : (home.path as NSString).appendingPathComponent(path)
            location = .path(absolute)
        } else {
            throw ReconcilerError.failed("\(what) names no file")
        }
        switch spec.type {
        case .csv:
            return CSVDirectory(location, what: what, delimiter: spec.delimiter?.first ?? ",",
                                multiValueDelimiters: multiValue, missingIsEmpty: asDestination)
        case .ldif:
            return LDIFDirectory(location, what: what, missingIsEmpty: asDestination)
        case .ldap:
            throw ReconcilerError.failed("\(what): an ldap connection has no file") // returned above
        }
    }

    /// Stored runs, newest first. A collection that is neither applied nor has runs is an error.
    public func history(collection: String?, limit: Int) throws -> [RunReport] {
        let runs = try store.runReports(collection: collection, limit: limit)
        if let collection, runs.isEmpty {
            let known = try collections().map(\.name)
            if !known.contains(collection) {
                throw ReconcilerError.failed("no collection named '\(collection)' is applied or has run"
                    + Suggestion.phrase(for: collection, among: known)
                    + (known.isEmpty ? "" : " (applied: \(known.joined(separator: ", ")))"))
            }
        }
        return runs
    }

    /// A recorded run's job logs, failures (`!`) first, then the rest in order; only `job`'s
    /// when given. The run may be named by a unique prefix of its id.
    public func logs(run id: String, job: String?) throws -> (report: RunReport, logs: [(job: String, lines: [String])]) {
        guard let report = try store.runReport(id: id) else {
            throw ReconcilerError.failed("no recorded run has the id '\(id)' (or it is the start of several); "
                + "`syncwright history` lists them")
        }
        let names = report.jobs.map(\.name)
        if let job, !names.contains(job) {
            throw ReconcilerError.failed("run \(report.runId) has no job '\(job)'" + Suggestion.phrase(for: job, among: names)
                + " (its jobs: \(names.joined(separator: ", ")))")
        }
        var out: [(String, [String])] = []
        for name in names where job == nil || name == job {
            let lines = (try store.jobLog(run: report.runId, job: name) ?? "").split(separator: "\n", omittingEmptySubsequences: true)
                .map(String.init)
            out.append((name, lines.filter { $0.hasPrefix("! ") } + lines.filter { !$0.hasPrefix("! ") }))
        }
        return (report, out)
    }
}

/// The directories opened during one run, by connection name, and the specs read for it (each
/// decoded from the store once).
struct DirectoryCache {
    private var open: [String: Directory] = [:]
    private var jobs: [String: JobSpec] = [:]
    private var connections: [String: ConnectionSpec] = [:]

    mutating func job(_ name: String, load: (String) throws -> JobSpec) throws -> JobSpec {
        if let known = jobs[name] { return known }
        let spec = try load(name)
        jobs[name] = spec
        return spec
    }

    mutating func connection(_ name: String, load: (String) throws -> ConnectionSpec) throws -> ConnectionSpec {
        if let known = connections[name] { return known }
        let spec = try load(name)
        connections[name] = spec
        return spec
    }

    mutating func get(_ connection: String, _ make: () throws -> Directory) throws -> Directory {
        if let directory = open[connection] { return directory }
        let directory = try make()
        open[connection] = directory
        return directory
    }

    mutating func evict(_ connection: String) { open[connection] = nil }

    func isOpen(_ connection: String) -> Bool { open[connection] != nil }
}

