import Foundation

/// One reconciler process (or writing command) on a shared store, as it names itself.
public struct ReplicaIdentity: Sendable, Equatable {
    /// Unique per process: the host, the pid and a random part.
    public let id: String
    public let host: String
    public let pid: Int
    /// `reconcile`, `run` or `apply`.
    public let command: String

    public init(id: String, host: String, pid: Int, command: String) {
        self.id = id
        self.host = host
        self.pid = pid
        self.command = command
    }

    /// This process, for `command`.
    public static func current(command: String) -> ReplicaIdentity {
        let host = ProcessInfo.processInfo.hostName
        let pid = Int(getpid())
        return ReplicaIdentity(id: "\(host)-\(pid)-\(UUID().uuidString.prefix(8).lowercased())", host: host, pid: pid,
                               command: command)
    }
}

/// A replica as the store knows it: when it was last heard of, and whether it leads.
public struct ReplicaRecord: Sendable, Equatable {
    public let identity: ReplicaIdentity
    public let startedAt: Date
    public let heartbeatAt: Date
    /// Until when its lease runs, by the store's clock.
    public let leaseUntil: Date
    /// Whether its lease is still running, by the store's clock.
    public let alive: Bool
    /// Whether it holds the store's lead: it applies revisions, publishes, notifies, and runs
    /// the approved and handed-over runs. Every replica runs scheduled fires.
    public let holdsStore: Bool
    /// The runs it has under way.
    public let runsHeld: Int

    public init(identity: ReplicaIdentity, startedAt: Date, heartbeatAt: Date, leaseUntil: Date, alive: Bool, holdsStore: Bool,
                runsHeld: Int) {
        self.identity = identity
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.leaseUntil = leaseUntil
        self.alive = alive
        self.holdsStore = holdsStore
        self.runsHeld = runsHeld
    }
}

/// What asking for the store's lead gave.
public enum LeaseOutcome: Sendable, Equatable {
    /// This replica holds the lead now. `previous` held it before and let its lease run out
    /// (killed, paused, or cut off). Nil when the lead was free (given back, or never taken).
    case acquired(previous: ReplicaRecord?)
    /// Another replica holds the lead, and its lease is running.
    case heldBy(ReplicaRecord)
    /// This replica's own lease ran out (it was paused, or cut off from the database): it is a
    /// replica no longer, and its runs are for the leader to account for.
    case lost
}

/// One replica's lease on a shared store. A replica joins the store and stays a replica while
/// it renews its lease in time, by the store's clock; every write of the store that joined
/// checks it in its transaction (fencing), so once the lease has run out no write of it is
/// stored (`StateError.fenced`). At most one replica at a time also holds the store's lead.
public protocol StoreLease: AnyObject, Sendable {
    /// The lease's length, in seconds.
    var seconds: TimeInterval { get }
    /// Joins the store as a replica; returns the other replicas whose lease runs.
    func join() throws -> [ReplicaRecord]
    /// Takes the lead when it is free or its holder's lease ran out, and renews it when held;
    /// renews this replica's lease too (joining first, once).
    func acquire() throws -> LeaseOutcome
    /// Renews this replica's lease, and the lead when held; false when either was lost.
    func renew() throws -> Bool
    /// Gives the lead back (another replica may take it at once), and leaves the store.
    func release()
    /// The store's clock minus this machine's, in seconds, as measured now; and this replica's
    /// place among the live `reconcile` replicas (ordered by id), with their count.
    func measure() throws -> LeaseMeasure
}

/// What a replica's heartbeat measures of the store besides renewing its lease.
public struct LeaseMeasure: Sendable, Equatable {
    /// The store's clock minus this machine's, in seconds.
    public let clockOffset: TimeInterval
    /// This replica's place among the live `reconcile` replicas, and their count (at least 1).
    public let peers: (position: Int, count: Int)

    public init(clockOffset: TimeInterval, peers: (position: Int, count: Int)) {
        self.clockOffset = clockOffset
        self.peers = peers
    }

    public static func == (a: LeaseMeasure, b: LeaseMeasure) -> Bool {
        a.clockOffset == b.clockOffset && a.peers == b.peers
    }
}

/// A run in progress whose replica's lease ran out: for the leader to record as lost.
public struct OrphanedRun: Sendable, Equatable {
    public let run: RunInProgress
    /// The replica that ran it, when the store still knows it.
    public let replica: ReplicaRecord?

    public init(run: RunInProgress, replica: ReplicaRecord?) {
        self.run = run
        self.replica = replica
    }
}

/// A store that several reconcilers share (PostgreSQL). Each is a replica with a lease of its
/// own; each runs scheduled fires (each claimed once); the one with the lead does the rest.
public protocol SharedStateStore: StateStore {
    /// A lease of `seconds` for `replica`. It holds its own connection, so that a heartbeat is
    /// never held up by a long write.
    func lease(for replica: ReplicaIdentity, seconds: TimeInterval) throws -> any StoreLease
    /// The replicas heard of within the last hour, the leader first, then the newest.
    func replicas() throws -> [ReplicaRecord]
    /// The runs in progress whose replica's lease ran out (or that no replica owns). A replica
    /// writing at that moment is waited for, so that none of its writes lands after this.
    func orphanedRuns() throws -> [OrphanedRun]
    /// Claims `destination` (a destination connection, or a written file) for `run` of this
    /// replica, described by `holder`. Nil once claimed; else how the run holding it describes
    /// itself. A claim of a replica whose lease ran out is taken over, and so is the claim of a
    /// run already recorded (its release failed: the store could not be reached then).
    func claimDestination(_ destination: String, run: String, holder: String) throws -> String?
    /// Gives back the claim of `run` on `destination`.
    func releaseDestination(_ destination: String, run: String) throws
}
