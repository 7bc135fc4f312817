import Foundation
import GRDB
import Reports

/// A row of `jobRuns`: one job of a finished run, with its log.
struct JobRunRow: StoredRow {
    static let databaseTableName = "jobRuns"
    var runId: String
    var position: Int
    var job: String
    var status: JobStatus
    var log: String

    /// Written by hand, not through `Encodable`, as every job of every run records one.
    func encode(to container: inout PersistenceContainer) {
        container["runId"] = runId
        container["position"] = position
        container["job"] = job
        container["status"] = status.rawValue
        container["log"] = log
    }
}

extension SQLiteStateStore {
    public func jobLog(run: String, job: String) throws -> String? {
        try read("the log of job \(job) in run \(run)") { db in
            try JobRunRow.filter(Column("runId") == run && Column("job") == job).select(Column("log"), as: String.self).fetchOne(db)
        }
    }
}
