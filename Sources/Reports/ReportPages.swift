import Foundation

/// One file to write on the reports branch.
public struct ReportFile: Codable, Sendable, Equatable {
    /// The path from the branch's root, e.g. `runs/nightly/20261125T020000Z-ab12/summary.md`.
    public var path: String
    public var text: String
    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }
}

/// What one publish adds to the reports branch: its files and its commit message. Stored in the
/// outbox as JSON until it is published, so it is rendered once, when the run or apply ends.
public struct Publication: Codable, Sendable, Equatable {
    public var message: String
    public var files: [ReportFile]
    public init(message: String, files: [ReportFile]) {
        self.message = message
        self.files = files
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    public static func decode(_ json: String) throws -> Publication {
        try JSONDecoder().decode(Publication.self, from: Data(json.utf8))
    }
}

/// One applied revision, as its page on the reports branch shows it.
public struct AppliedChange: Sendable {
    public var revision: String
    public var appliedAt: Date
    public var created: Int
    public var updated: Int
    public var deleted: Int
    /// The plan as applied, rendered as Markdown.
    public var planMarkdown: String
    /// `Name <email>` of the revision's author and committer.
    public var author: String
    public var committer: String
    /// The revision's commit summary line.
    public var summary: String

    public init(revision: String, appliedAt: Date, created: Int, updated: Int, deleted: Int, planMarkdown: String,
                author: String, committer: String, summary: String) {
        self.revision = revision
        self.appliedAt = appliedAt
        self.created = created
        self.updated = updated
        self.deleted = deleted
        self.planMarkdown = planMarkdown
        self.author = author
        self.committer = committer
        self.summary = summary
    }
}

/// The pages of the reports branch. Pure functions of their input: see docs/reports.md.
public enum ReportPages {
    /// `runs/<collection>/<run-id>`
    public static func folder(of report: RunReport) -> String { "runs/\(report.collection)/\(report.runId)" }

    /// Everything one run publishes: `summary.md`, `report.json` and one `<job>.log` per job that ran.
    public static func publication(for report: RunReport, logs: [String: [String]]) -> Publication {
        let folder = folder(of: report)
        var files = [ReportFile(path: "\(folder)/summary.md", text: summary(report, logs: Set(logs.keys))),
                     ReportFile(path: "\(folder)/report.json", text: report.json() + "\n")]
        for job in report.jobs {
            guard let lines = logs[job.name] else { continue }
            files.append(ReportFile(path: "\(folder)/\(job.name).log", text: lines.map { $0 + "\n" }.joined()))
        }
        let totals = report.jobs.reduce(into: (0, 0, 0)) { sum, job in
            sum.0 += job.stats.created
            sum.1 += job.stats.updated
            sum.2 += job.stats.deleted
        }
        let jobs = report.jobs.count == 1 ? "1 job" : "\(report.jobs.count) jobs"
        let message = "run \(report.collection) \(report.runId): \(report.status.rawValue) "
            + "(\(jobs), +\(totals.0) ~\(totals.1) -\(totals.2))\n\n"
            + "Syncwright-Revision: \(report.revision)\nSyncwright-Run: \(report.runId)\n"
        return Publication(message: message, files: files)
    }

    /// The page of one applied revision.
    public static func publication(for change: AppliedChange) -> Publication {
        let short = String(change.revision.prefix(7))
        let path = "applies/\(RunReport.compactTimestamp(change.appliedAt))-\(short).md"
        let text = """
            # Applied \(short): \(change.created) created, \(change.updated) updated, \(change.deleted) deleted

            | | |
            |---|---|
            | Revision | `\(change.revision)` |
            | Commit | \(cell(change.summary)) |
            | Author | \(cell(change.author)) |
            | Committer | \(cell(change.committer)) |
            | Applied at | \(RunReport.timestamp(change.appliedAt)) |

            \(change.planMarkdown.trimmingCharacters(in: .whitespacesAndNewlines))

            """
        let message = "apply \(short): +\(change.created) ~\(change.updated) -\(change.deleted)\n\n"
            + "Syncwright-Revision: \(change.revision)\n"
        return Publication(message: message, files: [ReportFile(path: path, text: text)])
    }

    /// The page of a revision the reconciler refused to apply: nothing of it was applied, and
    /// the last good revision keeps running. `problems` are the validation errors, one per line.
    public static func rejection(revision: String, author: String, summary: String, problems: [String],
                                 at date: Date, applied: String?) -> Publication {
        let short = String(revision.prefix(7))
        let path = "rejected/\(RunReport.compactTimestamp(date))-\(short).md"
        var text = """
            # Rejected \(short): nothing was applied

            | | |
            |---|---|
            | Revision | `\(revision)` |
            | Commit | \(cell(summary)) |
            | Author | \(cell(author)) |
            | Checked at | \(RunReport.timestamp(date)) |
            | Still running | \(applied.map { "`\($0)`" } ?? "nothing (no revision applied yet)") |

            ## Problems

            
            """
        for problem in problems { text += "- `\(cell(problem))`\n" }
        let message = "rejected \(short): \(problems.count) problem\(problems.count == 1 ? "" : "s"), nothing applied\n\n"
            + "Syncwright-Revision: \(revision)\n"
        let facts = Rejection(revision: revision, rejectedAt: RunReport.timestamp(date), problems: problems.count,
                              page: path, running: applied)
        let json = (try? JSONEncoder().encode(facts)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Publication(message: message, files: [ReportFile(path: path, text: text),
                                                      ReportFile(path: String(path.dropLast(3)) + ".json", text: json + "\n")])
    }

    /// The table row saying whom the run notified, or why no one ("" without notifications).
    static func notifiedRow(_ report: RunReport) -> String {
        guard let n = report.notifications else { return "" }
        let what = n.queued.isEmpty ? (n.reason ?? "no one") : n.queued.joined(separator: "; ") + (n.reason.map { " (\($0))" } ?? "")
        return "| Notified | \(what.replacingOccurrences(of: "|", with: "\\|")) |\n"
    }

    /// `summary.md`: the run's facts, a table of its jobs, then its errors. `logged` names the jobs
    /// that have a log file next to it.
    public static func summary(_ report: RunReport, logs logged: Set<String>) -> String {
        let seconds = report.finishedAt.timeIntervalSince(report.startedAt)
        var out = """
            # \(report.collection): \(report.status.rawValue)

            | | |
            |---|---|
            | Run | `\(report.runId)` |
            | Status | **\(report.status.rawValue)** |
            | Trigger | \(report.trigger.rawValue)\(report.schedule.map { " (schedule `\($0)`)" } ?? "")\(report.request.map { " (request [\($0)](../../../requests/\($0).md))" } ?? "") |
            | Manifest revision | `\(report.revision)` |
            | Started | \(RunReport.timestamp(report.startedAt)) |
            | Finished | \(RunReport.timestamp(report.finishedAt)) |
            | Duration | \(String(format: "%.3f", seconds)) s |
            \(notifiedRow(report))\(report.windowOverride.map { "| Sync window | \($0.replacingOccurrences(of: "|", with: "\\|")) |\n" } ?? "")
            ## Jobs

            | Job | Status | Read | Created | Updated | Deleted | Unchanged | Skipped | Failed | Duration | Log |
            |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|

            """
        for job in report.jobs {
            let s = job.stats
            let log = logged.contains(job.name) ? "[\(job.name).log](\(job.name).log)" : ""
            out += "| \(job.name) | \(job.status.rawValue) | \(s.read) | \(s.created) | \(s.updated) | \(s.deleted) "
                + "| \(s.unchanged) | \(s.skipped) | \(s.failed) | \(job.durationMs) ms | \(log) |\n"
        }
        let unresolved = report.jobs.filter { $0.stats.unresolved > 0 }
        if !unresolved.isEmpty {
            out += "\n"
            for job in unresolved {
                out += "- \(job.name): \(job.stats.unresolved) reference value\(job.stats.unresolved == 1 ? "" : "s") named no object "
                    + "and \(job.stats.unresolved == 1 ? "was" : "were") left out (the job's log lists them as `?` lines)\n"
            }
        }
        if let scheduledFor = report.scheduledFor {
            out = out.replacingOccurrences(of: "| Started |", with: "| Scheduled for | \(RunReport.timestamp(scheduledFor)) |\n| Started |")
        }
        if let reason = report.reason {
            out = out.replacingOccurrences(of: "| Started |", with: "| Stopped | \(reason.rawValue) |\n| Started |")
        }
        let failing = report.jobs.filter { !($0.failures ?? []).isEmpty }
        if !failing.isEmpty {
            out += "\n## Errors\n\n"
            for job in failing {
                for failure in job.failures ?? [] {
                    out += "- **\(cell(job.name))** `\(cell(failure.object))`: \(cell(failure.reason))\n"
                }
                let rest = job.stats.failed - (job.failures?.count ?? 0)
                if rest > 0 {
                    out += "- **\(cell(job.name))**: \(rest) more failed"
                        + (logged.contains(job.name) ? ", listed in [\(job.name).log](\(job.name).log)" : "") + "\n"
                }
            }
        }
        if let notes = report.notes, !notes.isEmpty {
            out += "\n## Notes\n\n"
            for note in notes { out += "- \(cell(note))\n" }
        }
        if let warnings = report.warnings, !warnings.isEmpty {
            out += "\n## Warnings\n\n"
            for warning in warnings { out += "- \(cell(warning))\n" }
        }
        let waiting = report.jobs.filter { $0.request != nil }
        if !waiting.isEmpty {
            out += "\n## Awaiting approval\n\n"
            for job in waiting {
                let id = job.request ?? ""
                out += "- **\(job.name)**: request [\(id)](../../../requests/\(id).md)\n"
            }
        }
        let errors = report.jobs.filter { $0.error != nil }
        if !errors.isEmpty {
            out += "\n## Errors\n\n"
            for job in errors { out += "- **\(job.name)**: \(cell(job.error ?? ""))\n" }
        }
        return out
    }

    /// What README.md shows of a run: read from its `report.json` without decoding the rest.
    /// The times stay text: they are printed as they are, and in their fixed UTC form they
    /// compare in time order.
    public struct RunHeader: Codable, Sendable, Equatable {
        public var status: String
        public var startedAt: String
        public var finishedAt: String

        public static func decode(_ data: Data) -> RunHeader? { try? JSONDecoder().decode(RunHeader.self, from: data) }
    }

    /// What README.md shows of an open request: read from its `requests/<id>.json`.
    public struct PendingRequest: Codable, Sendable, Equatable {
        public var id: String
        public var job: String
        public var collection: String
        public var status: String
        public var requestedBy: String
        public var requestedAt: String

        public static func decode(_ data: Data) -> PendingRequest? { try? JSONDecoder().decode(PendingRequest.self, from: data) }
    }

    /// A revision the reconciler refused, as `rejected/<name>.json` holds it: the README's banner
    /// and `status` say so until a later revision is applied.
    public struct Rejection: Codable, Sendable, Equatable {
        public var revision: String
        public var rejectedAt: String
        public var problems: Int
        /// The page listing the problems, from the branch's root.
        public var page: String
        /// The revision that keeps running, if any.
        public var running: String?
        public init(revision: String, rejectedAt: String, problems: Int, page: String, running: String?) {
            self.revision = revision
            self.rejectedAt = rejectedAt
            self.problems = problems
            self.page = page
            self.running = running
        }

        public static func decode(_ data: Data) -> Rejection? { try? JSONDecoder().decode(Rejection.self, from: data) }

        /// One sentence for the top of README.md and of `status`.
        public var sentence: String {
            "revision \(revision.prefix(7)) was rejected at \(rejectedAt): \(problems) problem\(problems == 1 ? "" : "s")"
                + " (see \(page)); nothing of it was applied, and "
                + (running.map { "revision \($0.prefix(7)) keeps running" } ?? "no revision is applied yet")
        }
    }

    /// One collection's row in `README.md`.
    public struct CollectionRow: Sendable, Equatable {
        public var collection: String
        public var timesRun: Int
        /// The newest run's header, nil when its report cannot be read.
        public var latest: RunHeader?
        public var latestRunID: String
        public init(collection: String, timesRun: Int, latest: RunHeader?, latestRunID: String) {
            self.collection = collection
            self.timesRun = timesRun
            self.latest = latest
            self.latestRunID = latestRunID
        }
    }

    /// `README.md`: the latest run of every collection, and the latest apply. Built from the
    /// branch's own files each time, so it counts every reconciler's runs.
    public static func readme(rows: [CollectionRow], latestApply: String?, pendingRequests: [PendingRequest],
                              rejection: Rejection? = nil) -> String {
        var out = """
            # Syncwright reports

            \(rejection.map { "> **Rejected:** \(cell($0.sentence).replacingOccurrences(of: "(see \($0.page))", with: "([problems](\($0.page)))")).\n\n" } ?? "")Each run of a job collection is in `runs/<collection>/<run-id>/`, each applied revision in `applies/`.

            | Collection | Latest run | Status | Finished | Times run |
            |---|---|---|---|---:|

            """
        for row in rows {
            let link = "[\(row.latestRunID)](runs/\(row.collection)/\(row.latestRunID)/summary.md)"
            let status = row.latest.map { "**\($0.status)**" } ?? "unreadable"
            let finished = row.latest?.finishedAt ?? ""
            out += "| \(row.collection) | \(link) | \(status) | \(finished) | \(row.timesRun) |\n"
        }
        if rows.isEmpty { out += "| (no runs yet) | | | | |\n" }
        out += "\n## Pending requests\n\n"
        out += pendingRequests.isEmpty ? "None.\n" : pendingRequests.map {
            "- [\($0.id)](requests/\($0.id).md): \($0.status) job \(cell($0.job)) of \(cell($0.collection)), "
                + "requested by \(cell($0.requestedBy)) at \($0.requestedAt)\n"
        }.joined()
        if let latestApply {
            out += "\n## Latest apply\n\n[\(latestApply)](applies/\(latestApply))\n"
        }
        return out
    }

    /// Text safe inside a Markdown table cell: one line, pipes escaped.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "|", with: "\\|")
    }
}
