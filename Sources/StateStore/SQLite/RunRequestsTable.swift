import Foundation
import GRDB

/// A row of `runRequests`: a run handed to the reconciler by `syncwright run`.
struct RunRequestRow: StoredRow {
    static let databaseTableName = "runRequests"
    var id: String
    var collection: String
    var runId: String
    var requestedAt: Date
    var requestedBy: String
    var preview: Bool
    var previewLines: Int
    var overrideWindow: Bool
    var result: String?
    var status: RunRequest.Status
    var progress: String?
    var error: String?

    init(_ request: RunRequest) {
        id = request.id
        collection = request.collection
        runId = request.runId
        requestedAt = request.requestedAt
        requestedBy = request.requestedBy
        preview = request.preview
        previewLines = request.previewLines
        overrideWindow = request.overrideWindow
        result = request.result
        status = request.status
        progress = request.progress
        error = request.error
    }

    var request: RunRequest {
        var request = RunRequest(id: id, collection: collection, runId: runId, requestedAt: requestedAt, requestedBy: requestedBy,
                                 preview: preview, previewLines: previewLines, status: status, progress: progress, error: error,
                                 result: result)
        request.overrideWindow = overrideWindow
        return request
    }
}

extension SQLiteStateStore {
    public func queue(_ request: RunRequest) throws {
        try write("queueing a run of \(request.collection)") { db in try RunRequestRow(request).insert(db) }
    }

    public func runRequest(_ id: String) throws -> RunRequest? {
        try read("run request \(id)") { db in try RunRequestRow.fetchOne(db, key: id)?.request }
    }

    public func runRequests(status: RunRequest.Status) throws -> [RunRequest] {
        try read("the \(status.rawValue) runs") { db in
            try RunRequestRow.filter(Column("status") == status.rawValue)
                .order(Column("requestedAt"), Column("id")).fetchAll(db).map(\.request)
        }
    }

    public func start(runRequest id: String) throws -> Bool {
        var taken = false
        try write("starting run request \(id)") { db in
            taken = try RunRequestRow.filter(key: id).filter(Column("status") == RunRequest.Status.queued.rawValue)
                .updateAll(db, Column("status").set(to: RunRequest.Status.started.rawValue)) == 1
        }
        return taken
    }

    public func forgetEndedRunRequests(before date: Date) throws -> Int {
        var forgotten = 0
        try write("forgetting ended run requests") { db in
            try db.cachedStatement(sql: "DELETE FROM runRequests WHERE status IN ('finished', 'failed') AND requestedAt < ?")
                .execute(arguments: [date.timeIntervalSince1970])
            forgotten = db.changesCount
        }
        return forgotten
    }

    public func update(runRequest id: String, status: RunRequest.Status?, progress: String?, error: String?, result: String?) throws {
        try write("updating run request \(id)") { db in
            var changes: [ColumnAssignment] = []
            if let result { changes.append(Column("result").set(to: result)) }
            if let status { changes.append(Column("status").set(to: status.rawValue)) }
            if let error { changes.append(Column("error").set(to: error)) }
            if let progress { changes.append(Column("progress").set(to: progress)) }
            guard !changes.isEmpty else { return }
            try RunRequestRow.filter(key: id).updateAll(db, changes)
        }
    }
}
