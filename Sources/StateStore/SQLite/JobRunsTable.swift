import Foundation
import GRDB
import Reports

/// A row of `jobRuns`: one job of a finished run, with its log.
struct JobRunRow: OftenWritten {
    static let databaseTableName = "jobRuns"
    var runId: String
    var position: Int
    var job: String
    var status: JobStatus
    var log: String

    static let columns = ["runId", "position", "job", "status", "log"]
    static let insertSQL = makeInsertSQL()
    func values() -> [(any DatabaseValueConvertible)?] { [runId, position, job, status.rawValue, log] }
}

extension SQLiteStateStore {
    public func jobLog(run: String, job: String) throws -> String? {
        try read("the log of job \(job) in run \(run)") { db in
            try JobRunRow.filter(Column("runId") == run && Column("job") == job).select(Column("log"), as: String.self).fetchOne(db)
        }
    }
}
