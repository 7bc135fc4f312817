import ArgumentParser
import Reconciler

extension Syncwright {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a home: a bare clone of the config repository (through libgit2) and an empty state store.",
            discussion: """
                The home gets config.yaml (remote, branches, credentials by reference), repo.git and \
                state.sqlite. Nothing is applied yet: run `syncwright plan` and `syncwright apply` next. \
                An existing home is left alone unless --force is given.
                """)

        @Argument(help: "The config repository's URL (file://, ssh:// or https://) or local path.")
        var repoURL: String

        @Option(help: "The branch holding the manifests.")
        var branch = "main"

        @Option(help: "The branch run reports are committed to.")
        var reportsBranch = "reports"

        @Flag(help: "Replace an existing home (its stored state is lost).")
        var force = false

        @OptionGroup var options: HomeOptions

        func run() throws {
            try Output.run {
                let home = try Home.create(at: options.homePath,
                                           config: HomeConfig(remote: repoURL, branch: branch, reportsBranch: reportsBranch),
                                           force: force)
                print("Initialised \(home.path) from \(repoURL) (branch \(branch), reports to \(reportsBranch)).")
                print("Next: syncwright plan, then syncwright apply.")
            }
        }
    }
}
