import ArgumentParser
import Foundation
import Concurrency
import Logging
import Operations
import Reconciler

extension Syncwright {
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The reconciler: fetch, apply, run the collections that are due, publish the reports.",
            discussion: """
                Each pass: (1) fetches the remote, every --interval; (2) when the config branch moved, plans and \
                applies it (an invalid revision applies nothing: the last good state keeps running, and the \
                problems are published to the reports branch under rejected/); (3) runs every collection whose \
                schedule is due, in due-time order, each in the background (a collection still running is not \
                started again); (4) publishes the queued reports. Between passes it sleeps until the earlier of \
                the next fire time and the next fetch. Each pass also expires workflow requests past their \
                expiresAfter, and runs the job of every approved request (trigger approval).

                Schedules that fired while no reconciler was running follow their missedRuns setting (runOnce: \
                one catch-up run; skip: only recorded), and a fire older than startingDeadline never starts. \
                atStartup triggers fire in the first pass of every reconcile process (--once included); on a \
                shared store, only in that of a replica that starts with no other replica alive.

                Only one reconcile, run or apply works on a home at a time: a second one fails at once, naming \
                the holder. With a PostgreSQL store (state.postgres in config.yaml), any number of replicas, each \
                with its own home, share the store and the work: each runs scheduled fires (each fire time runs \
                once, on the replica that claims it first; each claims its share: its free run slots, or an \
                even share among the live replicas), \
                one destination is written by one run at a time across them all, and one replica leads: it \
                applies revisions, publishes, notifies, runs approved and handed-over runs, and records the runs \
                of a replica whose lease ran out as failed (replicaLost). When the leader goes, another takes the \
                lead. A replica that loses its lease stops, and exits 1 (see docs/high-availability.md). A follower \
                reports syncwright_store_held 0, and its /readyz needs only the fetch. --once takes the lead. SIGTERM or SIGINT stops the loop: running collections stop at their next safe point \
                (recorded as aborted, reason shutdown), their reports are published, and the process exits 0. \
                It logs one line per pass on stderr (--log-level, default info). With --once it does one pass, \
                waits for the runs it started, publishes, and exits (1 when the pass hit an error).

                With --listen HOST:PORT (or listen in config.yaml) it serves, over HTTP: GET /metrics (Prometheus's \
                text format), GET /healthz (200 while the loop turns), GET /readyz (200 while the last fetch and \
                apply succeeded within 3 intervals) and, when config.yaml has webhook.secretFrom, POST /hooks/git: \
                a push webhook from GitHub, GitLab, Gitea or Forgejo, which makes a push to the config branch \
                fetched and applied at once. Port 0 picks a free port; the address is logged. See docs/operations.md.
                """)

        @Flag(help: "Do one pass, wait for its runs, publish, and exit.")
        var once = false

        @Option(help: "How often to fetch the remote, like 30s, 5m or 1h.")
        var interval: String = "60s"

        @Option(help: ArgumentHelp("Serve /metrics, /healthz, /readyz and /hooks/git on this address (overrides listen "
                                   + "in config.yaml).", valueName: "host:port"))
        var listen: String?

        @OptionGroup var options: HomeOptions

        func validate() throws {
            guard let seconds = DurationText(interval)?.seconds, seconds > 0 else {
                throw ValidationError("--interval '\(interval)' is not a duration like 30s, 5m or 1h")
            }
            if let listen, ListenAddress(listen) == nil {
                throw ValidationError("--listen '\(listen)' is not HOST:PORT (e.g. 127.0.0.1:9420)")
            }
            if listen != nil && once {
                throw ValidationError("--listen serves a running reconciler; it has nothing to serve with --once")
            }
        }

        func run() async throws {
            var failed = false
            try await Output.run {
                IdleMemory.limitArenas()
                let workspace = try options.workspace(defaultLevel: .info)
                let logger = options.logger(defaultLevel: .info)
                StopSignal.install()
                let loop = ReconcileLoop(workspace: workspace, clock: workspace.clock,
                                         interval: TimeInterval(DurationText(interval)?.seconds ?? 60), logger: logger)
                // Serving starts first, so that a port that cannot be bound stops it before it joins.
                let server = try await Self.serve(listen.flatMap(ListenAddress.init) ?? (once ? nil : workspace.home.config.listen
                    .flatMap(ListenAddress.init)), loop: loop, workspace: workspace, logger: logger)
                func stopServing() async {
                    server?.task.cancel()
                    await server?.task.value
                }
                // On a shared store, every replica runs scheduled fires; one of them leads (applies,
                // publishes, notifies), and another takes the lead over when it goes. --once leads.
                let claim: WorkspaceClaim
                do {
                    claim = once ? try workspace.claim(for: "reconcile")
                        : try await offload { try workspace.claimAsReplica(for: "reconcile") }
                } catch {
                    await stopServing()
                    throw error
                }
                if workspace.isShared {
                    if let leader = workspace.leader {
                        logger.info("joined the state store as a replica: this one runs scheduled fires, and \(leader) leads (applies, publishes and notifies); this one takes the lead over if that one stops")
                    } else {
                        logger.info("joined the state store as a replica, and leads it: this one applies, publishes and notifies, and runs scheduled fires with the other replicas")
                    }
                }
                server?.metrics.following(workspace.leader)
                defer { claim.release() }
                claim.onLeaseLost { loop.stop() }
                claim.onLeadTaken { [metrics = server?.metrics] in
                    metrics?.following(nil)
                    loop.wakeUp()
                }
                let problems = ProblemCounter()
                let branch = workspace.home.config.reportsBranch
                let once = self.once
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        await loop.run(once: once, onPass: { summary in
                            if summary.problem != nil { problems.add() }
                            if once { Self.printOnce(summary, branch: branch) } else { Self.log(summary, logger: logger) }
                        }, whenIdle: IdleMemory.release)
                    }
                    group.addTask {
                        var ticks = 0
                        while !StopSignal.received && !Task.isCancelled && !loop.isStopping {
                            try? await Task.sleep(nanoseconds: 100_000_000)
                            ticks += 1
                            // A run handed over by `syncwright run` starts within a second.
                            if !once, ticks % 5 == 0,
                               !workspace.queuedRunCollections().subtracting(loop.runningCollections).isEmpty {
                                loop.wakeUp()
                            }
                        }
                        if StopSignal.received { loop.stop() }
                    }
                    await group.next()
                    group.cancelAll()
                }
                await stopServing()
                if let problem = server?.failure.get() { throw ReconcilerError.config(location: nil, problem: problem) }
                if claim.leaseLost { throw ReconcilerError.leaseLost(store: workspace.storeLocation) }
                failed = once && problems.count > 0
            }
            if failed { throw ExitCode.failure }
        }

        /// Starts the endpoints on `address`, and returns once they listen; throws when they cannot.
        /// Should the server fail later, the loop is stopped and `failure` says why.
        static func serve(_ address: ListenAddress?, loop: ReconcileLoop, workspace: Workspace,
                          logger: Logger) async throws -> (task: Task<Void, Never>, failure: Locked<String?>, metrics: DaemonMetrics)? {
            guard let address else { return nil }
            let webhook = try workspace.home.config.webhookSecret().map {
                WebhookCheck(secret: $0, branch: workspace.home.config.branch)
            }
            let metrics = DaemonMetrics(workspace: workspace, interval: loop.fetchInterval)
            loop.observe(metrics)
            let started = WakeSignal()
            let listening = Locked<String?>(nil)
            let failure = Locked<String?>(nil)
            let task = Task {
                do {
                    try await OperationsServer.run(host: address.host, port: address.port, metrics: metrics, loop: loop,
                                                   webhook: webhook, logger: logger) { bound in
                        listening.set(bound)
                        started.signal()
                    }
                } catch {
                    if !Task.isCancelled {
                        failure.set("cannot serve on \(address.host):\(address.port) (--listen or listen in config.yaml): \(error)")
                        loop.stop()
                    }
                }
                started.signal()
            }
            await started.wait()
            if let problem = failure.get() { throw ReconcilerError.config(location: nil, problem: problem) }
            logger.info("serving /metrics, /healthz, /readyz\(webhook == nil ? "" : " and /hooks/git")",
                        metadata: ["address": "\(listening.get() ?? "")"])
            return (task, failure, metrics)
        }

        /// `--once` prints what it did on stdout, as a person reads it.
        static func printOnce(_ summary: PassSummary, branch: String) {
            if let problem = summary.problem { Output.standardError("error: \(problem)") }
            if let plan = summary.applied {
                print("Applied revision \(plan.revision.prefix(7)): \(plan.count(.create)) created, "
                    + "\(plan.count(.update)) updated, \(plan.count(.delete)) deleted.")
            } else if summary.fetched && summary.problem == nil {
                print("The applied revision is current; nothing to apply.")
            }
            if !summary.started.isEmpty { print("Started scheduled runs: \(summary.started.joined(separator: ", ")).") }
            if !summary.approved.isEmpty { print("Ran approved requests: \(summary.approved.joined(separator: ", ")).") }
            if summary.expired > 0 { print("Expired requests: \(summary.expired) (past expiresAfter, with no decision).") }
            if summary.skipped + summary.merged > 0 {
                print("Fire times not run: \(summary.skipped) skipped, \(summary.merged) merged (see `syncwright status`).")
            }
            if let published = summary.published { Output.published(published, branch: branch) }
            fflush(nil)
        }

        /// The loop logs one line per pass.
        static func log(_ summary: PassSummary, logger: Logger) {
            var metadata: Logger.Metadata = ["ms": "\(summary.milliseconds)", "due": "\(summary.due)",
                                             "started": "\(summary.started.count)", "skipped": "\(summary.skipped)",
                                             "merged": "\(summary.merged)"]
            if summary.fetched { metadata["fetched"] = "yes" }
            if !summary.approved.isEmpty { metadata["approved"] = "\(summary.approved.count)" }
            if summary.expired > 0 { metadata["expired"] = "\(summary.expired)" }
            if summary.left > 0 { metadata["leftToOthers"] = "\(summary.left)" }
            if let plan = summary.applied {
                metadata["applied"] = "\(plan.revision.prefix(7)) +\(plan.count(.create)) ~\(plan.count(.update)) -\(plan.count(.delete))"
            }
            if let published = summary.published {
                metadata["published"] = "\(published.published.count)"
                metadata["publishMs"] = "\(summary.publishMilliseconds)"
                if published.waiting > 0 { metadata["queued"] = "\(published.waiting)" }
                if let problem = published.problem { metadata["publishError"] = "\(problem)" }
            }
            if let wake = summary.nextWake { metadata["nextWake"] = "\(FireDecision.stamp(wake))" }
            if let problem = summary.problem {
                logger.error("pass: \(problem)", metadata: metadata)
            } else {
                logger.info("pass", metadata: metadata)
            }
        }
    }
}

/// Counts passes that hit a problem (from the loop's callback).
final class ProblemCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add() { lock.withLock { value += 1 } }
    var count: Int { lock.withLock { value } }
}

/// SIGTERM and SIGINT ask the reconciler to stop; a watcher polls the flag.
enum StopSignal {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static var received: Bool { flag != 0 }

    static func install() {
        signal(SIGTERM) { _ in StopSignal.flag = 1 }
        signal(SIGINT) { _ in StopSignal.flag = 1 }
        // A parent may have started us with these blocked (some test runners do); we want them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
