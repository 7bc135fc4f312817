import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct Logs: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the logs of a recorded run's jobs, failures first.",
            discussion: """
                RUN is a run id from `syncwright history` (or its unique start). Each job's log has one \
                line per object: + created, ~ updated (attribute: old → new), - deleted, > renamed, \
                ! failed (with the reason), ? a value left out. Failures come first. The store keeps the \
                first jobLogLines lines of each log (config.yaml); the counts in the report are exact.
                """)

        @Argument(help: "The run id (or its unique start).", completion: CompletionNames.runs)
        var runID: String

        @Argument(help: "Only this job's log.")
        var job: String?

        @OptionGroup var options: HomeOptions

        func run() throws {
            try Output.run {
                let (report, logs) = try options.workspace().logs(run: runID, job: job)
                for (index, log) in logs.enumerated() {
                    if logs.count > 1 || job == nil {
                        if index > 0 { print("") }
                        let status = report.jobs.first { $0.name == log.job }?.status.rawValue ?? ""
                        print("== \(log.job) (\(status)) ==")
                    }
                    if log.lines.isEmpty { print("(no lines: the job changed nothing, or did not run)") }
                    for line in log.lines { print(line) }
                }
            }
        }
    }
}
