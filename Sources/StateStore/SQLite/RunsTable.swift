import Foundation
import GRDB
import Reports

/// A row of `runs`: one finished run, its indexed columns and its report (JSON).
struct RunRow: OftenWritten {
    static let databaseTableName = "runs"
    var id: String
    var collection: String
    var trigger: RunTrigger
    var revision: String
    var status: RunStatus
    var startedAt: Date
    var finishedAt: Date
    var report: String

    init(_ report: RunReport) {
        id = report.runId
        collection = report.collection
        trigger = report.trigger
        revision = report.revision
        status = report.status
        startedAt = report.startedAt
        finishedAt = report.finishedAt
        self.report = report.json()
    }

    static let newestFirst = [Column("startedAt").desc, Column("id").desc]

    static let columns = ["id", "collection", "trigger", "revision", "status", "startedAt", "finishedAt", "report"]
    static let insertSQL = makeInsertSQL()
    func values() -> [(any DatabaseValueConvertible)?] {
        [id, collection, trigger.rawValue, revision, status.rawValue, startedAt.timeIntervalSince1970,
         finishedAt.timeIntervalSince1970, report]
    }
}

extension SQLiteStateStore {
    public func record(_ run: RunReport, logs: [String: String], page: Publication?,
                       requests: [Publishable<ApprovalRequest>], notifications: [QueuedNotification],
                       notificationState change: NotificationStateChange?) throws {
        // Encoded before the transaction, so that the write lock is held for the writes only.
        let row = RunRow(run), pageJSON = page?.json(), requests = Self.encoded(requests)
        let notificationRows = try notifications.map(NotificationRow.init)
        try write("recording run \(run.runId)") { db in
            if let change { try Self.apply(change, db, path: path) }
            try Self.save(db, requests, at: run.finishedAt)
            try db.cachedStatement(sql: "DELETE FROM runsInProgress WHERE id = ?").execute(arguments: [run.runId])
            try row.insertCached(db)
            for (position, job) in run.jobs.enumerated() {
                try JobRunRow(runId: run.runId, position: position, job: job.name, status: job.status,
                              log: logs[job.name] ?? "").insertCached(db)
            }
            if let pageJSON { try Self.enqueue(db, json: pageJSON, kind: .run, subject: run.runId, at: run.finishedAt) }
            for notification in notificationRows { try notification.insertCached(db) }
        }
    }

    public func runReports(collection: String? = nil, limit: Int = 50) throws -> [RunReport] {
        let rows = try read("run reports") { db in
            var request = RunRow.order(RunRow.newestFirst).limit(limit)
            if let collection { request = request.filter(Column("collection") == collection) }
            return try request.fetchAll(db)
        }
        return try rows.map(decoded)
    }

    public func runReport(id: String) throws -> RunReport? {
        let row = try read("run \(id)") { db -> RunRow? in
            if let exact = try RunRow.fetchOne(db, key: id) { return exact }
            // A range over the key, so that the lookup is indexed: ids are ASCII, below U+FFFF.
            let matches = try RunRow.filter(Column("id") >= id && Column("id") < id + "\u{FFFF}").limit(2).fetchAll(db)
            return matches.count == 1 ? matches[0] : nil
        }
        return try row.map(decoded)
    }

    public func runIDTaken(_ id: String) throws -> Bool {
        try read("whether run id \(id) is taken") { db in
            try Bool.fetchOne(db.cachedStatement(sql: """
                SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?) OR EXISTS (SELECT 1 FROM runsInProgress WHERE id = ?)
                """), arguments: [id, id]) ?? false
        }
    }

    private func decoded(_ row: RunRow) throws(StateError) -> RunReport {
        do { return try RunReport.decode(row.report) } catch {
            throw .unreadable(location: path, what: "the report of run \(row.id)", reason: "\(error)")
        }
    }

    public func collectionCounters() throws -> [String: RunCounters] {
        try read("how often each collection ran") { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT collection, COUNT(*) AS timesRun, MAX(startedAt) AS lastRun,
                       (SELECT status FROM runs r2 WHERE r2.collection = runs.collection
                        ORDER BY startedAt DESC, id DESC LIMIT 1) AS lastOutcome
                FROM runs GROUP BY collection
                """)
            var out: [String: RunCounters] = [:]
            for row in rows {
                let collection: String = row["collection"]
                let outcome = try RunRow.decode(RunStatus.self, row, "lastOutcome", of: "the last run of collection \(collection)")
                let last: Double = row["lastRun"]
                out[collection] = RunCounters(timesRun: row["timesRun"], lastRun: Date(timeIntervalSince1970: last),
                                              lastOutcome: outcome)
            }
            return out
        }
    }
}
