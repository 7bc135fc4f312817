import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct Requests: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List workflow requests: jobs waiting for an approval, and what became of them.",
            discussion: """
                A manual run of a collection raises a request for each job that has a workflow, instead of \
                running it. The request holds a preview of what the job would do. An approver decides it with \
                an Approval manifest merged to the config branch (or `syncwright approve` / `syncwright deny`, \
                which commit and push that manifest); the reconciler's next pass runs an approved job. \
                Statuses: pending, approved (runs on the next reconcile pass), denied, expired (past \
                expiresAfter, or the job changed since) and executed. Reads the stored state only.
                """)

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        @Option(help: "Only requests with this status: pending, approved, denied, expired or executed.")
        var status: ApprovalRequest.Status?

        @OptionGroup var options: HomeOptions

        func run() throws {
            try Output.run {
                let workspace = try options.workspace()
                let requests = try workspace.requests(statuses: status.map { [$0] })
                switch format {
                case .json:
                    print(try Output.json(["requests": requests]))
                case .text:
                    guard !requests.isEmpty else {
                        print(status.map { "No \($0.rawValue) requests." } ?? "No requests.")
                        return
                    }
                    print(RunText.table(["REQUEST", "STATUS", "JOB", "COLLECTION", "REQUESTED", "BY", "DECIDED BY / NOTE"],
                                        requests.map { r in
                                            [r.id, r.status.rawValue, r.job, r.collection, RunReport.timestamp(r.requestedAt),
                                             r.requestedBy,
                                             (r.decidedBy ?? r.note ?? "-") + (r.reason.map { ": \($0)" } ?? "")]
                                        }, rightAligned: []), terminator: "")
                }
            }
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a workflow request: commit an Approval manifest to the config branch and push it.",
            discussion: """
                Writes approvals/approve-<id>.yaml on the tip of the config branch, as a commit by --author \
                (default: your git identity, user.name and user.email), and pushes it without forcing. It is \
                the same change a pull request would merge. The decision counts only when that author is one \
                of the job's approvers, so this refuses anyone else. The reconciler applies it on its next \
                pass and runs the job then (trigger approval).
                """)

        @Argument(help: "The request's id, as `syncwright requests` lists it.", completion: CompletionNames.requests)
        var id: String

        @Option(help: "Why: kept in the manifest and on the request's page.")
        var reason: String?

        @Option(help: ArgumentHelp("Commit as this person instead of the git identity.", valueName: "Name <email>"))
        var author: String?

        @OptionGroup var options: HomeOptions

        func run() throws {
            try Output.run { try Decide.write(.approve, id: id, reason: reason, author: author, options: options) }
        }
    }

    struct Deny: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deny a workflow request: commit an Approval manifest (decision: deny) and push it.",
            discussion: """
                Writes approvals/deny-<id>.yaml on the tip of the config branch, as a commit by --author \
                (default: your git identity), and pushes it without forcing. The job does not run; the reason \
                is recorded on the request's page on the reports branch once the reconciler applies it.
                """)

        @Argument(help: "The request's id, as `syncwright requests` lists it.", completion: CompletionNames.requests)
        var id: String

        @Option(help: "Why the job must not run (required).")
        var reason: String

        @Option(help: ArgumentHelp("Commit as this person instead of the git identity.", valueName: "Name <email>"))
        var author: String?

        @OptionGroup var options: HomeOptions

        func validate() throws {
            if reason.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ValidationError("--reason must say why the request is denied")
            }
        }

        func run() throws {
            try Output.run { try Decide.write(.deny, id: id, reason: reason, author: author, options: options) }
        }
    }
}

/// What `approve` and `deny` share.
enum Decide {
    static func write(_ decision: ApprovalDecision, id: String, reason: String?, author: String?,
                      options: HomeOptions) throws {
        let workspace = try options.workspace()
        let pushed = try DecisionWriter(workspace: workspace).write(decision, request: id, reason: reason, author: author)
        print("Pushed \(pushed.path) to \(pushed.branch) (commit \(pushed.commit.prefix(7))).")
        print(decision == .approve
              ? "The reconciler runs job \(pushed.request.job) of \(pushed.request.collection) on its next pass."
              : "Job \(pushed.request.job) will not run; the request is denied once the reconciler applies this.")
    }
}

extension ApprovalRequest.Status: ExpressibleByArgument {}
