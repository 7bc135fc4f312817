import Foundation
import GRDB

/// A row of `notifications`: one message to one channel (and, for mail, one recipient).
struct NotificationRow: OftenWritten {
    static let databaseTableName = "notifications"
    var id: Int64?
    var runId: String
    var collection: String
    var channel: String
    var recipient: String?
    var dedupeKey: String
    var status: String
    var message: String
    var createdAt: Double
    var nextAttemptAt: Double?
    var attempts: Int
    var lastError: String?
    var finishedAt: Double?

    init(_ n: QueuedNotification) throws {
        id = n.id
        runId = n.runId
        collection = n.collection
        channel = n.channel
        recipient = n.recipient
        dedupeKey = n.dedupeKey
        status = n.status.rawValue
        message = String(decoding: try JSONEncoder().encode(n.message), as: UTF8.self)
        createdAt = n.createdAt.timeIntervalSince1970
        nextAttemptAt = n.nextAttemptAt?.timeIntervalSince1970
        attempts = n.attempts
        lastError = n.lastError
        finishedAt = n.finishedAt?.timeIntervalSince1970
    }

    func notification() throws -> QueuedNotification {
        let what = "notification \(id ?? 0) of run \(runId)"
        guard let status = QueuedNotification.Status(rawValue: status) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(what) has the unknown status '\(self.status)'"))
        }
        return QueuedNotification(
            id: id, runId: runId, collection: collection, channel: channel, recipient: recipient, dedupeKey: dedupeKey,
            status: status, message: try JSONDecoder().decode(NotificationMessage.self, from: Data(message.utf8)),
            createdAt: Date(timeIntervalSince1970: createdAt), nextAttemptAt: nextAttemptAt.map { Date(timeIntervalSince1970: $0) },
            attempts: attempts, lastError: lastError, finishedAt: finishedAt.map { Date(timeIntervalSince1970: $0) })
    }

    /// `id` is left to SQLite.
    static let columns = ["runId", "collection", "channel", "recipient", "dedupeKey", "status", "message", "createdAt",
                          "nextAttemptAt", "attempts", "lastError", "finishedAt"]
    static let insertSQL = makeInsertSQL()
    func values() -> [(any DatabaseValueConvertible)?] {
        [runId, collection, channel, recipient, dedupeKey, status, message, createdAt, nextAttemptAt, attempts, lastError, finishedAt]
    }
}

extension SQLiteStateStore {
    private func notifications(_ what: String, _ request: (Database) throws -> [NotificationRow]) throws -> [QueuedNotification] {
        let rows = try read(what) { db in try request(db) }
        do {
            return try rows.map { try $0.notification() }
        } catch {
            throw StateError.unreadable(location: path, what: what, reason: "\(error)")
        }
    }

    public func dueNotifications(at date: Date, limit: Int) throws -> [QueuedNotification] {
        try notifications("the notifications due") { db in
            try NotificationRow.filter(Column("status") == QueuedNotification.Status.pending.rawValue
                                           && Column("nextAttemptAt") <= date.timeIntervalSince1970)
                .order(Column("id")).limit(limit).fetchAll(db)
        }
    }

    public func markDelivered(_ id: Int64, at date: Date) throws {
        try write("recording notification \(id) as delivered") { db in
            try db.execute(sql: "UPDATE notifications SET status = 'delivered', finishedAt = ?, attempts = attempts + 1, nextAttemptAt = NULL WHERE id = ?",
                           arguments: [date.timeIntervalSince1970, id])
        }
    }

    public func markFailed(_ id: Int64, error: String, next: Date?, at date: Date) throws {
        try write("recording a failed attempt of notification \(id)") { db in
            if let next {
                try db.execute(sql: "UPDATE notifications SET attempts = attempts + 1, lastError = ?, nextAttemptAt = ? WHERE id = ?",
                               arguments: [error, next.timeIntervalSince1970, id])
            } else {
                try db.execute(sql: """
                    UPDATE notifications SET status = 'undelivered', attempts = attempts + 1, lastError = ?, nextAttemptAt = NULL,
                           finishedAt = ? WHERE id = ?
                    """, arguments: [error, date.timeIntervalSince1970, id])
            }
        }
    }

    public func notificationStates() throws -> [String: NotificationState] {
        try read("the notification states") { db in
            var out: [String: NotificationState] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM notificationState")
            while let row = try rows.next() { out[row["collection"]] = Self.state(row) }
            return out
        }
    }

    static func state(_ row: Row) -> NotificationState {
        NotificationState(dedupeKey: row["dedupeKey"], sentAt: Date(timeIntervalSince1970: row["sentAt"]),
                          heldBack: row["heldBack"], version: row["version"])
    }

    /// Applies `change` in the run's transaction, or throws `notificationStateMoved` (before
    /// anything is written) when the stored state is not the one the run decided on. One
    /// statement, whose count of changed rows is the check.
    static func apply(_ change: NotificationStateChange, _ db: Database, path: String) throws {
        let next = change.result
        if let decided = change.decidedOn {
            try db.cachedStatement(sql: """
                UPDATE notificationState SET dedupeKey = ?, sentAt = ?, heldBack = ?, version = ? WHERE collection = ? AND version = ?
                """).execute(arguments: [next.dedupeKey, next.sentAt.timeIntervalSince1970, next.heldBack, next.version,
                                         change.collection, decided.version])
        } else {
            try db.cachedStatement(sql: """
                INSERT INTO notificationState (collection, dedupeKey, sentAt, heldBack, version) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (collection) DO NOTHING
                """).execute(arguments: [change.collection, next.dedupeKey, next.sentAt.timeIntervalSince1970, next.heldBack, next.version])
        }
        guard db.changesCount == 1 else {
            let current = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM notificationState WHERE collection = ?"),
                                           arguments: [change.collection]).map(state)
            throw StateError.notificationStateMoved(collection: change.collection, current: current)
        }
    }

    public func notifications(ofRun runId: String) throws -> [QueuedNotification] {
        try notifications("the notifications of run \(runId)") { db in
            try NotificationRow.filter(Column("runId") == runId).order(Column("id")).fetchAll(db)
        }
    }

    public func troubledNotifications(limit: Int) throws -> [QueuedNotification] {
        try notifications("the notifications not delivered") { db in
            try NotificationRow.filter(Column("status") == QueuedNotification.Status.undelivered.rawValue
                                           || (Column("status") == QueuedNotification.Status.pending.rawValue && Column("attempts") > 0))
                .order(Column("id").desc).limit(limit).fetchAll(db)
        }
    }
}
