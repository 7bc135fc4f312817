import ArgumentParser
import Reconciler

extension Syncwright {
    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Plan a revision and store it, in one transaction; records the applied revision.",
            discussion: """
                A manifest removed from git deletes the stored object. A revision with any invalid \
                manifest, or that breaks a policy rule with enforcement: deny, applies nothing and leaves \
                the stored state exactly as it was; warn rules are listed, and on the apply page. Each apply that \
                changes something is published to the reports branch as applies/<time>-<sha>.md, with any \
                reports still queued.
                """)

        @Option(help: "The branch, tag or commit to apply (default: the configured branch's tip).")
        var ref: String?

        @OptionGroup var options: HomeOptions

        func run() throws {
            try Output.run {
                let workspace = try options.workspace()
                let claim = try workspace.claim(for: "apply")
                defer { claim.release() }
                try workspace.fetch()
                var plan = try workspace.apply(ref: ref)
                plan.listsNewFields = false // `plan` and `diff` list them; a first apply creates everything
                let short = String(plan.revision.prefix(7))
                if plan.appliedRevision == plan.revision {
                    print("Nothing to apply: revision \(short) is already applied.")
                } else {
                    print(plan.rendered(as: .text, colour: Output.colour), terminator: "")
                    print("Applied revision \(short): \(plan.count(.create)) created, \(plan.count(.update)) updated, "
                        + "\(plan.count(.delete)) deleted.")
                }
                Output.publish(workspace)
            }
        }
    }
}
