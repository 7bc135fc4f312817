import Foundation

/// The store's lease on PostgreSQL: one row (`storeLease`) names the holder, a fencing token
/// that grows with every change of holder, and the lease's end by the server's clock. Every
/// decision compares with the server's clock (`clock_timestamp()`), never a replica's.
///
/// The lease keeps a connection of its own, so that renewing it never waits behind the store's
/// writes; a write holds the row FOR SHARE, so a takeover waits until the old holder's write
/// in flight has ended, and every later one is refused.
final class PostgresLease: StoreLease, @unchecked Sendable {
    private let store: PostgresStateStore
    private let replica: ReplicaIdentity
    let seconds: TimeInterval
    private let lock = NSLock()
    private let connection: PGConnection
    /// The fencing token of the lease held, if any.
    private var token: Int64?

    init(store: PostgresStateStore, replica: ReplicaIdentity, seconds: TimeInterval) throws(StateError) {
        self.store = store
        self.replica = replica
        self.seconds = seconds
        do {
            connection = try PGConnection(parameters: store.parameters)
        } catch {
            throw .cannotOpen(location: store.location, reason: error.message)
        }
    }

    /// One transaction on the lease's connection (sent again as `PGConnection.transaction` says).
    private func transaction<T>(_ what: String, _ body: (PGConnection) throws -> T) throws(StateError) -> T {
        lock.lock()
        defer { lock.unlock() }
        do {
            return try connection.transaction { _ in try body(connection) }
        } catch let error as StateError {
            throw error
        } catch {
            throw .writeFailed(location: store.location, what: what, reason: PostgresStateStore.reason(error))
        }
    }

    private static let now = PostgresStateStore.now

    /// Notes that this replica is alive, until the lease's length from now.
    private func heartbeat(_ db: PGConnection) throws {
        try db.execute("""
            INSERT INTO replicas (id, host, pid, command, startedAt, heartbeatAt, leaseUntil)
            VALUES ($1, $2, $3, $4, \(Self.now), \(Self.now), \(Self.now) + $5)
            ON CONFLICT (id) DO UPDATE SET heartbeatAt = excluded.heartbeatAt, leaseUntil = excluded.leaseUntil
            """, [replica.id, replica.host, replica.pid, replica.command, seconds])
    }

    func acquire() throws -> LeaseOutcome {
        try transaction("taking the store's lease") { db in
            try heartbeat(db)
            // Replicas not heard of for a day (killed ones leave their row) are forgotten.
            try db.execute("DELETE FROM replicas WHERE heartbeatAt < \(Self.now) - 86400")
            let row = try db.execute("SELECT holder, token, leaseUntil > \(Self.now) AS running FROM storeLease FOR UPDATE")[0]
            let holder = row.optional("holder"), running = try row.bool("running")
            if holder == replica.id && running, token == (try row.int64("token")) {
                try db.execute("UPDATE storeLease SET leaseUntil = \(Self.now) + $1", [seconds])
                return .acquired(previous: nil)
            }
            if let holder, running {
                let record = try PostgresStateStore.replicas(db, id: holder).first
                return .heldBy(record ?? ReplicaRecord(
                    identity: ReplicaIdentity(id: holder, host: "?", pid: 0, command: "?"), startedAt: .distantPast,
                    heartbeatAt: .distantPast, leaseUntil: .distantFuture, alive: true, holdsStore: true, runsHeld: 0))
            }
            let previous = try holder.flatMap { try PostgresStateStore.replicas(db, id: $0).first }
            let token = try db.execute("""
                UPDATE storeLease SET holder = $1, token = token + 1, leaseUntil = \(Self.now) + $2 RETURNING token
                """, [replica.id, seconds])[0].int64("token")
            self.token = token
            store.setFence((replica.id, token))
            return .acquired(previous: previous)
        }
    }

    func renew() throws -> Bool {
        guard let token else { return false }
        let held = try transaction("renewing the store's lease") { db in
            try heartbeat(db)
            return try db.change("""
                UPDATE storeLease SET leaseUntil = \(Self.now) + $1 WHERE holder = $2 AND token = $3 AND leaseUntil > \(Self.now)
                """, [seconds, replica.id, token]) == 1
        }
        if !held { self.token = nil }
        return held
    }

    func release() {
        let token = self.token
        _ = try? transaction("giving the store's lease back") { db in
            if let token {
                try db.execute("UPDATE storeLease SET holder = NULL, leaseUntil = 0 WHERE holder = $1 AND token = $2",
                               [replica.id, token])
            }
            try db.execute("DELETE FROM replicas WHERE id = $1", [replica.id])
        }
        self.token = nil
        store.setFence(nil)
    }

    func clockOffset() throws -> TimeInterval {
        try transaction("reading the store's clock") { db in
            let before = Date()
            let server = try db.execute("SELECT \(Self.now) AS now")[0].double("now")
            let after = Date()
            return server - (before.timeIntervalSince1970 + after.timeIntervalSince1970) / 2
        }
    }
}

extension PostgresStateStore {
    public func lease(for replica: ReplicaIdentity, seconds: TimeInterval) throws -> any StoreLease {
        try PostgresLease(store: self, replica: replica, seconds: seconds)
    }

    public func replicas() throws -> [ReplicaRecord] {
        try read("the replicas") { db in try Self.replicas(db, id: nil) }
    }

    /// The replicas heard of within the last hour (or the one `id`), the holder first, then the newest.
    static func replicas(_ db: PGConnection, id: String?) throws -> [ReplicaRecord] {
        try db.execute("""
            SELECT r.*, r.leaseUntil > \(now) AS alive, (l.holder = r.id AND l.leaseUntil > \(now)) IS TRUE AS holds,
                   CASE WHEN l.holder = r.id THEN (SELECT COUNT(*) FROM runsInProgress) ELSE 0 END AS runsHeld
            FROM replicas r CROSS JOIN storeLease l
            WHERE ($1::text IS NULL AND r.heartbeatAt > \(now) - 3600) OR r.id = $1
            ORDER BY holds DESC, r.startedAt DESC, r.id
            """, [id]).map { row in
            ReplicaRecord(identity: ReplicaIdentity(id: try row.text("id"), host: try row.text("host"), pid: try row.int("pid"),
                                                    command: try row.text("command")),
                          startedAt: try row.date("startedAt"), heartbeatAt: try row.date("heartbeatAt"),
                          leaseUntil: try row.date("leaseUntil"), alive: try row.bool("alive"), holdsStore: try row.bool("holds"),
                          runsHeld: try row.int("runsHeld"))
        }
    }
}
