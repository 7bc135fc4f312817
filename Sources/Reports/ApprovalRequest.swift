import Foundation

/// A request to run one job under a workflow, and what became of it. Stored in the state store
/// and published as `requests/<id>.md` and `requests/<id>.json`. See docs/workflows.md.
public struct ApprovalRequest: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable, CaseIterable {
        /// Waiting for a decision.
        case pending
        /// An approver approved; the reconciler runs the job on its next pass.
        case approved
        /// An approver denied; nothing runs.
        case denied
        /// Past `expiresAfter`, or the job changed since the request: nothing runs.
        case expired
        /// Approved, and the job ran (see `executedRunId`).
        case executed

        /// Whether a decision may still change it.
        public var isOpen: Bool { self == .pending }
    }

    /// What the job would have done when the request was raised: a dry run.
    public struct Preview: Codable, Sendable, Equatable {
        public var read, create, update, rename, delete, unchanged, skipped, failed: Int
        /// The first changes, as log lines (secrets masked).
        public var changes: [String]
        /// How many changes `changes` leaves out.
        public var moreChanges: Int
        /// Why the job would fail, if it would.
        public var error: String?

        public init(read: Int, create: Int, update: Int, rename: Int, delete: Int, unchanged: Int, skipped: Int,
                    failed: Int, changes: [String], moreChanges: Int, error: String?) {
            (self.read, self.create, self.update, self.rename, self.delete) = (read, create, update, rename, delete)
            (self.unchanged, self.skipped, self.failed) = (unchanged, skipped, failed)
            self.changes = changes
            self.moreChanges = moreChanges
            self.error = error
        }
    }

    /// One Approval manifest that named this request, counted or not.
    public struct Decision: Codable, Sendable, Equatable {
        /// The Approval manifest's name.
        public var approval: String
        public var decision: String
        /// `Name <email>` of the author of the commit that wrote the Approval.
        public var author: String
        public var commit: String
        public var reason: String?
        public var at: Date
        /// Whether it decided the request.
        public var counted: Bool
        /// Why it did not count, as "ignored: mallory@corp.example is not an approver".
        public var note: String?

        public init(approval: String, decision: String, author: String, commit: String, reason: String?, at: Date,
                    counted: Bool, note: String?) {
            self.approval = approval
            self.decision = decision
            self.author = author
            self.commit = commit
            self.reason = reason
            self.at = at
            self.counted = counted
            self.note = note
        }
    }

    public var id: String
    public var job: String
    public var collection: String
    public var status: Status
    /// The run that raised it.
    public var runId: String
    /// The applied revision the request was raised at, and the job's spec hash then: an approval
    /// counts only for that spec.
    public var revision: String
    public var jobHash: String
    /// `manual` or `schedule`.
    public var trigger: RunTrigger
    public var requestedBy: String
    public var requestedAt: Date
    public var expiresAt: Date
    public var approvers: [String]
    public var preview: Preview
    public var decisions: [Decision]
    /// Who decided (`Name <email>`), when, and their reason; set by the decision that counted.
    public var decidedBy: String?
    public var decidedAt: Date?
    public var reason: String?
    /// Why it expired.
    public var note: String?
    /// The run that executed the approved job.
    public var executedRunId: String?
    /// For a request raised because a guard stopped the job (a delete threshold, the empty-source
    /// guard, a policy's limit or protection): what it said. Approved, it lets the job through
    /// once, with the guard lifted, for this change set only.
    public var guardTripped: String?
    /// SHA-256 of the change set the guard stopped: an approval counts for it alone.
    public var changeSetHash: String?

    public init(id: String, job: String, collection: String, status: Status, runId: String, revision: String,
                jobHash: String, trigger: RunTrigger, requestedBy: String, requestedAt: Date, expiresAt: Date,
                approvers: [String], preview: Preview) {
        self.id = id
        self.job = job
        self.collection = collection
        self.status = status
        self.runId = runId
        self.revision = revision
        self.jobHash = jobHash
        self.trigger = trigger
        self.requestedBy = requestedBy
        self.requestedAt = requestedAt
        self.expiresAt = expiresAt
        self.approvers = approvers
        self.preview = preview
        self.decisions = []
    }

    /// `req-YYYYMMDD-HHMMSS-<4 hex>`: lowercase, sorts by time, and fits in a manifest name
    /// (`approve-<id>`).
    public static func makeID(at date: Date) -> String {
        let stamp = RunReport.compactTimestamp(date) // YYYYMMDDTHHMMSSZ
        let digits = stamp.filter(\.isNumber)
        return "req-\(digits.prefix(8))-\(digits.dropFirst(8))-\(String(format: "%04x", UInt16.random(in: 0...UInt16.max)))"
    }

    public func json() -> String {
        (try? RunReport.encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }

    public static func decode(_ json: String) throws -> ApprovalRequest {
        try RunReport.decoder.decode(ApprovalRequest.self, from: Data(json.utf8))
    }
}

extension ReportPages {
    /// `requests/<id>.md` and `requests/<id>.json`, published each time the request changes.
    public static func publication(for request: ApprovalRequest) -> Publication {
        let files = [ReportFile(path: "requests/\(request.id).md", text: requestPage(request)),
                     ReportFile(path: "requests/\(request.id).json", text: request.json() + "\n")]
        let message = "request \(request.id): \(request.status.rawValue) (job \(request.job) of \(request.collection))\n\n"
            + "Syncwright-Revision: \(request.revision)\nSyncwright-Request: \(request.id)\n"
        return Publication(message: message, files: files)
    }

    /// The request as its approvers read it: what the job would do, and every decision seen.
    public static func requestPage(_ request: ApprovalRequest) -> String {
        let p = request.preview
        var out = """
            # Request \(request.id): \(request.status.rawValue)

            | | |
            |---|---|
            | Job | \(request.job) |
            | Collection | \(request.collection) |
            | Status | **\(request.status.rawValue)** |
            | Requested by | \(cell(request.requestedBy)) (\(request.trigger.rawValue) run [\(request.runId)](../runs/\(request.collection)/\(request.runId)/summary.md)) |
            | Requested at | \(RunReport.timestamp(request.requestedAt)) |
            | Expires at | \(RunReport.timestamp(request.expiresAt)) |
            | Manifest revision | `\(request.revision)` |
            | Approvers | \(cell(request.approvers.joined(separator: ", "))) |

            """
        if let stopped = request.guardTripped {
            out += "| Stopped by | \(cell(stopped)) |\n"
                + "| Asks | to let this one change set through once, with that guard lifted; if the change set moves, the request expires |\n"
        }
        if let decidedBy = request.decidedBy {
            out += "| Decided by | \(cell(decidedBy))\(request.decidedAt.map { " at \(RunReport.timestamp($0))" } ?? "") |\n"
        }
        if let reason = request.reason { out += "| Reason | \(cell(reason)) |\n" }
        if let note = request.note { out += "| Note | \(cell(note)) |\n" }
        if let run = request.executedRunId {
            out += "| Executed by run | [\(run)](../runs/\(request.collection)/\(run)/summary.md) |\n"
        }
        out += """

            ## What the job would do

            | Read | Create | Update | Rename | Delete | Unchanged | Skipped | Failed |
            |---:|---:|---:|---:|---:|---:|---:|---:|
            | \(p.read) | \(p.create) | \(p.update) | \(p.rename) | \(p.delete) | \(p.unchanged) | \(p.skipped) | \(p.failed) |

            """
        if let error = p.error { out += "\nThe job would fail: \(cell(error))\n" }
        if !p.changes.isEmpty {
            out += "\n```\n" + p.changes.joined(separator: "\n") + "\n```\n"
            if p.moreChanges > 0 { out += "\n… and \(p.moreChanges) more changes.\n" }
        }
        out += """

            ## How to decide

            Merge an Approval manifest to the config branch (its commit's author must be an approver), or run
            `syncwright approve \(request.id)` / `syncwright deny \(request.id) --reason "…"`:

            ```yaml
            apiVersion: syncwright.dev/v1
            kind: Approval
            metadata: { name: approve-\(request.id) }
            spec: { request: \(request.id), decision: approve, reason: "…" }
            ```

            """
        if !request.decisions.isEmpty {
            out += "\n## Decisions\n\n"
            for d in request.decisions {
                let what = "\(d.decision) by \(d.author) in `\(d.commit.prefix(7))` (Approval `\(d.approval)`)"
                    + (d.reason.map { ": \($0)" } ?? "")
                out += "- \(cell(what))" + (d.counted ? " (counted)" : " (\(cell(d.note ?? "ignored")))") + "\n"
            }
        }
        return out
    }
}
