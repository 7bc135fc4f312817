import Foundation
import GRDB
import Reports

/// A row of `outbox`: one report page, from when it is queued until (and after) it is published.
struct OutboxRow: OftenWritten {
    static let databaseTableName = "outbox"
    var id: Int64?
    var kind: OutboxItem.Kind
    var subject: String
    var createdAt: Date
    /// What to publish (JSON); NULL once published.
    var publication: String?
    var publishedAt: Date?
    /// The reports-branch commit that holds it.
    var commitId: String?
    var attempts: Int
    var lastError: String?

    /// `id` is left to SQLite.
    static let columns = ["kind", "subject", "createdAt", "publication", "publishedAt", "commitId", "attempts", "lastError"]
    static let insertSQL = makeInsertSQL()
    func values() -> [(any DatabaseValueConvertible)?] {
        [kind.rawValue, subject, createdAt.timeIntervalSince1970, publication, publishedAt?.timeIntervalSince1970, commitId,
         attempts, lastError]
    }
}

extension SQLiteStateStore {
    public func backlog() throws -> Backlog {
        try read("what waits to be published, delivered or decided") { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT (SELECT COUNT(*) FROM outbox WHERE publishedAt IS NULL),
                       (SELECT COUNT(*) FROM notifications WHERE status = 'pending'),
                       (SELECT COUNT(*) FROM requests WHERE status = 'pending'),
                       (SELECT COUNT(*) FROM requests WHERE status = 'approved')
                """)
            return Backlog(reports: row?[0] ?? 0, notifications: row?[1] ?? 0, pendingRequests: row?[2] ?? 0,
                           approvedRequests: row?[3] ?? 0)
        }
    }

    /// Queues a page, encoded (as JSON) before the transaction that calls this began.
    static func enqueue(_ db: Database, json: String, kind: OutboxItem.Kind, subject: String, at date: Date) throws {
        try OutboxRow(id: nil, kind: kind, subject: subject, createdAt: date, publication: json,
                      publishedAt: nil, commitId: nil, attempts: 0, lastError: nil).insertCached(db)
    }

    public func unpublished(limit: Int) throws -> [OutboxItem] {
        try read("the reports waiting to be published") { db in
            try OutboxRow.filter(Column("publishedAt") == nil).order(Column("id")).limit(limit).fetchAll(db).map { row in
                OutboxItem(id: row.id ?? 0, kind: row.kind, subject: row.subject, createdAt: row.createdAt,
                           publication: row.publication ?? "", attempts: row.attempts, lastError: row.lastError)
            }
        }
    }

    public func markPublished(_ commits: [Int64: String], at date: Date = Date()) throws {
        try write("recording published reports") { db in
            for (id, commit) in commits {
                try OutboxRow.filter(key: id).updateAll(db, [
                    Column("publishedAt").set(to: date.timeIntervalSince1970), Column("commitId").set(to: commit),
                    Column("publication").set(to: nil), Column("lastError").set(to: nil),
                ])
            }
        }
    }

    public func markAttempt(_ ids: [Int64], error: String) throws {
        try write("recording a failed publish") { db in
            try OutboxRow.filter(keys: ids).updateAll(db, [Column("attempts") += 1, Column("lastError").set(to: error)])
        }
    }

    public func publishedCommit(of subject: String) throws -> String? {
        try read("the commit that holds \(subject)") { db in
            try OutboxRow.filter(Column("subject") == subject && Column("publishedAt") != nil).order(Column("id").desc)
                .fetchOne(db)?.commitId
        }
    }

    public func hasReport(kind: OutboxItem.Kind, subject: String) throws -> Bool {
        try read("whether a report of \(subject) is queued") { db in
            try OutboxRow.filter(Column("kind") == kind.rawValue && Column("subject") == subject).isEmpty(db) == false
        }
    }

    public func enqueue(_ page: Publication, kind: OutboxItem.Kind, subject: String, at date: Date = Date()) throws {
        let json = page.json()
        try write("queueing the report of \(subject)") { db in try Self.enqueue(db, json: json, kind: kind, subject: subject, at: date) }
    }
}
