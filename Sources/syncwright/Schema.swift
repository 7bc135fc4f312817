import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the JSON Schema of the manifests, for editors.",
            discussion: """
                A JSON Schema (draft 2020-12) of every kind: each field with its type, allowed values and \
                description, and the "one of" rules (source, value or generate; cron, every, once or \
                atStartup). Editors use it to complete and check manifests as you type; \
                docs/pull-requests.md shows the yaml-language-server modeline and the VS Code settings. \
                What needs the whole repository (references, duplicate names, templates, data files) or \
                a parser (cron, filters, templates, time zones) is checked by `syncwright validate` only.
                """)

        func run() throws {
            print(ManifestsSchema.json(), terminator: "")
        }
    }
}
