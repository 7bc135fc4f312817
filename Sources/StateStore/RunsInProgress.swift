import Foundation
import GRDB

/// A run that has started and not yet been recorded: written before the run's first write, so
/// that a run killed mid-write (or whose disk filled up) is never unaccounted for.
public struct RunInProgress: Sendable, Equatable {
    public let id: String
    public let collection: String
    public let trigger: String
    public let revision: String
    public let startedAt: Date
    public let pid: Int
    /// The job at work when the run was last heard of, if any.
    public let job: String?
    /// The jobs that had ended by then: the run report's `jobs`, as JSON (the reconciler's schema).
    public let finishedJobs: String

    public init(id: String, collection: String, trigger: String, revision: String, startedAt: Date, pid: Int,
                job: String?, finishedJobs: String) {
        self.id = id
        self.collection = collection
        self.trigger = trigger
        self.revision = revision
        self.startedAt = startedAt
        self.pid = pid
        self.job = job
        self.finishedJobs = finishedJobs
    }
}

extension StateStore {
    static func registerRunsInProgressMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6: runs in progress") { db in
            try db.execute(sql: """
                CREATE TABLE runsInProgress (
                    id TEXT PRIMARY KEY,
                    collection TEXT NOT NULL,
                    trigger TEXT NOT NULL,
                    revision TEXT NOT NULL,
                    startedAt DOUBLE NOT NULL,
                    pid INTEGER NOT NULL,
                    job TEXT,
                    finishedJobs TEXT NOT NULL DEFAULT '[]'
                );
                """)
        }
    }

    /// Records that a run has started, in a transaction of its own, before it writes anything.
    public func begin(_ run: RunInProgress) throws {
        try write("recording that run \(run.id) started") { db in
            try db.execute(sql: """
                INSERT INTO runsInProgress (id, collection, trigger, revision, startedAt, pid, job, finishedJobs)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run.id, run.collection, run.trigger, run.revision, run.startedAt.timeIntervalSince1970,
                                 run.pid, run.job, run.finishedJobs])
        }
    }

    /// Notes which job a run is at, and the jobs it has finished, before that job writes.
    public func progress(run id: String, job: String?, finishedJobs: String) throws {
        try write("recording the progress of run \(id)") { db in
            try db.execute(sql: "UPDATE runsInProgress SET job = ?, finishedJobs = ? WHERE id = ?",
                           arguments: [job, finishedJobs, id])
        }
    }

    /// Runs that started and were never recorded, oldest first.
    public func runsInProgress() throws -> [RunInProgress] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM runsInProgress ORDER BY startedAt, id").map { row in
                RunInProgress(id: row["id"], collection: row["collection"], trigger: row["trigger"], revision: row["revision"],
                              startedAt: Date(timeIntervalSince1970: row["startedAt"]), pid: row["pid"], job: row["job"],
                              finishedJobs: row["finishedJobs"])
            }
        }
    }

    /// Forgets a run in progress that recorded nothing (a run that failed before its first write).
    public func forgetRunInProgress(_ id: String) throws {
        try write("forgetting run \(id)") { db in
            try db.execute(sql: "DELETE FROM runsInProgress WHERE id = ?", arguments: [id])
        }
    }
}

extension StateStore {
    /// Moves what the write-ahead log holds into the database now (a passive checkpoint: it
    /// never waits for readers). The reconciler does it while idle, so that the checkpoint
    /// SQLite would otherwise run inside some later commit does not land in a pass.
    public func checkpoint() {
        try? queue.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)") }
    }
}
