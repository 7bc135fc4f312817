import Foundation
import GRDB
import Reports

/// A row of `rejections`: a revision the reconciler refused to apply.
struct RejectionRow: StoredRow {
    static let databaseTableName = "rejections"
    var revision: String
    var rejectedAt: Date
    var problems: Int
    var page: String
    var running: String?

    init(_ rejection: StoredRejection) {
        revision = rejection.revision
        rejectedAt = rejection.rejectedAt
        problems = rejection.problems
        page = rejection.page
        running = rejection.running
    }

    var rejection: StoredRejection {
        StoredRejection(revision: revision, rejectedAt: rejectedAt, problems: problems, page: page, running: running)
    }
}

extension SQLiteStateStore {
    public func save(_ rejection: StoredRejection, page: Publication) throws {
        let json = page.json()
        try write("recording the rejection of \(rejection.revision)") { db in
            guard try RejectionRow.fetchOne(db, key: rejection.revision) == nil else { return }
            try RejectionRow(rejection).insert(db)
            try Self.enqueue(db, json: json, kind: .rejected, subject: rejection.revision, at: rejection.rejectedAt)
        }
    }

    public func standingRejection() throws -> StoredRejection? {
        try read("the standing rejection") { db in
            guard let row = try RejectionRow.order(Column("rejectedAt").desc).fetchOne(db) else { return nil }
            if let applied = try ApplyRow.order(Column("id").desc).fetchOne(db), applied.appliedAt > row.rejectedAt { return nil }
            return row.rejection
        }
    }
}
