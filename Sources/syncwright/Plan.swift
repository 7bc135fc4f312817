import ArgumentParser
import Foundation
import Reconciler

extension PlanFormat: ExpressibleByArgument {}

extension Syncwright {
    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what applying a revision would change in the stored state, and with --preview in the directories.",
            discussion: """
                Fetches, then compares the manifests at --ref (default: the configured branch's tip) with \
                the stored state. After the first apply only the files changed since the applied revision \
                are read; a changed data file (a connection's repoPath) is shown with its row counts. \
                --preview then plans each job that the revision adds or changes (itself, a connection it \
                uses, or a data file it reads; --all: every job) against its live destination, read-only, \
                with the manifests and data files of the revision, and shows its counts and first changes. \
                The jobs of one collection chain, as in `run --preview`: a later job sees an earlier one's \
                creates. Nothing is written to any directory or to the state. With --format markdown the \
                output is one pull-request comment (see docs/pull-requests.md), kept under 65,536 characters. \
                Policies are checked over the manifests (docs/policies.md): a rule with enforcement: deny makes \
                the revision invalid; one with warn is listed under Policies, and does not change the exit code. \
                Exit codes: 0 nothing would change, 2 something would, 1 error (with --preview: also when a \
                job would fail or a guard would trip; the output is printed in full first). An invalid \
                revision is an error; with --format markdown its problems are also printed as a comment.
                """)

        @Option(help: "The branch, tag or commit to plan.")
        var ref: String?

        @Option(help: "text, markdown (for a pull-request comment) or json.")
        var format: PlanFormat = .text

        @Option(help: ArgumentHelp("With --format markdown: the URL of the revision's files, so that each problem of an invalid revision links to its line (e.g. https://github.com/org/config/blob/<sha>/).", valueName: "url"))
        var linkBase: String?

        @Flag(help: "Also show what each new or changed job would do to its destination now (read-only).")
        var preview = false

        @Flag(help: "With --preview: preview every job, changed or not.")
        var all = false

        @Option(help: "With --preview: how many changes to list per job.")
        var limit = 20

        @OptionGroup var options: HomeOptions

        func validate() throws {
            if all && !preview { throw ValidationError("--all goes with --preview") }
            if limit < 0 { throw ValidationError("--limit must be 0 or more") }
        }

        func run() throws {
            var changed = false
            var failing = false
            // An invalid revision is reported as a pull request's head: with --format markdown,
            // as a comment too.
            try Output.run(invalid: .head(markdown: format == .markdown, linkBase: linkBase)) {
                let workspace = try options.workspace()
                try workspace.fetch()
                let planned = try workspace.plan(ref: ref)
                let plan = planned.plan
                changed = !plan.isEmpty
                guard preview else {
                    print(plan.rendered(as: format, colour: Output.colour), terminator: "")
                    return
                }
                let meter = ProgressMeter(enabled: format == .text && isatty(STDERR_FILENO) == 1)
                let found = try workspace.preview(planned, all: all, limit: limit, progress: meter.update)
                meter.finish()
                switch format {
                case .text: print(plan.text(colour: Output.colour) + found.text(), terminator: "")
                case .markdown: print(found.markdown(plan: plan), terminator: "")
                case .json: print(plan.json(preview: found), terminator: "")
                }
                changed = changed || found.changes
                failing = !found.failing.isEmpty
            }
            if failing { throw ExitCode.failure }
            if changed { throw ExitCode(2) }
        }
    }
}
