import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List recorded runs, newest first.",
            discussion: "The JSON form is {\"runs\": [REPORT, …]}; docs/report-json.md documents REPORT.")

        @Argument(help: "Only runs of this collection.", completion: CompletionNames.collections)
        var collection: String?

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        @Option(help: "At most this many runs.")
        var limit = 20

        @OptionGroup var options: HomeOptions

        struct Document: Encodable { let runs: [RunReport] }

        func run() throws {
            try Output.run {
                let workspace = try options.workspace()
                workspace.recoverInterruptedRunsIfIdle(by: "history")
                let runs = try workspace.history(collection: collection, limit: limit)
                switch format {
                case .json:
                    print(try Output.json(Document(runs: runs)))
                case .text:
                    if runs.isEmpty {
                        print(collection.map { "No runs of \($0) yet." } ?? "No runs yet.")
                        return
                    }
                    print(RunText.table(["RUN", "COLLECTION", "TRIGGER", "STATUS", "STARTED", "JOBS", "+", "~", "-", "!"],
                                        runs.map { r in
                                            func sum(_ f: (RunReport.Statistics) -> Int) -> String { "\(r.jobs.map { f($0.stats) }.reduce(0, +))" }
                                            return [r.runId, r.collection, r.trigger.rawValue, r.status.rawValue,
                                                    RunReport.timestamp(r.startedAt), "\(r.jobs.count)",
                                                    sum(\.created), sum(\.updated), sum(\.deleted), sum(\.failed)]
                                        }, rightAligned: Set(5...9)), terminator: "")
                }
            }
        }
    }
}
