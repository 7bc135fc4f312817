import ArgumentParser
import Foundation
import Manifests
import Reconciler

extension Syncwright {
    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every manifest at a revision, or in a folder; each problem is printed as file:line:col.",
            discussion: """
                Exits 0 when every manifest is valid and 1 otherwise. Policies are checked too: a rule with \
                enforcement: deny is a problem like any other; one with enforcement: warn is printed as a warning \
                (on stderr) and the manifests are still valid. --path needs no home.
                """)

        @Option(help: "The branch, tag or commit to check (default: the tip of the configured branch, fetched now).")
        var ref: String?

        @Option(help: ArgumentHelp("Check a plain folder instead of a revision.", valueName: "dir"))
        var path: String?

        @OptionGroup var options: HomeOptions

        func validate() throws {
            if ref != nil && path != nil { throw ValidationError("give --ref or --path, not both") }
        }

        func run() throws {
            try Output.run(invalid: .checked) {
                let objects: [ObjectKey]
                let warnings: [PolicyFinding]
                let what: String
                if let path {
                    (objects, warnings) = try Offline.validate(folder: path)
                    what = path
                } else {
                    let workspace: Workspace
                    do {
                        workspace = try options.workspace()
                    } catch ReconcilerError.noHome(let home, _) {
                        throw ReconcilerError.noHome(home, forValidate: true)
                    }
                    try workspace.fetch()
                    let result = try workspace.validate(ref: ref)
                    objects = result.objects
                    warnings = result.warnings
                    what = "revision \(result.revision.short)"
                }
                for warning in warnings { Output.standardError("warning: \(warning.problem.description)") }
                let counts = Dictionary(grouping: objects, by: \.kind).sorted { $0.key < $1.key }
                    .map { "\($0.value.count) \($0.key.rawValue)" }.joined(separator: ", ")
                print("Valid: \(objects.count) objects in \(what)\(counts.isEmpty ? "" : " (\(counts))").")
            }
        }
    }
}
