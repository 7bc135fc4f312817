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

/// A replica as the store knows it: when it was last heard of, and whether it holds the store.
public struct ReplicaRecord: Sendable, Equatable {
    public let identity: ReplicaIdentity
    public let startedAt: Date
    public let heartbeatAt: Date
    /// Until when its lease runs, by the store's clock.
    public let leaseUntil: Date
    /// Whether its lease is still running, by the store's clock.
    public let alive: Bool
    /// Whether it holds the store (runs the collections).
    public let holdsStore: Bool
    /// The runs it has under way (when it holds the store).
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

/// What asking for the store's lease gave.
public enum LeaseOutcome: Sendable, Equatable {
    /// This replica holds the store now. `previous` held it before and let its lease run out
    /// (killed, paused, or cut off): its runs in progress are lost. Nil when the lease was free
    /// (given back, or never taken).
    case acquired(previous: ReplicaRecord?)
    /// Another replica holds the store, and its lease is running.
    case heldBy(ReplicaRecord)
}

/// The store's lease, for one replica: at most one replica holds it at a time, and only while
/// it renews it in time, by the store's clock. While held, every write of the store that made
/// it checks it in its transaction (fencing): once the lease has passed to another replica, a
/// write of the old holder is refused (`StateError.fenced`), never stored.
public protocol StoreLease: AnyObject, Sendable {
    /// The lease's length, in seconds.
    var seconds: TimeInterval { get }
    /// Takes the lease when it is free or has run out, and renews it when held.
    func acquire() throws -> LeaseOutcome
    /// Renews the held lease; false when it was lost (it ran out, and another replica may hold it).
    func renew() throws -> Bool
    /// Gives the lease back (another replica may take it at once), and forgets this replica.
    func release()
    /// The store's clock minus this machine's, in seconds, as measured now.
    func clockOffset() throws -> TimeInterval
}

/// A store that several reconcilers share (PostgreSQL): a lease says which one runs the collections.
public protocol SharedStateStore: StateStore {
    /// A lease of `seconds` for `replica`. It holds its own connection, so that a heartbeat is
    /// never held up by a long write.
    func lease(for replica: ReplicaIdentity, seconds: TimeInterval) throws -> any StoreLease
    /// The replicas heard of within the last hour, the holder first, then the newest.
    func replicas() throws -> [ReplicaRecord]
}
