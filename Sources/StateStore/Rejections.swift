import Foundation
import GRDB

/// A revision the reconciler refused to apply: kept so that `status` can say so at the top
/// until a later revision is applied.
public struct StoredRejection: Sendable, Equatable {
    public let revision: String
    public let rejectedAt: Date
    public let problems: Int
    /// The reports-branch page that lists the problems.
    public let page: String
    /// The revision that kept running, if any.
    public let running: String?

    public init(revision: String, rejectedAt: Date, problems: Int, page: String, running: String?) {
        self.revision = revision
        self.rejectedAt = rejectedAt
        self.problems = problems
        self.page = page
        self.running = running
    }
}

extension StateStore {
    static func registerRejectionsMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7: rejections") { db in
            try db.execute(sql: """
                CREATE TABLE rejections (
                    revision TEXT PRIMARY KEY,
                    rejectedAt DOUBLE NOT NULL,
                    problems INTEGER NOT NULL,
                    page TEXT NOT NULL,
                    running TEXT
                );
                """)
        }
    }

    /// Records a rejected revision (the first time it is met).
    public func save(_ rejection: StoredRejection) throws {
        try write("recording the rejection of \(rejection.revision)") { db in
            try db.execute(sql: """
                INSERT OR IGNORE INTO rejections (revision, rejectedAt, problems, page, running) VALUES (?, ?, ?, ?, ?)
                """, arguments: [rejection.revision, rejection.rejectedAt.timeIntervalSince1970, rejection.problems,
                                 rejection.page, rejection.running])
        }
    }

    /// The newest rejection, when it is newer than the last apply: the branch's tip is then not
    /// what runs. Nil once a later revision is applied.
    public func standingRejection() throws -> StoredRejection? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM rejections ORDER BY rejectedAt DESC LIMIT 1") else { return nil }
            let rejectedAt: Double = row["rejectedAt"]
            if let applied = try Double.fetchOne(db, sql: "SELECT MAX(appliedAt) FROM applies"), applied > rejectedAt { return nil }
            return StoredRejection(revision: row["revision"], rejectedAt: Date(timeIntervalSince1970: rejectedAt),
                                   problems: row["problems"], page: row["page"], running: row["running"])
        }
    }
}
