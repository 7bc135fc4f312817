import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a collection now, from the stored (applied) state.",
            discussion: """
                Jobs run in order. A failed job with onFailure: abort stops the rest (the run is aborted); \
                with continue the run goes on (and is partial). Each job reports read, created, updated, \
                deleted, unchanged, skipped and failed objects; the run is recorded (see `syncwright history`) \
                and published to the reports branch of the remote. When the remote cannot be reached the \
                report stays queued, a warning says so, and the next run, apply or reconcile publishes it. \
                --preview computes everything and writes nothing: destinations stay as they are and no run \
                is recorded. A job with a workflow is not run: a request is raised for it (see `syncwright \
                requests`), its status and the run's are awaitingApproval, and an approver's decision lets the \
                reconciler run it. When a reconciler holds the home, the run (or preview) is handed to it \
                through the state store and followed here to its end ("sync now"); --no-wait prints the run \
                id instead. A job that ran to its end but had objects fail is completedWithErrors, and \
                its run partial; the first failures are listed with their DN and reason (all of them: \
                `syncwright logs RUN JOB`). A collection that writes a connection whose sync window (a policy's \
                windows) is closed now is not run unless --override-window is given. Exit codes: 0 when the run succeeded or awaits approval; 3 when it \
                is partial (some jobs or objects failed, the rest was written); 1 when it failed, was aborted, \
                or could not start (for --preview: 1 when a job would fail).
                """)

        @Argument(help: "The collection to run.", completion: CompletionNames.collections)
        var collection: String

        @Flag(help: "A dry run: show what each job would change, and write nothing.")
        var preview = false

        @Option(help: "text or json (the run report).")
        var format: OutputFormat = .text

        @Option(help: "With --preview: how many changes to show per job.")
        var show = 10

        @Flag(help: "When a reconciler holds the home: hand the run to it and print the run id, without waiting for the run.")
        var noWait = false

        @Flag(help: "Run even though a policy's sync window is closed now; the run's report records the override.")
        var overrideWindow = false

        @OptionGroup var options: HomeOptions

        func run() throws {
            var succeeded = false
            var partial = false
            try Output.run {
                let workspace = try options.workspace()
                // A preview writes nothing, so it may run beside a reconciler.
                let claim: WorkspaceClaim?
                if preview, let holder = workspace.reconcilerToHandTo() {
                    // The reconciler previews it: it has the connections' secrets in its environment.
                    let outcome = try handOverPreview(workspace, to: holder)
                    succeeded = outcome.previews.allSatisfy { $0.error == nil } && outcome.report.status != .failed
                    return
                } else if preview {
                    claim = nil
                } else if let holder = workspace.reconcilerToHandTo() {
                    // "Sync now": the running reconciler runs it; this command follows it.
                    let report = try handOver(workspace, to: holder)
                    guard let report else { succeeded = true; return }
                    succeeded = [.succeeded, .awaitingApproval].contains(report.status)
                    partial = report.status == .partial
                    return
                } else {
                    claim = try workspace.claim(for: "run")
                }
                defer { claim?.release() }
                let meter = ProgressMeter(enabled: format == .text && isatty(STDERR_FILENO) == 1)
                let outcome = try workspace.run(collection: collection, preview: preview, previewLines: show,
                                                progress: meter.update, overrideWindow: overrideWindow)
                meter.finish()
                switch format {
                case .json:
                    print(try Output.json(outcome.report))
                case .text:
                    print(preview ? RunText.preview(outcome) : RunText.summary(outcome.report), terminator: "")
                }
                if !preview {
                    Output.publish(workspace, toStandardOutput: format == .text)
                    Output.deliver(workspace)
                }
                succeeded = preview ? outcome.previews.allSatisfy { $0.error == nil } && outcome.report.status != .failed
                                    : [.succeeded, .awaitingApproval].contains(outcome.report.status)
                partial = !preview && outcome.report.status == .partial
            }
            if partial { throw ExitCode(3) }
            if !succeeded { throw ExitCode.failure }
        }
    }
}

extension Syncwright.Run {
    /// Queues the run for the reconciler `holder`, then (unless --no-wait) follows it: its
    /// progress on a terminal, then its report. Nil with --no-wait.
    func handOver(_ workspace: Workspace, to reconciler: String) throws -> RunReport? {
        // Refused here at once, rather than by the reconciler after the hand-over.
        if !overrideWindow, let closed = try workspace.closedWindow(collection: collection, at: Date()) {
            throw ReconcilerError.windowClosed(collection: collection, reason: closed)
        }
        let request = try workspace.queueRun(collection: collection, requestedBy: Self.identity, overrideWindow: overrideWindow)
        if noWait {
            print("Handed run \(request.runId) of \(collection) to \(reconciler); "
                  + "`syncwright logs \(request.runId)` and `syncwright history` show it once it ends.")
            return nil
        }
        Output.standardError("Handed the run to \(reconciler), which runs this home's collections; following run \(request.runId).")
        let tty = format == .text && isatty(STDERR_FILENO) == 1
        var lastProgress: String?
        var waitingNoted = false
        _ = try follow(request, in: workspace, reconciler: reconciler, what: "run \(request.runId)") { state in
            if state.status == .queued, !waitingNoted, Date().timeIntervalSince(state.requestedAt) > 3 {
                Output.standardError("Waiting: \(collection) is running already; the reconciler starts this run when it ends.")
                waitingNoted = true
            }
            if tty, let progress = state.progress, progress != lastProgress {
                FileHandle.standardError.write(Data("\r\u{1B}[K\(progress)".utf8))
                lastProgress = progress
            }
        }
        if tty, lastProgress != nil { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        guard let report = try workspace.report(ofRun: request.runId) else {
            throw ReconcilerError.handedRun("the reconciler ended run \(request.runId) but recorded no report")
        }
        switch format {
        case .json: print(try Output.json(report))
        case .text: print(RunText.summary(report), terminator: "")
        }
        return report
    }

    /// Hands a preview to the reconciler `holder`, waits for what it found, and prints it.
    func handOverPreview(_ workspace: Workspace, to reconciler: String) throws -> RunOutcome {
        let request = try workspace.queueRun(collection: collection, requestedBy: Self.identity, preview: true, previewLines: show)
        Output.standardError("Handed the preview to \(reconciler), which runs this home's collections.")
        let state = try follow(request, in: workspace, reconciler: reconciler, what: "the preview") { _ in }
        guard let outcome = try workspace.previewOutcome(of: state) else {
            throw ReconcilerError.handedRun("\(reconciler) ended the preview but kept no result")
        }
        switch format {
        case .json: print(try Output.json(outcome.report))
        case .text: print(RunText.preview(outcome), terminator: "")
        }
        return outcome
    }

    /// Who asked, for the reconciler's log.
    static var identity: String { "\(ProcessInfo.processInfo.environment["USER"] ?? "syncwright run") (pid \(getpid()))" }

    /// Polls a handed-over request until it ends, calling `onPoll` with each state on the way;
    /// the finished state. Throws when the reconciler failed it, or stopped before its end.
    func follow(_ request: HandedRun, in workspace: Workspace, reconciler: String, what: String,
                onPoll: (HandedRun) -> Void) throws -> HandedRun {
        while true {
            let state = try workspace.runRequest(request.id)
            switch state.status {
            case .finished:
                return state
            case .failed:
                throw ReconcilerError.handedRun("\(reconciler) could not run \(what) of \(collection): \(state.error ?? "no reason given")")
            case .queued, .started:
                if workspace.reconcilerToHandTo() == nil {
                    if state.status == .queued {
                        try workspace.abandon(state, because: "the reconciler stopped before it started \(what)")
                        throw ReconcilerError.handedRun("\(reconciler) stopped before it started \(what); nothing was run. Run it again")
                    }
                    throw ReconcilerError.handedRun("\(reconciler) stopped while \(what) was running"
                        + (request.preview ? "; run it again" : "; `syncwright history` shows it as interrupted"))
                }
                onPoll(state)
                usleep(150_000)
            }
        }
    }
}

/// A live progress line on stderr, only on a terminal.
///
/// `@unchecked Sendable`: the engine reports progress from its sequential loops only (never from
/// the parallel mapping), so `update` is never called concurrently.
final class ProgressMeter: @unchecked Sendable {
    let enabled: Bool
    private var job = ""
    private var phase: JobProgress.Phase?
    private var shown = false
    /// Recent samples (time, count) of this job's phase: the rate is over the last few seconds,
    /// not since the start (which a slow start or a pause would skew for the rest of the job).
    private var samples: [(Date, Int)] = []
    static let window: TimeInterval = 5

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ progress: JobProgress) {
        guard enabled else { return }
        let now = Date()
        if progress.job != job || progress.phase != phase {
            job = progress.job
            phase = progress.phase
            samples = [(now, 0)]
        }
        samples.append((now, progress.done))
        while samples.count > 2, let first = samples.first, now.timeIntervalSince(first.0) > Self.window { samples.removeFirst() }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + Self.line(progress, samples: samples)).utf8))
        shown = true
    }

    /// `job: writing 12000 of 40000 objects (30%, 5200/s)`; the rate over the samples given, and
    /// no rate until they span a tenth of a second.
    static func line(_ progress: JobProgress, samples: [(Date, Int)]) -> String {
        var details: [String] = []
        if let total = progress.total, total > 0 { details.append("\(min(100, progress.done * 100 / total))%") }
        if let first = samples.first, let last = samples.last, last.0.timeIntervalSince(first.0) >= 0.1 {
            details.append("\(Int(Double(last.1 - first.1) / last.0.timeIntervalSince(first.0)))/s")
        }
        let total = progress.total.map { " of \($0)" } ?? ""
        return "\(progress.job): \(progress.phase.rawValue) \(progress.done)\(total) objects"
            + (details.isEmpty ? "" : " (\(details.joined(separator: ", ")))")
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

/// Text renderings of runs.
enum RunText {
    static func short(_ revision: String) -> String { String(revision.prefix(7)) }

    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int>) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return rightAligned.contains(index) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }

    static func summary(_ report: RunReport) -> String {
        let seconds = report.finishedAt.timeIntervalSince(report.startedAt)
        var out = "Run \(report.runId) of \(report.collection): \(report.status.rawValue) "
            + "(\(report.trigger.rawValue), revision \(short(report.revision)), \(String(format: "%.1f", seconds)) s)\n\n"
        out += table(["JOB", "STATUS", "READ", "CREATED", "UPDATED", "DELETED", "UNCHANGED", "SKIPPED", "FAILED", "TIME"],
                     report.jobs.map { job in
                         let s = job.stats
                         return [job.name, job.status.rawValue, "\(s.read)", "\(s.created)", "\(s.updated)", "\(s.deleted)",
                                 "\(s.unchanged)", "\(s.skipped)", "\(s.failed)", "\(job.durationMs) ms"]
                     }, rightAligned: Set(2...9))
        for warning in report.warnings ?? [] { out += "\nwarning: \(warning)\n" }
        for job in report.jobs where job.stats.unresolved > 0 {
            out += "\n\(job.name): \(job.stats.unresolved) reference value\(job.stats.unresolved == 1 ? "" : "s") named no object "
                + "and \(job.stats.unresolved == 1 ? "was" : "were") left out (`syncwright logs \(report.runId) \(job.name)` lists them as ? lines)\n"
        }
        for job in report.jobs {
            guard let request = job.request else { continue }
            out += "\n\(job.name) needs an approval: request \(request) (see `syncwright requests`).\n"
        }
        let failing = report.jobs.filter { !($0.failures ?? []).isEmpty }
        if !failing.isEmpty {
            out += "\nErrors:\n"
            for job in failing {
                for failure in job.failures ?? [] { out += "  \(job.name): \(failure.object): \(failure.reason)\n" }
                let rest = job.stats.failed - (job.failures?.count ?? 0)
                if rest > 0 { out += "  \(job.name): \(rest) more failed (`syncwright logs \(report.runId) \(job.name)` lists them)\n" }
            }
        }
        let problems = report.jobs.filter { $0.error != nil }
        if !problems.isEmpty {
            out += "\n" + problems.map { "\($0.name): \($0.error ?? "")" }.joined(separator: "\n") + "\n"
        }
        return out
    }

    static func preview(_ outcome: RunOutcome) -> String {
        var out = "Preview of \(outcome.report.collection) at revision \(short(outcome.report.revision)): nothing is written.\n"
        for job in outcome.report.jobs {
            out += "\n"
            guard let p = outcome.previews.first(where: { $0.job == job.name }) else {
                out += "\(job.name): \(job.status.rawValue)\(job.error.map { ": \($0)" } ?? "")\n"
                continue
            }
            out += "\(p.job): \(p.counts)\n"
            if let error = p.error { out += "  would fail: \(error)\n" }
            if let unresolved = p.unresolved {
                out += "  \(unresolved) reference value\(unresolved == 1 ? "" : "s") would name no object and be left out\n"
            }
            if let approvers = p.needsApprovalFrom {
                out += "  under a workflow: a run would raise a request for \(approvers.joined(separator: ", ")) instead of running it\n"
            }
            for line in p.lines { out += "  \(line)\n" }
            if p.moreChanges > 0 { out += "  … and \(p.moreChanges) more changes\n" }
        }
        return out
    }
}
