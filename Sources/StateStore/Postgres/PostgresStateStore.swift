import Foundation

/// The state store on a PostgreSQL server (through libpq), shared by every reconciler whose
/// config.yaml names it.
///
/// One connection, used by one caller at a time (`Sendable` through its lock). Every write is
/// one transaction; a lost connection is opened again before the next question. A write whose
/// connection was lost before its COMMIT was sent is sent again; one lost while committing is
/// reported as `outcomeUnknown`, never as stored or as not stored.
public final class PostgresStateStore: SharedStateStore, @unchecked Sendable {
    private let lock = NSLock()
    private let connection: PGConnection
    /// How to connect (for the lease's own connection).
    let parameters: [(String, String)]
    /// The replica every write checks is still alive, once this process joined the store as
    /// one (see `StoreLease`); its runs in progress are recorded as its own.
    private var member: String?

    /// The store's clock, now, as seconds since 1970 (in SQL).
    static let now = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
    /// The server and database, without a password.
    public let location: String

    /// Connects to the store at `url` (`postgresql://user@host:port/database?…`) and brings its
    /// schema up to date. `password` is sent as libpq's `password`; `caFile` makes libpq verify
    /// the server's certificate and name against that CA (`sslmode=verify-full`).
    public init(url: String, password: String? = nil, caFile: String? = nil) throws(StateError) {
        location = Self.withoutPassword(url)
        var parameters = [("dbname", url), ("application_name", "syncwright"), ("connect_timeout", "10")]
        if let password { parameters.append(("password", password)) }
        if let caFile {
            parameters.append(("sslmode", "verify-full"))
            parameters.append(("sslrootcert", caFile))
        }
        self.parameters = parameters
        do {
            connection = try PGConnection(parameters: parameters)
        } catch {
            throw .cannotOpen(location: location, reason: error.message)
        }
        try migrate()
    }

    /// `url` with any password in it replaced by `***`, for messages.
    static func withoutPassword(_ url: String) -> String {
        guard var parts = URLComponents(string: url), parts.password != nil else { return url }
        parts.password = "***"
        return parts.string ?? url
    }

    /// Answers a question; `what` names it in an error. A read is asked again once when the
    /// connection was lost (the server restarted): it changes nothing.
    func read<T>(_ what: @autoclosure () -> String, _ body: (PGConnection) throws -> T) throws(StateError) -> T {
        lock.lock()
        defer { lock.unlock() }
        var attempts = 0
        while true {
            attempts += 1
            do {
                if connection.isBroken { try connection.reset() }
                return try body(connection)
            } catch let failure as PGFailure {
                if failure.connectionLost && attempts < 2 { continue }
                throw .readFailed(location: location, what: what(), reason: failure.message)
            } catch let error as StateError {
                throw error
            } catch {
                throw .unreadable(location: location, what: what(), reason: Self.reason(error))
            }
        }
    }

    /// Writes in one transaction: on any error nothing of it is stored. Sent again as
    /// `PGConnection.transaction` says. Once this process joined the store as a replica, the
    /// transaction first checks that its lease still runs (fencing), with BEGIN in one round
    /// trip; FOR SHARE, so that a replica taking its runs over (`orphanedRuns`) waits until this
    /// write has ended, and every later write finds the lease run out.
    func write(_ what: @autoclosure () -> String, _ body: (PGConnection, _ member: String?) throws -> Void) throws(StateError) {
        lock.lock()
        defer { lock.unlock() }
        let begin = member.map { member in
            "BEGIN; SELECT 1 FROM replicas WHERE id = \(PGConnection.literal(member)) AND leaseUntil > \(Self.now) FOR SHARE"
        } ?? "BEGIN"
        do {
            try connection.transaction(begin: begin) { begun in
                if member != nil && begun.isEmpty { throw StateError.fenced(location: location, what: what()) }
                try body(connection, member)
            }
        } catch let lost as PGCommitLost {
            throw .outcomeUnknown(location: location, what: what(), reason: lost.failure.message)
        } catch let error as StateError {
            throw error
        } catch {
            throw .writeFailed(location: location, what: what(), reason: Self.reason(error))
        }
    }

    /// Writes in one transaction (see `write(_:_:)`), for a body that needs not know the replica.
    func write(_ what: @autoclosure () -> String, _ body: (PGConnection) throws -> Void) throws(StateError) {
        try write(what(), { db, _ in try body(db) })
    }

    /// Makes every later write check that the replica `id` is still alive (nil: none).
    func setMember(_ id: String?) {
        lock.withLock { member = id }
    }

    static func reason(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error { return context.debugDescription }
        return "\(error)"
    }

    /// Nothing to tidy: the server vacuums by itself.
    public func tidy() {}

    public func backlog() throws -> Backlog {
        try read("what waits to be published, delivered or decided") { db in
            let row = try db.execute("""
                SELECT (SELECT COUNT(*) FROM outbox WHERE publishedAt IS NULL) AS reports,
                       (SELECT COUNT(*) FROM notifications WHERE status = 'pending') AS notifications,
                       (SELECT COUNT(*) FROM requests WHERE status = 'pending') AS pending,
                       (SELECT COUNT(*) FROM requests WHERE status = 'approved') AS approved
                """)[0]
            return Backlog(reports: try row.int("reports"), notifications: try row.int("notifications"),
                           pendingRequests: try row.int("pending"), approvedRequests: try row.int("approved"))
        }
    }
}
