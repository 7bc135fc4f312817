import Foundation
import GRDB
import Manifests

/// A row of `objects`: one applied object, keyed by kind and name.
struct ObjectRow: OftenWritten {
    static let databaseTableName = "objects"
    var kind: Kind
    var name: String
    var file: String
    /// Canonical JSON after template expansion.
    var spec: String
    /// Canonical JSON as written; NULL when the same as `spec` (all but collections).
    var raw: String?
    var hash: String

    init(_ record: ObjectRecord) {
        kind = record.key.kind
        name = record.key.name
        file = record.file
        spec = record.spec
        raw = record.raw == record.spec ? nil : record.raw
        hash = record.hash
    }

    var record: ObjectRecord {
        ObjectRecord(key: ObjectKey(kind, name), file: file, spec: spec, raw: raw ?? spec, hash: hash, references: [])
    }

    init(row: Row) throws {
        name = row["name"]
        kind = try Self.decode(Kind.self, row, "kind", of: "the applied object \(name)")
        file = row["file"]
        spec = row["spec"]
        raw = row["raw"]
        hash = row["hash"]
    }

    static let columns = ["kind", "name", "file", "spec", "raw", "hash"]
    static let insertSQL = makeInsertSQL()
    func values() -> [(any DatabaseValueConvertible)?] { [kind.rawValue, name, file, spec, raw, hash] }

    /// The row of `key`, through a cached statement (runs look objects up one by one).
    static func fetch(_ key: ObjectKey, _ db: Database) throws -> ObjectRow? {
        try fetchOne(db.cachedStatement(sql: "SELECT * FROM objects WHERE kind = ? AND name = ?"),
                     arguments: [key.kind.rawValue, key.name])
    }

    /// The rows defined in `file`.
    static func inFile(_ file: String, _ db: Database) throws -> [ObjectRow] {
        try fetchAll(db.cachedStatement(sql: "SELECT * FROM objects WHERE file = ?"), arguments: [file])
    }

    /// One column of the row of `key`.
    static func column(_ column: String, of key: ObjectKey, _ db: Database) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT \(column) FROM objects WHERE kind = ? AND name = ?"),
                            arguments: [key.kind.rawValue, key.name])
    }
}

extension SQLiteStateStore {
    public func allRecords() throws -> [ObjectKey: ObjectRecord] {
        try read("every applied object") { db in
            var out: [ObjectKey: ObjectRecord] = [:]
            let rows = try ObjectRow.fetchCursor(db)
            while let row = try rows.next() { out[row.record.key] = row.record }
            return out
        }
    }

    public func records(for keys: some Collection<ObjectKey>, inFiles files: Set<String>) throws -> [ObjectKey: ObjectRecord] {
        try read("the applied objects a change touches") { db in
            var out: [ObjectKey: ObjectRecord] = [:]
            for key in keys {
                if let row = try ObjectRow.fetch(key, db) { out[key] = row.record }
            }
            for file in files {
                for row in try ObjectRow.inFile(file, db) { out[row.record.key] = row.record }
            }
            return out
        }
    }

    public func records(of kind: Kind) throws -> [ObjectRecord] {
        try read("the applied \(kind.rawValue) objects") { db in
            try ObjectRow.filter(Column("kind") == kind.rawValue).order(Column("name")).fetchAll(db).map(\.record)
        }
    }

    public func manifests(of kind: Kind) throws -> [AppliedManifest] {
        let rows = try read("the applied \(kind.rawValue) objects") { db in
            try ObjectRow.filter(Column("kind") == kind.rawValue).order(Column("name")).fetchAll(db)
        }
        return try rows.map(decoded)
    }

    public func manifest(_ key: ObjectKey) throws -> AppliedManifest? {
        try read("\(key)") { db in try ObjectRow.fetch(key, db) }.map(decoded)
    }

    private func decoded(_ row: ObjectRow) throws(StateError) -> AppliedManifest {
        do {
            let (metadata, spec) = try Canonical.decode(kind: row.kind, json: row.spec)
            return AppliedManifest(metadata: metadata, spec: spec, file: row.file)
        } catch {
            throw .unreadable(location: path, what: "\(ObjectKey(row.kind, row.name))", reason: "\(error)")
        }
    }

    public func hash(of key: ObjectKey) throws -> String? {
        try read("the hash of \(key)") { db in try ObjectRow.column("hash", of: key, db) }
    }

    public func hashes(of kind: Kind) throws -> [String: String] {
        try read("the hashes of the applied \(kind.rawValue) objects") { db in
            let rows = try Row.fetchAll(db, ObjectRow.filter(Column("kind") == kind.rawValue).select(Column("name"), Column("hash")))
            return Dictionary(rows.map { ($0["name"], $0["hash"]) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public var catalog: any AppliedCatalog { Catalog(store: self) }

    public func apply(_ update: RevisionUpdate) throws {
        let pageJSON = update.page?.json(), requests = Self.encoded(update.requests)
        let notifications = try update.notifications.map(NotificationRow.init)
        try write("storing revision \(update.revision.revision)") { db in
            try Self.save(db, requests, at: update.revision.appliedAt)
            for row in notifications { try row.insertCached(db) }
            if update.desired.scope == .full {
                try ObjectRow.deleteAll(db)
                try RefRow.deleteAll(db)
            }
            // Through cached statements: GRDB's record insert costs more than SQLite's own work
            // here (a first apply stores 60,000 objects and twice as many references).
            let insert = try ObjectRow.insertStatement(db), insertRef = try RefRow.insertStatement(db)
            let upsert = try db.cachedStatement(sql: ObjectRow.insertSQL + """
                 ON CONFLICT (kind, name) DO UPDATE SET file = excluded.file, spec = excluded.spec,
                    raw = excluded.raw, hash = excluded.hash
                """)
            for record in update.desired.objects.values {
                let row = ObjectRow(record)
                if update.desired.scope == .full {
                    try row.insert(with: insert) // the table was emptied above
                } else {
                    try upsert.execute(arguments: StatementArguments(row.values()))
                    try RefRow.delete(from: record.key, db)
                }
                try RefRow.insert(record, with: insertRef)
            }
            for key in update.deleted {
                try db.cachedStatement(sql: "DELETE FROM objects WHERE kind = ? AND name = ?")
                    .execute(arguments: [key.kind.rawValue, key.name])
                try RefRow.delete(from: key, db)
            }
            try ApplyRow(update.revision).insert(db)
            if let pageJSON {
                try Self.enqueue(db, json: pageJSON, kind: .apply, subject: update.revision.revision, at: update.revision.appliedAt)
            }
            if let schedules = update.schedules { try Self.write(db, schedules) }
        }
    }
}

/// `AppliedCatalog` over the store, one indexed query per question.
struct Catalog: AppliedCatalog {
    let store: SQLiteStateStore

    func file(of key: ObjectKey) throws -> String? {
        try store.read("the file of \(key)") { db in
            try ObjectRow.column("file", of: key, db)
        }
    }

    func referrers(of targets: Set<Reference.Target>) throws -> [ObjectKey: String] {
        guard !targets.isEmpty else { return [:] }
        return try store.read("the objects that refer to \(targets.count) objects or files") { db in
            try RefRow.referrers(of: targets, db)
        }
    }

    func raw(_ key: ObjectKey) throws -> (json: String, file: String)? {
        try store.read("\(key) as written") { db in
            try ObjectRow.fetch(key, db).map { ($0.raw ?? $0.spec, $0.file) }
        }
    }

    func keys(inFiles files: Set<String>) throws -> [ObjectKey] {
        try store.read("the objects of \(files.count) files") { db in
            try files.flatMap { file in try ObjectRow.inFile(file, db).map(\.record.key) }
        }
    }
}
