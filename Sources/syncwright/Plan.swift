import ArgumentParser
import Foundation
import Reconciler

extension PlanFormat: ExpressibleByArgument {}

extension Syncwright {
    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what applying a revision would change in the stored state.",
            discussion: """
                Fetches, then compares the manifests at --ref (default: the configured branch's tip) with \
                the stored state. After the first apply only the files changed since the applied revision \
                are read. Exit codes: 0 nothing would change, 2 something would, 1 error. An invalid \
                revision is an error; with --format markdown its problems are also printed as a comment.
                """)

        @Option(help: "The branch, tag or commit to plan.")
        var ref: String?

        @Option(help: "text, markdown (for a pull-request comment) or json.")
        var format: PlanFormat = .text

        @Option(help: ArgumentHelp("With --format markdown: the URL of the revision's files, so that each problem of an invalid revision links to its line (e.g. https://github.com/org/config/blob/<sha>/).", valueName: "url"))
        var linkBase: String?

        @OptionGroup var options: HomeOptions

        func run() throws {
            var changed = false
            // An invalid revision is reported as a pull request's head: with --format markdown,
            // as a comment too.
            try Output.run(invalid: .head(markdown: format == .markdown, linkBase: linkBase)) {
                let workspace = try options.workspace()
                try workspace.fetch()
                let plan = try workspace.plan(ref: ref).plan
                print(plan.rendered(as: format, colour: Output.colour), terminator: "")
                changed = !plan.isEmpty
            }
            if changed { throw ExitCode(2) }
        }
    }
}
