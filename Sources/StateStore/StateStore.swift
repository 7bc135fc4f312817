import Foundation
import GRDB
import Manifests

/// The state store's error: which file and what went wrong.
public struct StateError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One `apply`, as recorded.
public struct AppliedRevision: Sendable, Equatable {
    public let revision: String
    public let appliedAt: Date
    public let created: Int
    public let updated: Int
    public let deleted: Int

    public init(revision: String, appliedAt: Date, created: Int, updated: Int, deleted: Int) {
        self.revision = revision
        self.appliedAt = appliedAt
        self.created = created
        self.updated = updated
        self.deleted = deleted
    }
}

/// The reconciler's stored state in SQLite: the applied revision and every applied object.
///
/// `Sendable` because GRDB's `DatabaseQueue` serialises all access itself.
public final class StateStore: Sendable {
    let queue: DatabaseQueue
    public let path: String

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    public init(path: String) throws {
        self.path = path
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(queue)
        } catch let error as DatabaseError {
            throw StateError("cannot open the state store \(path): \(error.message ?? "\(error)")")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: applied objects") { db in
            try db.execute(sql: """
                CREATE TABLE applies (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    revision TEXT NOT NULL,
                    appliedAt DOUBLE NOT NULL,
                    created INTEGER NOT NULL,
                    updated INTEGER NOT NULL,
                    deleted INTEGER NOT NULL
                );
                CREATE TABLE objects (
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    file TEXT NOT NULL,
                    spec TEXT NOT NULL,
                    raw TEXT,                          -- NULL when the same as spec (all but collections)
                    hash TEXT NOT NULL,
                    UNIQUE (kind, name)
                );
                CREATE INDEX objects_by_file ON objects(file);
                CREATE TABLE refs (
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    target TEXT NOT NULL
                );
                CREATE INDEX refs_by_target ON refs(target);
                CREATE INDEX refs_by_source ON refs(kind, name);
                """)
        }
        return migrator
    }

    static func targetKey(_ target: Reference.Target) -> String {
        switch target {
        case .object(let key): return "\(key.kind.rawValue)/\(key.name)"
        case .file(let path): return "file:\(path)"
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.read(body)
        } catch let error as DatabaseError {
            throw StateError("reading the state store \(path) failed: \(error.message ?? "\(error)")")
        }
    }

    // MARK: Reading

    /// The last applied revision, or nil before the first apply.
    public func appliedRevision() throws -> AppliedRevision? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM applies ORDER BY id DESC LIMIT 1").map {
                AppliedRevision(revision: $0["revision"], appliedAt: Date(timeIntervalSince1970: $0["appliedAt"]),
                                created: $0["created"], updated: $0["updated"], deleted: $0["deleted"])
            }
        }
    }

    private static func record(_ row: Row) -> ObjectRecord? {
        guard let kind = Kind(rawValue: row["kind"]) else { return nil }
        let spec: String = row["spec"]
        return ObjectRecord(key: ObjectKey(kind, row["name"]), file: row["file"], spec: spec,
                            raw: row["raw"] ?? spec, hash: row["hash"], references: [])
    }

    /// Every applied object.
    public func allRecords() throws -> [ObjectKey: ObjectRecord] {
        try read { db in
            var out: [ObjectKey: ObjectRecord] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT kind, name, file, spec, raw, hash FROM objects")
            while let row = try rows.next() {
                if let record = Self.record(row) { out[record.key] = record }
            }
            return out
        }
    }

    /// The applied records that a path-scoped plan compares: those for `keys`, and those defined in `files`.
    public func records(for keys: some Collection<ObjectKey>, inFiles files: Set<String>) throws -> [ObjectKey: ObjectRecord] {
        try read { db in
            var out: [ObjectKey: ObjectRecord] = [:]
            let byKey = try db.makeStatement(sql: "SELECT kind, name, file, spec, raw, hash FROM objects WHERE kind = ? AND name = ?")
            for key in keys {
                if let row = try Row.fetchOne(byKey, arguments: [key.kind.rawValue, key.name]),
                   let record = Self.record(row) { out[record.key] = record }
            }
            let byFile = try db.makeStatement(sql: "SELECT kind, name, file, spec, raw, hash FROM objects WHERE file = ?")
            for file in files {
                for row in try Row.fetchAll(byFile, arguments: [file]) {
                    if let record = Self.record(row) { out[record.key] = record }
                }
            }
            return out
        }
    }

    /// The applied objects of one kind, decoded, sorted by name.
    public func manifests(of kind: Kind) throws -> [(Metadata, Spec, String)] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: "SELECT spec, file FROM objects WHERE kind = ? ORDER BY name", arguments: [kind.rawValue])
        }
        return try rows.map { row in
            let (metadata, spec) = try Canonical.decode(kind: kind, json: row["spec"])
            return (metadata, spec, row["file"])
        }
    }

    /// A view for building a path-scoped desired state.
    public var catalog: AppliedCatalog { Catalog(store: self) }

    // MARK: Writing

    /// Stores a plan's outcome in one transaction: upserts every object of `desired`, deletes `deleted`,
    /// and records `revision`. On any failure nothing changes.
    public func apply(desired: DesiredState, deleted: [ObjectKey], revision: String, counts: (Int, Int, Int),
                      at date: Date = Date()) throws {
        do {
            try queue.write { db in
                let upsert = try db.makeStatement(sql: """
                    INSERT INTO objects (kind, name, file, spec, raw, hash) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (kind, name) DO UPDATE SET file = excluded.file, spec = excluded.spec,
                        raw = excluded.raw, hash = excluded.hash
                    """)
                let dropRefs = try db.makeStatement(sql: "DELETE FROM refs WHERE kind = ? AND name = ?")
                let addRef = try db.makeStatement(sql: "INSERT INTO refs (kind, name, target) VALUES (?, ?, ?)")
                let drop = try db.makeStatement(sql: "DELETE FROM objects WHERE kind = ? AND name = ?")
                if desired.scope == .full {
                    try db.execute(sql: "DELETE FROM objects")
                    try db.execute(sql: "DELETE FROM refs")
                }
                for record in desired.objects.values {
                    let kind = record.key.kind.rawValue
                    let raw: String? = record.raw == record.spec ? nil : record.raw
                    try upsert.execute(arguments: [kind, record.key.name, record.file, record.spec, raw, record.hash])
                    if desired.scope != .full { try dropRefs.execute(arguments: [kind, record.key.name]) }
                    for target in Set(record.references.map(Self.targetKey)) {
                        try addRef.execute(arguments: [kind, record.key.name, target])
                    }
                }
                for key in deleted {
                    try drop.execute(arguments: [key.kind.rawValue, key.name])
                    try dropRefs.execute(arguments: [key.kind.rawValue, key.name])
                }
                try db.execute(sql: """
                    INSERT INTO applies (revision, appliedAt, created, updated, deleted) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [revision, date.timeIntervalSince1970, counts.0, counts.1, counts.2])
            }
        } catch let error as DatabaseError {
            throw StateError("storing revision \(revision) in \(path) failed, nothing was changed: \(error.message ?? "\(error)")")
        }
    }
}

/// `AppliedCatalog` over the store, one indexed query per question.
struct Catalog: AppliedCatalog {
    let store: StateStore

    func file(of key: ObjectKey) throws -> String? {
        try store.read { db in
            try String.fetchOne(db, sql: "SELECT file FROM objects WHERE kind = ? AND name = ?",
                                arguments: [key.kind.rawValue, key.name])
        }
    }

    func referrers(of targets: Set<Reference.Target>) throws -> [ObjectKey: String] {
        guard !targets.isEmpty else { return [:] }
        return try store.read { db in
            var out: [ObjectKey: String] = [:]
            let statement = try db.makeStatement(sql: """
                SELECT refs.kind, refs.name, objects.file FROM refs
                JOIN objects ON objects.kind = refs.kind AND objects.name = refs.name
                WHERE refs.target = ?
                """)
            for target in targets {
                for row in try Row.fetchAll(statement, arguments: [StateStore.targetKey(target)]) {
                    if let kind = Kind(rawValue: row[0]) { out[ObjectKey(kind, row[1])] = row[2] }
                }
            }
            return out
        }
    }

    func raw(_ key: ObjectKey) throws -> (json: String, file: String)? {
        try store.read { db in
            try Row.fetchOne(db, sql: "SELECT coalesce(raw, spec) AS raw, file FROM objects WHERE kind = ? AND name = ?",
                             arguments: [key.kind.rawValue, key.name]).map { ($0["raw"], $0["file"]) }
        }
    }

    func keys(inFiles files: Set<String>) throws -> [ObjectKey] {
        try store.read { db in
            var out: [ObjectKey] = []
            let statement = try db.makeStatement(sql: "SELECT kind, name FROM objects WHERE file = ?")
            for file in files {
                for row in try Row.fetchAll(statement, arguments: [file]) {
                    if let kind = Kind(rawValue: row[0]) { out.append(ObjectKey(kind, row[1])) }
                }
            }
            return out
        }
    }
}
