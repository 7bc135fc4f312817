import ArgumentParser
import Foundation
import Manifests
import Reconciler

extension Syncwright {
    struct Reconcile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The reconciler: fetch, apply the branch when it moved, publish queued reports.",
            discussion: """
                Each pass fetches the remote, applies the config branch's tip when it differs from the \
                applied revision (an invalid revision applies nothing, and the last good state stays), and \
                publishes every report still queued, oldest first. With --once it does one pass and exits \
                (1 on any error). Without it, it repeats every --interval until SIGTERM or SIGINT; a failed \
                pass is reported on stderr and the next pass tries again. Scheduled runs are not part of \
                this version: collections run with `syncwright run`.
                """)

        @Flag(help: "Do one pass and exit.")
        var once = false

        @Option(help: "The pause between passes, like 30s, 5m or 1h.")
        var interval: String = "60s"

        @OptionGroup var options: HomeOptions

        func validate() throws {
            guard let seconds = DurationText(interval)?.seconds, seconds > 0 else {
                throw ValidationError("--interval '\(interval)' is not a duration like 30s, 5m or 1h")
            }
        }

        func run() throws {
            try Output.run {
                let workspace = try options.workspace()
                if once {
                    try pass(workspace)
                    return
                }
                let seconds = TimeInterval(DurationText(interval)?.seconds ?? 60)
                StopSignal.install()
                while !StopSignal.received {
                    do {
                        try pass(workspace)
                    } catch {
                        Output.standardError("error: \(error)")
                    }
                    let wake = Date().addingTimeInterval(seconds)
                    while !StopSignal.received && Date() < wake { Thread.sleep(forTimeInterval: 0.1) }
                }
            }
        }

        private func pass(_ workspace: Workspace) throws {
            let (plan, published) = try workspace.reconcileOnce()
            let short = String(plan.revision.prefix(7))
            if plan.appliedRevision == plan.revision {
                print("Revision \(short) is applied; nothing to apply.")
            } else {
                print("Applied revision \(short): \(plan.count(.create)) created, \(plan.count(.update)) updated, "
                    + "\(plan.count(.delete)) deleted.")
            }
            Output.published(published, branch: workspace.home.config.reportsBranch)
            fflush(nil) // every stream: a log follower sees each pass as it ends
        }
    }
}

/// SIGTERM and SIGINT end the loop between passes.
enum StopSignal {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static var received: Bool { flag != 0 }

    static func install() {
        signal(SIGTERM) { _ in StopSignal.flag = 1 }
        signal(SIGINT) { _ in StopSignal.flag = 1 }
    }
}
