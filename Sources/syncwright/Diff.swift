import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what the change between two commits does to jobs, collections and schedules.",
            discussion: """
                Run inside any clone of a config repository; no home is needed. This is what a \
                pull-request check posts (--format markdown). Exit codes: 0 no change, 2 changes, 1 error \
                (including invalid manifests at the head).
                """)

        @Argument(help: "The base revision (e.g. origin/main).")
        var base: String

        @Argument(help: "The head revision (e.g. HEAD).")
        var head: String

        @Option(help: "text, markdown or json.")
        var format: PlanFormat = .text

        @Option(name: .customLong("repo"), help: ArgumentHelp("A folder inside the clone (default: the current folder).",
                                                               valueName: "dir"))
        var directory: String?

        @Option(help: ArgumentHelp("With --format markdown: the URL of the head's files, so that each problem of an invalid head links to its line (e.g. https://github.com/org/config/blob/<sha>/).", valueName: "url"))
        var linkBase: String?

        func run() throws {
            var changed = false
            try Output.run(invalid: .head(markdown: format == .markdown, linkBase: linkBase)) {
                let plan = try Offline.diff(base: base, head: head,
                                            in: directory ?? FileManager.default.currentDirectoryPath)
                print(plan.rendered(as: format, colour: Output.colour), terminator: "")
                changed = !plan.isEmpty
            }
            if changed { throw ExitCode(2) }
        }
    }
}
