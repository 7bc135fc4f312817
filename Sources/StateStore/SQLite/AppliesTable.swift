import Foundation
import GRDB

/// A row of `applies`: one per `apply`.
struct ApplyRow: StoredRow {
    static let databaseTableName = "applies"
    var id: Int64?
    var revision: String
    var appliedAt: Date
    var created: Int
    var updated: Int
    var deleted: Int

    init(_ applied: AppliedRevision) {
        revision = applied.revision
        appliedAt = applied.appliedAt
        created = applied.created
        updated = applied.updated
        deleted = applied.deleted
    }

    var applied: AppliedRevision {
        AppliedRevision(revision: revision, appliedAt: appliedAt, created: created, updated: updated, deleted: deleted)
    }
}

extension SQLiteStateStore {
    public func appliedRevision() throws -> AppliedRevision? {
        try read("the applied revision") { db in
            try ApplyRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM applies ORDER BY id DESC LIMIT 1"))?.applied
        }
    }
}
