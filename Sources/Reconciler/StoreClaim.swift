import Concurrency
import Foundation
import Logging
import Reports
import Scheduling
import StateStore

/// What a writing command (`reconcile`, `run`, `apply`) holds while it works: its home's claim
/// and, on a shared store (PostgreSQL), its lease as a replica (and maybe the lead), renewed by
/// a heartbeat of its own.
public final class WorkspaceClaim: Sendable {
    let home: HomeClaim
    let keeper: LeaseKeeper?

    init(home: HomeClaim, keeper: LeaseKeeper?) {
        self.home = home
        self.keeper = keeper
    }

    /// Gives the lease (and the lead) back and the home up.
    public func release() {
        keeper?.stop()
        home.release()
    }

    /// Whether the replica's lease was lost (never on a store of the home's own).
    public var leaseLost: Bool { keeper?.lost.get() ?? false }

    /// Calls `action` once, on the heartbeat's thread, if the lease is lost.
    public func onLeaseLost(_ action: @escaping @Sendable () -> Void) {
        keeper?.onLost.set(action)
    }

    /// Calls `action`, on the heartbeat's thread, when this replica takes the lead over from
    /// another (whose lease ran out, or who gave it back).
    public func onLeadTaken(_ action: @escaping @Sendable () -> Void) {
        keeper?.onLead.set(action)
    }
}

/// A replica's standing on a shared store, as its lease's heartbeat finds it.
final class ReplicaStanding: Sendable {
    /// Whether this replica holds the lead (on a store of the home's own: always).
    let leads = Locked(true)
    /// Set when this replica took the lead: the leader's first pass then accounts for what the
    /// one before left (the runs `syncwright run` handed it).
    let tookLead = Locked(false)
    /// Whether `atStartup` schedules fire in the first pass: on a shared store, only for the
    /// replica that starts the lead with no other replica alive (the cluster's start).
    let firesAtStartup = Locked(true)
    /// The leader, described, while this replica follows it.
    let leader = Locked<String?>(nil)
    /// This replica's place among the live `reconcile` replicas (by id), and how many there
    /// are, as of its last heartbeat: it decides where in the due fires it starts, and its share.
    let peers = Locked<(position: Int, count: Int)>((0, 1))

    /// Notes that this replica leads now, taken over from `previous` (logged) when its lease ran out.
    func tookLead(from previous: ReplicaRecord?, logger: Logger) {
        leader.set(nil)
        tookLead.set(true)
        leads.set(true)
        if let previous {
            logger.warning("took the lead over from \(Workspace.describe(previous)), whose lease ran out at \(RunReport.timestamp(previous.leaseUntil))")
        }
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

/// Renews this replica's lease (and the lead, when held) every third of its length on a thread
/// of its own, and measures the store's clock as it goes. A replica that follows asks for the
/// lead at each beat, and takes it when its holder's lease ran out. When a renewal is refused,
/// or none succeeded for a whole lease (the database is out of reach), the lease counts as
/// lost: `onLost` is called once.
final class LeaseKeeper: Sendable {
    let lease: any StoreLease
    let lost = Locked(false)
    let offset: Locked<TimeInterval>
    let onLost = Locked<(@Sendable () -> Void)?>(nil)
    let onLead = Locked<(@Sendable () -> Void)?>(nil)
    private let standing: ReplicaStanding
    private let stopping = Locked(false)
    private let ended = DispatchSemaphore(value: 0)
    private let logger: Logger
    /// Until when the lease surely runs, by this machine's monotonic clock: the moment a
    /// renewal (or the acquisition) was sent, plus the lease. It runs on while the process is
    /// paused, so a replica that wakes past it knows at once, before any renewal is refused.
    private let validUntil: Locked<ContinuousClock.Instant>

    /// Starts renewing a lease acquired by a request sent at `asked`; `offset` is kept up to date
    /// with the store's clock minus this machine's, and `standing` with whether it leads.
    init(lease: any StoreLease, asked: ContinuousClock.Instant, offset: Locked<TimeInterval>, standing: ReplicaStanding,
         logger: Logger) {
        self.lease = lease
        self.logger = logger
        self.offset = offset
        self.standing = standing
        validUntil = Locked(asked.advanced(by: .milliseconds(Int(lease.seconds * 1_000))))
        // (Renewals move it the same way: see `beat`.)
        if let measured = try? lease.measure() { note(measured) }
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
                if standing.leads.get() {
                    guard try lease.renew() else {
                        markLost("the store refused to renew it: its lease had run out")
                        return
                    }
                } else {
                    switch try lease.acquire() {
                    case .acquired(let previous):
                        standing.tookLead(from: previous, logger: logger)
                        if previous == nil { logger.info("took the lead: the replica that held it gave it back") }
                        onLead.get()?()
                    case .heldBy(let holder):
                        standing.leader.set(Workspace.describe(holder))
                    case .lost:
                        markLost("the store refused to renew it: its lease had run out")
                        return
                    }
                }
                validUntil.set(asked.advanced(by: .milliseconds(Int(lease.seconds * 1_000))))  // as in `init`
                note(try lease.measure())
            } catch {
                logger.warning("cannot renew the lease on the state store", metadata: ["error": "\(error)"])
                if ContinuousClock.now >= validUntil.get() {
                    markLost("no renewal succeeded for the whole lease (\(Int(lease.seconds))s)")
                    return
                }
            }
        }
    }

    /// Keeps what a heartbeat measured: the store's clock, and this replica's place among the others.
    private func note(_ measured: LeaseMeasure) {
        offset.set(measured.clockOffset)
        standing.peers.set(measured.peers)
    }

    private func markLost(_ why: String) {
        lost.set(true)
        logger.error("lost the lease on the state store: \(why)")
        let action = onLost.get()
        onLost.set(nil)
        action?()
    }

    /// Stops renewing, and gives the lease (and the lead) back unless it was lost.
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
    var shared: (store: any SharedStateStore, seconds: TimeInterval)? {
        guard let store = store as? any SharedStateStore, let postgres = home.config.state?.postgres else { return nil }
        return (store, postgres.leaseSeconds)
    }

    /// "syncwright reconcile on db-2 (pid 812)".
    static func describe(_ replica: ReplicaRecord) -> String {
        "syncwright \(replica.identity.command) on \(replica.identity.host) (pid \(replica.identity.pid))"
    }

    /// Claims the home and, on a shared store, joins it as a replica and asks for the lead: at
    /// once, or throws naming the replica that holds it; a `follower` (a `reconcile` replica)
    /// follows that one instead, runs scheduled fires, and takes the lead when it goes. Then, as
    /// the leader, accounts for the runs that were left unfinished.
    func claim(for command: String, follower: Bool) throws -> WorkspaceClaim {
        let homeClaim = try HomeClaim.claim(home, for: command)
        do {
            var keeper: LeaseKeeper?
            if let shared {
                let lease = try shared.store.lease(for: .current(command: command), seconds: shared.seconds)
                let asked = ContinuousClock.now
                let others: [ReplicaRecord]
                do { others = try lease.join() } catch {
                    lease.release()
                    throw error
                }
                switch try lease.acquire() {
                case .acquired(let previous):
                    standing.tookLead(from: previous, logger: logger)
                case .heldBy(let holder):
                    guard follower else {
                        lease.release()
                        throw ReconcilerError.storeInUse(store: store.location, holder: Self.describe(holder), command: command)
                    }
                    standing.leads.set(false)
                    standing.leader.set(Self.describe(holder))
                case .lost:
                    lease.release()
                    throw ReconcilerError.leaseLost(store: store.location)
                }
                standing.firesAtStartup.set(standing.leads.get() && others.isEmpty)
                keeper = LeaseKeeper(lease: lease, asked: asked, offset: clockOffset, standing: standing, logger: logger)
            }
            let claim = WorkspaceClaim(home: homeClaim, keeper: keeper)
            if let keeper { holdsStore.set { keeper.holds } }
            do {
                try recoverInterruptedRuns(by: command)
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

    /// Claims the home (and the shared store's lead) for a writing command, then reports the
    /// runs left unfinished. Throws at once when another process holds either.
    public func claim(for command: String) throws -> WorkspaceClaim {
        try claim(for: command, follower: false)
    }

    /// For `reconcile`: claims the home and joins the shared store as a replica, leading it when
    /// no live replica does, else following the one that does.
    public func claimAsReplica(for command: String) throws -> WorkspaceClaim {
        try claim(for: command, follower: true)
    }

    /// Whether this process holds the lead (always, on a store of the home's own).
    public var leads: Bool { standing.leads.get() }

    /// The leader, described ("syncwright reconcile on db-2 (pid 812)"), while this replica follows it.
    public var leader: String? { standing.leader.get() }

    /// Whether the home's store is shared by replicas.
    public var isShared: Bool { shared != nil }

    /// The reconciler a run can be handed to, described ("the reconciler on db-2 (pid 812)"):
    /// the replica holding the shared store's lead, else the reconciler holding this home (which,
    /// on a shared store, is a replica that takes the lead over if its holder goes). Nil when none.
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
