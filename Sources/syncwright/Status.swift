import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the stored collections with their last and next runs, the schedules, open workflow requests, and reports not yet published.",
            discussion: "Reads the stored state only; it does not fetch. On a PostgreSQL store (state.postgres in config.yaml) it also lists the replicas sharing the store: which one holds it, when each was last heard of, and the runs it has under way.")

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        @OptionGroup var options: HomeOptions

        func run() throws {
            try Output.run {
                let workspace = try options.workspace()
                workspace.recoverInterruptedRunsIfIdle(by: "status")
                let status = try workspace.status()
                switch format {
                case .json:
                    print(try Output.json(status))
                case .text:
                    if let rejection = status.rejected {
                        print("REJECTED: revision \(rejection.revision.prefix(7)) (at \(rejection.rejectedAt.formatted(.iso8601))) has "
                            + "\(rejection.problems) problem\(rejection.problems == 1 ? "" : "s"); see \(rejection.page) on the "
                            + "\(workspace.home.config.reportsBranch) branch, or `syncwright validate`. Nothing of it was applied: "
                            + (rejection.running.map { "revision \($0.prefix(7)) keeps running." } ?? "no revision is applied yet.")
                            + "\n")
                    }
                    guard let revision = status.appliedRevision, let appliedAt = status.appliedAt else {
                        print("Nothing applied yet: run `syncwright apply`.")
                        return
                    }
                    print("Applied revision \(revision.prefix(7)) at \(appliedAt.formatted(.iso8601)).")
                    if let replicas = status.replicas {
                        print(replicas.isEmpty ? "No replica runs on the state store \(workspace.storeLocation) now."
                              : "\nReplicas on the state store \(workspace.storeLocation):")
                        if !replicas.isEmpty {
                            print(RunText.table(["REPLICA", "HOST", "PID", "COMMAND", "LAST HEARTBEAT", "ROLE", "RUNS"], replicas.map { r in
                                [r.id, r.host, "\(r.pid)", r.command, RunReport.timestamp(r.lastHeartbeat),
                                 r.holdsStore ? "leader" : r.alive ? "follower" : "lost", "\(r.runsHeld)"]
                            }, rightAligned: [2, 6]), terminator: "")
                        }
                    }
                    let queued = status.unpublishedReports
                    if queued > 0 {
                        print("\(queued) report\(queued == 1 ? "" : "s") not yet published to "
                            + "\(workspace.home.config.reportsBranch)"
                            + (status.lastPublishError.map { " (last attempt: \($0))" } ?? "") + ".")
                    }
                    for n in status.notifications {
                        // A workflow request's notifications carry its id where a run's carry the run's.
                        let about = n.runId.hasPrefix("req-") ? "request \(n.runId)" : "run \(n.runId)"
                        print(n.status == "undelivered"
                            ? "UNDELIVERED: notification of \(about) (\(n.to)), given up after \(n.attempts) attempt\(n.attempts == 1 ? "" : "s"): \(n.lastError ?? "no reason recorded")."
                            : "Notification of \(about) (\(n.to)) not delivered yet after \(n.attempts) attempt\(n.attempts == 1 ? "" : "s")"
                                + (n.lastError.map { ": \($0)" } ?? "") + (n.nextAttempt.map { "; next attempt \(RunReport.timestamp($0))" } ?? "") + ".")
                    }
                    print("")
                    if status.collections.isEmpty {
                        print("No collections.")
                        return
                    }
                    print(RunText.table(["COLLECTION", "RUNS", "LAST RUN", "OUTCOME", "NEXT RUN", "JOBS"], status.collections.map { c in
                        let jobs = c.jobs.map { $0.onFailure == "continue" ? "\($0.job) (continue)" : $0.job }
                        return [c.name, "\(c.timesRun)", c.lastRun.map(RunReport.timestamp) ?? "never",
                                c.lastOutcome?.rawValue ?? "-", c.nextRun.map(RunReport.timestamp) ?? "never",
                                jobs.joined(separator: " → ")]
                    }, rightAligned: [1]), terminator: "")
                    if !status.schedules.isEmpty {
                        print("")
                        print(RunText.table(["SCHEDULE", "TARGET", "NEXT FIRE", "LAST FIRE", "LAST OUTCOME"], status.schedules.map { s in
                            [s.name, s.target, s.nextRun.map(RunReport.timestamp) ?? "never",
                             s.lastFire.map(RunReport.timestamp) ?? "-",
                             (s.lastOutcome ?? "-") + (s.lastNote.map { ": \($0)" } ?? "")]
                        }, rightAligned: []), terminator: "")
                    }
                    let open = status.requests
                    if !open.isEmpty {
                        print("")
                        print(RunText.table(["REQUEST", "STATUS", "JOB", "COLLECTION", "EXPIRES"], open.map { r in
                            [r.id, r.status.rawValue, r.job, r.collection, RunReport.timestamp(r.expiresAt)]
                        }, rightAligned: []), terminator: "")
                    }
                }
            }
        }
    }
}
