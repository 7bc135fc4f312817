import ArgumentParser
import Foundation
import Manifests
import Reconciler
import Reports

extension Syncwright {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the stored collections with their last and next runs, the schedules, open workflow requests, and reports not yet published.",
            discussion: "Reads the stored state only; it does not fetch.")

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        @OptionGroup var options: HomeOptions

        struct Document: Encodable {
            struct Job: Encodable {
                let job: String
                let onFailure: String
            }
            struct Collection: Encodable {
                let name: String
                let description: String?
                let file: String
                let template: String?
                let jobs: [Job]
                /// The earliest next fire time over the schedules that target it; null: never.
                let nextRun: Date?
                let lastRun: Date?
                let lastOutcome: String?
                let timesRun: Int

                func encode(to encoder: Encoder) throws {
                    enum Keys: String, CodingKey { case name, description, file, template, jobs, nextRun, lastRun, lastOutcome, timesRun }
                    var c = encoder.container(keyedBy: Keys.self)
                    try c.encode(name, forKey: .name)
                    try c.encodeIfPresent(description, forKey: .description)
                    try c.encode(file, forKey: .file)
                    try c.encodeIfPresent(template, forKey: .template)
                    try c.encode(jobs, forKey: .jobs)
                    try c.encode(nextRun, forKey: .nextRun) // null when no enabled trigger fires again
                    try c.encode(lastRun, forKey: .lastRun) // null until the first run
                    try c.encode(lastOutcome, forKey: .lastOutcome)
                    try c.encode(timesRun, forKey: .timesRun)
                }
            }
            struct Schedule: Encodable {
                let name: String
                let target: String
                let nextRun: Date?
                let lastFire: Date?
                let lastOutcome: String?
                let lastNote: String?

                func encode(to encoder: Encoder) throws {
                    enum Keys: String, CodingKey { case name, target, nextRun, lastFire, lastOutcome, lastNote }
                    var c = encoder.container(keyedBy: Keys.self)
                    try c.encode(name, forKey: .name)
                    try c.encode(target, forKey: .target)
                    try c.encode(nextRun, forKey: .nextRun)
                    try c.encode(lastFire, forKey: .lastFire)
                    try c.encode(lastOutcome, forKey: .lastOutcome)
                    try c.encode(lastNote, forKey: .lastNote)
                }
            }
            let appliedRevision: String?
            let appliedAt: Date?
            let collections: [Collection]
            let schedules: [Schedule]
            /// Workflow requests still open: pending, or approved and waiting for the next reconcile pass.
            let requests: [ApprovalRequest]
            /// Reports not yet on the reports branch, and why the last attempt failed.
            let unpublishedReports: Int
            let lastPublishError: String?
            /// A revision newer than the applied one that was refused: what the branch says is not what runs.
            let rejected: Rejected?
            struct Rejected: Encodable {
                let revision: String
                let rejectedAt: Date
                let problems: Int
                let page: String
                let running: String?
            }

            func encode(to encoder: Encoder) throws {
                enum Keys: String, CodingKey {
                    case appliedRevision, appliedAt, collections, schedules, requests, unpublishedReports, lastPublishError, rejected
                }
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(rejected, forKey: .rejected)
                try c.encode(appliedRevision, forKey: .appliedRevision)
                try c.encode(appliedAt, forKey: .appliedAt)
                try c.encode(collections, forKey: .collections)
                try c.encode(schedules, forKey: .schedules)
                try c.encode(requests, forKey: .requests)
                try c.encode(unpublishedReports, forKey: .unpublishedReports)
                try c.encode(lastPublishError, forKey: .lastPublishError)
            }
        }

        func run() throws {
            try Output.run {
                let workspace = try options.workspace()
                workspace.recoverInterruptedRunsIfIdle(by: "status")
                let applied = try workspace.store.appliedRevision()
                let collections = try workspace.collections()
                let counters = try workspace.store.collectionCounters()
                let queued = try workspace.store.unpublished(limit: 100_000)
                let nextRuns = try workspace.store.nextRuns()
                let schedules = try workspace.store.scheduleStates()
                let rejection = try workspace.store.standingRejection()
                switch format {
                case .json:
                    let document = Document(
                        appliedRevision: applied?.revision, appliedAt: applied?.appliedAt,
                        collections: collections.map { c in
                            .init(name: c.name, description: c.description, file: c.file, template: c.template,
                                  jobs: c.jobs.map { .init(job: $0.job, onFailure: $0.onFailure.rawValue) },
                                  nextRun: nextRuns[c.name], lastRun: counters[c.name]?.lastRun, lastOutcome: counters[c.name]?.lastOutcome,
                                  timesRun: counters[c.name]?.timesRun ?? 0)
                        },
                        schedules: schedules.map {
                            .init(name: $0.schedule, target: $0.target, nextRun: $0.nextFire, lastFire: $0.lastFire,
                                  lastOutcome: $0.lastOutcome, lastNote: $0.lastNote)
                        },
                        requests: try workspace.requests(statuses: [.pending, .approved]),
                        unpublishedReports: queued.count, lastPublishError: queued.compactMap(\.lastError).last,
                        rejected: rejection.map { .init(revision: $0.revision, rejectedAt: $0.rejectedAt, problems: $0.problems,
                                                        page: $0.page, running: $0.running) })
                    print(try Output.json(document))
                case .text:
                    if let rejection {
                        print("REJECTED: revision \(rejection.revision.prefix(7)) (at \(rejection.rejectedAt.formatted(.iso8601))) has "
                            + "\(rejection.problems) problem\(rejection.problems == 1 ? "" : "s"); see \(rejection.page) on the "
                            + "\(workspace.home.config.reportsBranch) branch, or `syncwright validate`. Nothing of it was applied: "
                            + (rejection.running.map { "revision \($0.prefix(7)) keeps running." } ?? "no revision is applied yet.")
                            + "\n")
                    }
                    guard let applied else {
                        print("Nothing applied yet: run `syncwright apply`.")
                        return
                    }
                    print("Applied revision \(applied.revision.prefix(7)) at \(applied.appliedAt.formatted(.iso8601)).")
                    if !queued.isEmpty {
                        print("\(queued.count) report\(queued.count == 1 ? "" : "s") not yet published to "
                            + "\(workspace.home.config.reportsBranch)"
                            + (queued.compactMap(\.lastError).last.map { " (last attempt: \($0))" } ?? "") + ".")
                    }
                    print("")
                    if collections.isEmpty {
                        print("No collections.")
                        return
                    }
                    print(RunText.table(["COLLECTION", "RUNS", "LAST RUN", "OUTCOME", "NEXT RUN", "JOBS"], collections.map { c in
                        let counter = counters[c.name]
                        let jobs = c.jobs.map { $0.onFailure == .continue ? "\($0.job) (continue)" : $0.job }
                        return [c.name, "\(counter?.timesRun ?? 0)", counter?.lastRun.map(RunReport.timestamp) ?? "never",
                                counter?.lastOutcome ?? "-", nextRuns[c.name].map(RunReport.timestamp) ?? "never",
                                jobs.joined(separator: " → ")]
                    }, rightAligned: [1]), terminator: "")
                    if !schedules.isEmpty {
                        print("")
                        print(RunText.table(["SCHEDULE", "TARGET", "NEXT FIRE", "LAST FIRE", "LAST OUTCOME"], schedules.map { s in
                            [s.schedule, s.target, s.nextFire.map(RunReport.timestamp) ?? "never",
                             s.lastFire.map(RunReport.timestamp) ?? "-",
                             (s.lastOutcome ?? "-") + (s.lastNote.map { ": \($0)" } ?? "")]
                        }, rightAligned: []), terminator: "")
                    }
                    let open = try workspace.requests(statuses: [.pending, .approved])
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
