import Foundation
import GRDB
import Reports

/// A row of `runsInProgress`: a run that has started and is not yet recorded.
struct RunInProgressRow: OftenWritten {
    static let databaseTableName = "runsInProgress"
    var id: String
    var collection: String
    var trigger: RunTrigger
    var revision: String
    var startedAt: Date
    var pid: Int
    var job: String?
    /// The jobs that had ended (JSON).
    var finishedJobs: [RunReport.Job]

    init(_ run: RunInProgress) {
        id = run.id
        collection = run.collection
        trigger = run.trigger
        revision = run.revision
        startedAt = run.startedAt
        pid = run.pid
        job = run.job
        finishedJobs = run.finishedJobs
    }

    static let columns = ["id", "collection", "trigger", "revision", "startedAt", "pid", "job", "finishedJobs"]
    static let insertSQL = makeInsertSQL()
    func values() throws -> [(any DatabaseValueConvertible)?] {
        [id, collection, trigger.rawValue, revision, startedAt.timeIntervalSince1970, pid, job, try Self.json(finishedJobs)]
    }

    /// The finished jobs as the column holds them: JSON, which GRDB decodes back.
    static func json(_ jobs: [RunReport.Job]) throws -> String {
        String(decoding: try JSONEncoder().encode(jobs), as: UTF8.self)
    }

    var run: RunInProgress {
        RunInProgress(id: id, collection: collection, trigger: trigger, revision: revision, startedAt: startedAt, pid: pid,
                      job: job, finishedJobs: finishedJobs)
    }
}

extension SQLiteStateStore {
    public func begin(_ run: RunInProgress) throws {
        try write("recording that run \(run.id) started") { db in try RunInProgressRow(run).insertCached(db) }
    }

    public func progress(run id: String, job: String?, finishedJobs: [RunReport.Job]) throws {
        try write("recording the progress of run \(id)") { db in
            try db.cachedStatement(sql: "UPDATE runsInProgress SET job = ?, finishedJobs = ? WHERE id = ?")
                .execute(arguments: [job, try RunInProgressRow.json(finishedJobs), id])
        }
    }

    public func runsInProgress() throws -> [RunInProgress] {
        try read("the runs in progress") { db in
            try RunInProgressRow.order(Column("startedAt"), Column("id")).fetchAll(db).map(\.run)
        }
    }

    public func forgetRunInProgress(_ id: String) throws {
        try write("forgetting run \(id)") { db in _ = try RunInProgressRow.deleteOne(db, key: id) }
    }
}
