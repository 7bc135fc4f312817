import Concurrency
import Foundation
import Logging
import Reports
import Scheduling
import StateStore

/// What a writing command (`reconcile`, `run`, `apply`) holds while it works: its home's claim
/// and, on a shared store (PostgreSQL), the store's lease, renewed by a heartbeat of its own.
public final class WorkspaceClaim: Sendable {
    let home: HomeClaim
    let keeper: LeaseKeeper?

    init(home: HomeClaim, keeper: LeaseKeeper?) {
        self.home = home
        self.keeper = keeper
    }

    /// Gives the lease back (another replica may take the store at once) and the home up.
    public func release() {
        keeper?.stop()
        home.release()
    }

    /// Whether the store's lease was lost (never on a store of the home's own).
    public var leaseLost: Bool { keeper?.lost.get() ?? false }

    /// Calls `action` once, on the heartbeat's thread, if the lease is lost.
    public func onLeaseLost(_ action: @escaping @Sendable () -> Void) {
        keeper?.onLost.set(action)
    }
}

/// This machine's clock, moved by an offset measured against the store's.
struct OffsetClock: WallClock {
    let offset: Locked<TimeInterval>

    func now() -> Date { Date().addingTimeInterval(offset.get()) }

    func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSince(now())
        if seconds > 0 { try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000)) }
        try Task.checkCancellation()
    }
}

/// Renews a held lease every third of its length on a thread of its own, and measures the
/// store's clock as it goes. When a renewal is refused, or none succeeded for a whole lease
/// (the database is out of reach), the lease counts as lost: `onLost` is called once.
final class LeaseKeeper: Sendable {
    let lease: any StoreLease
    let lost = Locked(false)
    let offset: Locked<TimeInterval>
    let onLost = Locked<(@Sendable () -> Void)?>(nil)
    private let stopping = Locked(false)
    private let ended = DispatchSemaphore(value: 0)
    private let logger: Logger
    /// Until when the lease surely runs, by this machine's monotonic clock: the moment a
    /// renewal (or the acquisition) was sent, plus the lease. It runs on while the process is
    /// paused, so a holder that wakes past it knows at once, before any renewal is refused.
    private let validUntil: Locked<ContinuousClock.Instant>

    /// Starts renewing a lease acquired by a request sent at `asked`; `offset` is kept up to date
    /// with the store's clock minus this machine's.
    init(lease: any StoreLease, asked: ContinuousClock.Instant, offset: Locked<TimeInterval>, logger: Logger) {
        self.lease = lease
        self.logger = logger
        self.offset = offset
        validUntil = Locked(asked.advanced(by: .milliseconds(Int(lease.seconds * 1_000))))
        // (Renewals move it the same way: see `beat`.)
        if let measured = try? lease.clockOffset() { offset.set(measured) }
        DetachedThread.run { [self] in beat() }
    }

    /// Whether the lease surely still runs: not lost, and not past its end by this machine's clock.
    var holds: Bool { !lost.get() && ContinuousClock.now < validUntil.get() }

    private func beat() {
        defer { ended.signal() }
        let period = lease.seconds / 3
        while true {
            let wake = ContinuousClock.now.advanced(by: .milliseconds(Int(period * 1_000)))
            while ContinuousClock.now < wake {
                if stopping.get() { return }
                usleep(50_000)
            }
            do {
                let asked = ContinuousClock.now
                guard try lease.renew() else {
                    markLost("the store refused to renew it: another replica took the store over")
                    return
                }
                validUntil.set(asked.advanced(by: .milliseconds(Int(lease.seconds * 1_000))))  // as in `init`
                offset.set(try lease.clockOffset())
            } catch {
                logger.warning("cannot renew the lease on the state store", metadata: ["error": "\(error)"])
                if ContinuousClock.now >= validUntil.get() {
                    markLost("no renewal succeeded for the whole lease (\(Int(lease.seconds))s)")
                    return
                }
            }
        }
    }

    private func markLost(_ why: String) {
        lost.set(true)
        logger.error("lost the lease on the state store: \(why)")
        let action = onLost.get()
        onLost.set(nil)
        action?()
    }

    /// Stops renewing, and gives the lease back unless it was lost.
    func stop() {
        stopping.set(true)
        ended.wait()
        ended.signal() // a second stop returns at once
        if !lost.get() { lease.release() }
    }
}

extension Workspace {
    /// The clock to decide by: on a shared store, the store's (this machine's, corrected by the
    /// offset the lease's heartbeat measures), so that a replica whose clock is off fires nothing
    /// early or late; else this machine's.
    public var clock: any WallClock {
        shared == nil ? SystemWallClock() : OffsetClock(offset: clockOffset)
    }

    /// The shared store and its lease settings, when config.yaml names one.
    private var shared: (store: any SharedStateStore, seconds: TimeInterval)? {
        guard let store = store as? any SharedStateStore, let postgres = home.config.state?.postgres else { return nil }
        return (store, postgres.leaseSeconds)
    }

    /// "syncwright reconcile on db-2 (pid 812)".
    static func describe(_ replica: ReplicaRecord) -> String {
        "syncwright \(replica.identity.command) on \(replica.identity.host) (pid \(replica.identity.pid))"
    }

    /// Claims the home, and the shared store's lease when there is one (at once, or throws
    /// naming the replica that holds it); then accounts for the runs an earlier holder left
    /// unfinished. With `waiting`, a held store is waited for instead: `standingBy` is told who
    /// holds it (once per holder), and nil is returned when `stopped` says so first.
    func claim(for command: String, waiting: (standingBy: @Sendable (String) -> Void, stopped: @Sendable () -> Bool)?)
        throws -> WorkspaceClaim? {
        let homeClaim = try HomeClaim.claim(home, for: command)
        do {
            var keeper: LeaseKeeper?
            var lostReplica: ReplicaRecord?
            if let shared {
                let lease = try shared.store.lease(for: .current(command: command), seconds: shared.seconds)
                var told: String?
                while keeper == nil {
                    let asked = ContinuousClock.now
                    switch try lease.acquire() {
                    case .acquired(let previous):
                        keeper = LeaseKeeper(lease: lease, asked: asked, offset: clockOffset, logger: logger)
                        lostReplica = previous
                        if let previous {
                            logger.warning("took the state store over from \(Self.describe(previous)), whose lease ran out at \(RunReport.timestamp(previous.leaseUntil))")
                        } else if told != nil {
                            logger.info("took the state store over: its holder gave it back")
                        }
                    case .heldBy(let holder):
                        guard let waiting else {
                            lease.release()
                            throw ReconcilerError.storeInUse(store: store.location, holder: Self.describe(holder), command: command)
                        }
                        if told != holder.identity.id {
                            waiting.standingBy(Self.describe(holder))
                            told = holder.identity.id
                        }
                        let until = Date().addingTimeInterval(min(1, shared.seconds / 3))
                        while Date() < until {
                            if waiting.stopped() {
                                lease.release()
                                homeClaim.release()
                                return nil
                            }
                            usleep(50_000)
                        }
                    }
                }
            }
            let claim = WorkspaceClaim(home: homeClaim, keeper: keeper)
            if let keeper { holdsStore.set { keeper.holds } }
            do {
                try recoverInterruptedRuns(by: command, lostReplica: shared == nil ? nil : .some(lostReplica))
            } catch {
                claim.release()
                throw error
            }
            return claim
        } catch let error as ReconcilerError {
            homeClaim.release()
            throw error
        } catch {
            homeClaim.release()
            throw ReconcilerError.wrap(error)
        }
    }

    /// Claims the home (and the shared store) for a writing command, then reports the runs an
    /// earlier holder left unfinished. Throws at once when another process holds either.
    public func claim(for command: String) throws -> WorkspaceClaim {
        guard let claim = try claim(for: command, waiting: nil) else { throw ReconcilerError.unexpected("no claim") }
        return claim
    }

    /// For `reconcile`: claims the home, then waits for the shared store's lease while another
    /// replica holds it (a standby), telling `standingBy` who holds it. Nil when `stopped` says
    /// so while it waits.
    public func claimWaiting(for command: String, standingBy: @escaping @Sendable (String) -> Void,
                             stopped: @escaping @Sendable () -> Bool) throws -> WorkspaceClaim? {
        try claim(for: command, waiting: (standingBy, stopped))
    }

    /// The reconciler a run can be handed to, described ("the reconciler on db-2 (pid 812)"):
    /// the replica holding the shared store, else the reconciler holding this home (which, on a
    /// shared store, is a standby that takes the store over if its holder goes). Nil when none.
    public func reconcilerToHandTo() -> String? {
        if let shared, let holder = try? shared.store.replicas().first(where: { $0.holdsStore && $0.alive }) {
            guard holder.identity.command == "reconcile" else { return nil }
            return "the reconciler on \(holder.identity.host) (pid \(holder.identity.pid))"
        }
        guard let local = HomeClaim.holder(of: home), local.command.hasPrefix("syncwright reconcile") else { return nil }
        return "the reconciler (pid \(local.pid))"
    }

    /// Where the state is kept (a file, or a server without its password), for messages.
    public var storeLocation: String { store.location }

    /// The replicas sharing the store (nil on a store of the home's own).
    public func replicas() throws -> [ReplicaRecord]? {
        guard let shared else { return nil }
        do { return try shared.store.replicas() } catch { throw ReconcilerError.wrap(error) }
    }
}
