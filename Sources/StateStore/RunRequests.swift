import Foundation
import GRDB

/// A run asked for by `syncwright run` while a reconciler holds the home: handed over through
/// the store, run by the reconciler at once, and followed by the command that asked.
public struct RunRequest: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Waiting for the reconciler (or for a run of the same collection to end).
        case queued
        /// The reconciler is running it.
        case started
        /// It ended: the run is recorded under `runId`.
        case finished
        /// It could not start; `error` says why.
        case failed
    }
    public let id: String
    public let collection: String
    /// The run's id, chosen when asked, so that `--no-wait` can print it.
    public let runId: String
    public let requestedAt: Date
    public let requestedBy: String
    /// A dry run: nothing is written and no run is recorded; `result` holds what it found.
    public let preview: Bool
    /// For a preview: how many changes it shows per job.
    public let previewLines: Int
    public var status: Status
    /// The latest progress line, while it runs.
    public var progress: String?
    public var error: String?
    /// A preview's outcome (the reconciler's JSON), once it ended.
    public var result: String?

    public init(id: String, collection: String, runId: String, requestedAt: Date, requestedBy: String, preview: Bool = false,
                previewLines: Int = 10, status: Status = .queued, progress: String? = nil, error: String? = nil, result: String? = nil) {
        self.id = id
        self.collection = collection
        self.runId = runId
        self.requestedAt = requestedAt
        self.requestedBy = requestedBy
        self.preview = preview
        self.previewLines = previewLines
        self.status = status
        self.progress = progress
        self.error = error
        self.result = result
    }
}

extension StateStore {
    static func registerRunRequestsMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v8: run requests") { db in
            try db.execute(sql: """
                CREATE TABLE runRequests (
                    id TEXT PRIMARY KEY,
                    collection TEXT NOT NULL,
                    runId TEXT NOT NULL,
                    requestedAt DOUBLE NOT NULL,
                    requestedBy TEXT NOT NULL,
                    preview INTEGER NOT NULL DEFAULT 0,
                    previewLines INTEGER NOT NULL DEFAULT 10,
                    result TEXT,
                    status TEXT NOT NULL,            -- queued | started | finished | failed
                    progress TEXT,
                    error TEXT
                );
                CREATE INDEX runRequests_by_status ON runRequests(status, requestedAt);
                """)
        }
    }

    private func runRequest(_ row: Row) throws -> RunRequest {
        let text: String = row["status"]
        guard let status = RunRequest.Status(rawValue: text) else {
            throw StateError("run request \(row["id"] as String) in \(path) has the unknown status '\(text)'")
        }
        return RunRequest(id: row["id"], collection: row["collection"], runId: row["runId"],
                          requestedAt: Date(timeIntervalSince1970: row["requestedAt"]), requestedBy: row["requestedBy"],
                          preview: row["preview"], previewLines: row["previewLines"], status: status, progress: row["progress"], error: row["error"],
                          result: row["result"])
    }

    /// Queues a run for the reconciler.
    public func queue(_ request: RunRequest) throws {
        try write("queueing a run of \(request.collection)") { db in
            try db.execute(sql: """
                INSERT INTO runRequests (id, collection, runId, requestedAt, requestedBy, preview, previewLines, status)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [request.id, request.collection, request.runId, request.requestedAt.timeIntervalSince1970,
                                 request.requestedBy, request.preview, request.previewLines, request.status.rawValue])
        }
    }

    public func runRequest(_ id: String) throws -> RunRequest? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM runRequests WHERE id = ?", arguments: [id]).map(runRequest) }
    }

    /// The queued requests, oldest first.
    public func queuedRunRequests() throws -> [RunRequest] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM runRequests WHERE status = 'queued' ORDER BY requestedAt, id").map(runRequest)
        }
    }

    /// Takes a queued request for running: true when this caller took it (it was still queued).
    public func start(runRequest id: String) throws -> Bool {
        var taken = false
        try write("starting run request \(id)") { db in
            try db.execute(sql: "UPDATE runRequests SET status = 'started' WHERE id = ? AND status = 'queued'", arguments: [id])
            taken = db.changesCount == 1
        }
        return taken
    }

    /// Records a request's progress line, or its end.
    public func update(runRequest id: String, status: RunRequest.Status? = nil, progress: String? = nil, error: String? = nil,
                       result: String? = nil) throws {
        try write("updating run request \(id)") { db in
            if let result {
                try db.execute(sql: "UPDATE runRequests SET result = ? WHERE id = ?", arguments: [result, id])
            }
            if let status {
                try db.execute(sql: "UPDATE runRequests SET status = ?, error = COALESCE(?, error) WHERE id = ?",
                               arguments: [status.rawValue, error, id])
            }
            if let progress {
                try db.execute(sql: "UPDATE runRequests SET progress = ? WHERE id = ?", arguments: [progress, id])
            }
        }
    }
}
