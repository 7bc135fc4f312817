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
    func values() throws -> [(any DatabaseValueConvertible)?] {
        [id, collection, trigger.rawValue, revision, startedAt.timeIntervalSince1970, pid, job,
         String(decoding: try JSONEncoder().encode(finishedJobs), as: UTF8.self)]
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
        let jobs = try json(finishedJobs, what: "the progress of run \(id)")
        try write("recording the progress of run \(id)") { db in
            try db.cachedStatement(sql: "UPDATE runsInProgress SET job = ?, finishedJobs = ? WHERE id = ?")
                .execute(arguments: [job, jobs, id])
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

extension SQLiteStateStore {
    /// `value` as JSON text, as GRDB stores a `Codable` column.
    func json(_ value: some Encodable, what: String) throws(StateError) -> String {
        do {
            return String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        } catch {
            throw .writeFailed(location: path, what: what, reason: "\(error)")
        }
    }
}
