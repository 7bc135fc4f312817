import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct Notify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Notifications: send a test message through a collection's channels.",
            subcommands: [Test.self])

        struct Test: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Send a test message through each channel of a collection now, and say what happened.",
                discussion: """
                    Uses the applied NotificationChannel manifests and the collection's recipients: one mail per \
                    recipient through its smtp channel, one POST per webhook channel. Nothing is queued and no run \
                    is recorded. Secrets (passwordFrom, urlFrom) are read as a run reads them, so run it with the \
                    reconciler's environment. Exit codes: 0 when every message was delivered, 1 otherwise.
                    """)

            @Argument(help: "The collection whose channels to test.", completion: CompletionNames.collections)
            var collection: String

            @OptionGroup var options: HomeOptions

            func run() throws {
                var failed = false
                try Output.run {
                    let workspace = try options.workspace()
                    for (to, problem) in try workspace.testNotifications(collection: collection) {
                        if let problem {
                            print("not delivered: \(to): \(problem)")
                            failed = true
                        } else {
                            print("delivered: \(to)")
                        }
                    }
                }
                if failed { throw ExitCode.failure }
            }
        }
    }
}
