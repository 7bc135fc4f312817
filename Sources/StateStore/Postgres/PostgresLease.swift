import Foundation

/// A replica's lease on PostgreSQL. Each replica has a row in `replicas`: its lease runs until
/// `leaseUntil`, which its heartbeat moves on, and it cannot be renewed once run out (a replica
/// that wakes from a pause has to start again, under a new id). One row (`storeLease`) names
/// the leader, with a fencing token that grows with every change of leader. Every decision
/// compares with the server's clock (`clock_timestamp()`), never a replica's.
///
/// The lease keeps a connection of its own, so that renewing it never waits behind the store's
/// writes; a write holds the replica's row FOR SHARE, so a replica taking its runs over waits
/// until the write in flight has ended, and every later one is refused.
final class PostgresLease: StoreLease, @unchecked Sendable {
    private let store: PostgresStateStore
    private let replica: ReplicaIdentity
    let seconds: TimeInterval
    private let lock = NSLock()
    private let connection: PGConnection
    private var joined = false
    /// The fencing token of the lead held, if any.
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

    func join() throws -> [ReplicaRecord] {
        let others = try transaction("joining the state store as a replica") { db in
            try db.execute("""
                INSERT INTO replicas (id, host, pid, command, startedAt, heartbeatAt, leaseUntil)
                VALUES ($1, $2, $3, $4, \(Self.now), \(Self.now), \(Self.now) + $5)
                """, [replica.id, replica.host, replica.pid, replica.command, seconds])
            // Replicas not heard of for a day (killed ones leave their row) are forgotten.
            try db.execute("DELETE FROM replicas WHERE heartbeatAt < \(Self.now) - 86400")
            return try PostgresStateStore.replicas(db, id: nil).filter { $0.alive && $0.identity.id != replica.id }
        }
        joined = true
        store.setMember(replica.id)
        return others
    }

    /// Moves this replica's lease on; false when it had run out (then it is never renewed).
    private func heartbeat(_ db: PGConnection) throws -> Bool {
        try db.change("""
            UPDATE replicas SET heartbeatAt = \(Self.now), leaseUntil = \(Self.now) + $2 WHERE id = $1 AND leaseUntil > \(Self.now)
            """, [replica.id, seconds]) == 1
    }

    func acquire() throws -> LeaseOutcome {
        if !joined { _ = try join() }
        return try transaction("taking the store's lead") { db in
            guard try heartbeat(db) else { return .lost }
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
            token = try db.execute("""
                UPDATE storeLease SET holder = $1, token = token + 1, leaseUntil = \(Self.now) + $2 RETURNING token
                """, [replica.id, seconds])[0].int64("token")
            return .acquired(previous: previous)
        }
    }

    func renew() throws -> Bool {
        let token = self.token
        let held = try transaction("renewing this replica's lease on the state store") { db in
            guard try heartbeat(db) else { return false }
            guard let token else { return true }
            return try db.change("""
                UPDATE storeLease SET leaseUntil = \(Self.now) + $1 WHERE holder = $2 AND token = $3 AND leaseUntil > \(Self.now)
                """, [seconds, replica.id, token]) == 1
        }
        if !held { self.token = nil }
        return held
    }

    func release() {
        let token = self.token
        _ = try? transaction("giving the store's lead back") { db in
            if let token {
                try db.execute("UPDATE storeLease SET holder = NULL, leaseUntil = 0 WHERE holder = $1 AND token = $2",
                               [replica.id, token])
            }
            try db.execute("DELETE FROM destinationClaims WHERE replica = $1", [replica.id])
            try db.execute("DELETE FROM replicas WHERE id = $1", [replica.id])
        }
        self.token = nil
        if joined { store.setMember(nil) }
        joined = false
    }

    func measure() throws -> LeaseMeasure {
        try transaction("reading the store's clock and replicas") { db in
            let before = Date()
            let rows = try db.execute("""
                SELECT \(Self.now) AS now, id FROM replicas
                WHERE leaseUntil > \(Self.now) AND (command = 'reconcile' OR id = $1) ORDER BY id
                """, [replica.id])
            let after = Date()
            let server = try rows.first?.double("now") ?? (try db.execute("SELECT \(Self.now) AS now")[0].double("now"))
            let ids = try rows.map { try $0.text("id") }
            return LeaseMeasure(clockOffset: server - (before.timeIntervalSince1970 + after.timeIntervalSince1970) / 2,
                                peers: (ids.firstIndex(of: replica.id) ?? 0, max(1, ids.count)))
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

    /// The replicas heard of within the last hour (or the one `id`), the leader first, then the newest.
    static func replicas(_ db: PGConnection, id: String?) throws -> [ReplicaRecord] {
        try db.execute("""
            SELECT r.*, r.leaseUntil > \(now) AS alive, (l.holder = r.id AND l.leaseUntil > \(now)) IS TRUE AS holds,
                   (SELECT COUNT(*) FROM runsInProgress p WHERE p.owner = r.id) AS runsHeld
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

    public func orphanedRuns() throws -> [OrphanedRun] {
        try read("the runs of replicas whose lease ran out") { db in
            // A replica whose lease ran out but whose write is still in flight holds its row FOR
            // SHARE: it is skipped now, and its runs are found by a later call.
            let rows = try db.execute("""
                WITH gone AS (SELECT id FROM replicas WHERE leaseUntil <= \(Self.now) FOR UPDATE SKIP LOCKED)
                SELECT p.* FROM runsInProgress p
                WHERE p.owner IS NULL OR p.owner IN (SELECT id FROM gone)
                   OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = p.owner)
                ORDER BY p.startedAt, p.id
                """)
            var known: [String: ReplicaRecord?] = [:]
            return try rows.map { row in
                let owner = row.optional("owner")
                if let owner, known[owner] == nil { known[owner] = .some(try Self.replicas(db, id: owner).first) }
                return OrphanedRun(run: try Self.runInProgress(row), replica: owner.flatMap { known[$0] ?? nil })
            }
        }
    }

    public func claimDestination(_ destination: String, run: String, holder: String) throws -> String? {
        var held: String?
        try write("claiming destination \(destination) for run \(run)") { db, member in
            let claimed = try db.execute("""
                INSERT INTO destinationClaims (destination, replica, run, holder, claimedAt)
                VALUES ($1, $2, $3, $4, \(Self.now))
                ON CONFLICT (destination) DO UPDATE
                    SET replica = excluded.replica, run = excluded.run, holder = excluded.holder, claimedAt = excluded.claimedAt
                    WHERE destinationClaims.run = excluded.run
                       OR NOT EXISTS (SELECT 1 FROM replicas r
                                      WHERE r.id = destinationClaims.replica AND r.leaseUntil > \(Self.now))
                       OR EXISTS (SELECT 1 FROM runs WHERE runs.id = destinationClaims.run)
                RETURNING run
                """, [destination, member ?? "", run, holder])
            if claimed.isEmpty {
                held = try db.execute("SELECT holder FROM destinationClaims WHERE destination = $1", [destination]).first?
                    .optional("holder") ?? "another run"
            }
        }
        return held
    }

    public func releaseDestination(_ destination: String, run: String) throws {
        try write("giving back destination \(destination) of run \(run)") { db in
            try db.execute("DELETE FROM destinationClaims WHERE destination = $1 AND run = $2", [destination, run])
        }
    }
}
