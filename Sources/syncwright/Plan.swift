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
                are read. Exit codes: 0 nothing would change, 2 something would, 1 error.
                """)

        @Option(help: "The branch, tag or commit to plan.")
        var ref: String?

        @Option(help: "text, markdown (for a pull-request comment) or json.")
        var format: PlanFormat = .text

        @OptionGroup var options: HomeOptions

        func run() throws {
            var changed = false
            try Output.run {
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
