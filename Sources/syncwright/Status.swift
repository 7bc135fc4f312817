import ArgumentParser
import Foundation
import Manifests
import Reconciler

extension Syncwright {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the stored collections and the applied revision.",
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
            }
            let appliedRevision: String?
            let appliedAt: Date?
            let collections: [Collection]
        }

        func run() throws {
            try Output.run {
                let workspace = try options.workspace()
                let applied = try workspace.store.appliedRevision()
                let collections = try workspace.collections()
                switch format {
                case .json:
                    let document = Document(
                        appliedRevision: applied?.revision, appliedAt: applied?.appliedAt,
                        collections: collections.map { c in
                            .init(name: c.name, description: c.description, file: c.file, template: c.template,
                                  jobs: c.jobs.map { .init(job: $0.job, onFailure: $0.onFailure.rawValue) })
                        })
                    print(Output.json(document))
                case .text:
                    guard let applied else {
                        print("Nothing applied yet: run `syncwright apply`.")
                        return
                    }
                    print("Applied revision \(applied.revision.prefix(7)) at \(applied.appliedAt.formatted(.iso8601)).")
                    print("")
                    if collections.isEmpty {
                        print("No collections.")
                        return
                    }
                    let width = max(10, collections.map(\.name.count).max() ?? 0) + 2
                    print("COLLECTION".padding(toLength: width, withPad: " ", startingAt: 0) + "JOBS")
                    for c in collections {
                        let jobs = c.jobs.map { $0.onFailure == .continue ? "\($0.job) (continue)" : $0.job }
                        print(c.name.padding(toLength: width, withPad: " ", startingAt: 0) + jobs.joined(separator: " → "))
                    }
                }
            }
        }
    }
}
