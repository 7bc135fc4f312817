import Foundation
import Manifests

/// The applied objects and revisions on PostgreSQL. Many rows are written with one statement
/// each (arrays unnested), not a round trip per row: a first apply stores tens of thousands.
extension PostgresStateStore {
    /// Rows per statement when many are written at once.
    static let batch = 5_000

    static func record(_ row: PGRow) throws -> ObjectRecord {
        let name = try row.text("name")
        let kind = try row.decode(Kind.self, "kind", of: "the applied object \(name)")
        let spec = try row.text("spec")
        return ObjectRecord(key: ObjectKey(kind, name), file: try row.text("file"), spec: spec, raw: row.optional("raw") ?? spec,
                            hash: try row.text("hash"), references: [])
    }

    static func keyArrays(_ keys: some Collection<ObjectKey>) -> [any PGValue] {
        [PGTextArray(keys.map(\.kind.rawValue)), PGTextArray(keys.map(\.name))]
    }

    public func appliedRevision() throws -> AppliedRevision? {
        try read("the applied revision") { db in
            try db.execute("SELECT * FROM applies ORDER BY id DESC LIMIT 1").first.map { row in
                AppliedRevision(revision: try row.text("revision"), appliedAt: try row.date("appliedAt"), created: try row.int("created"),
                                updated: try row.int("updated"), deleted: try row.int("deleted"))
            }
        }
    }

    private func records(_ what: @autoclosure () -> String, _ sql: String, _ parameters: [(any PGValue)?] = [])
        throws -> [ObjectRecord] {
        try read(what()) { db in try db.execute(sql, parameters).map(Self.record) }
    }

    public func allRecords() throws -> [ObjectKey: ObjectRecord] {
        let rows = try records("every applied object", "SELECT * FROM objects")
        return Dictionary(rows.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func records(for keys: some Collection<ObjectKey>, inFiles files: Set<String>) throws -> [ObjectKey: ObjectRecord] {
        let rows = try records("the applied objects a change touches", """
            SELECT * FROM objects WHERE (kind, name) IN (SELECT * FROM unnest($1::text[], $2::text[])) OR file = ANY($3::text[])
            """, Self.keyArrays(keys) + [PGTextArray(files.sorted())])
        return Dictionary(rows.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func records(of kind: Kind) throws -> [ObjectRecord] {
        try records("the applied \(kind.rawValue) objects", "SELECT * FROM objects WHERE kind = $1 ORDER BY name", [kind.rawValue])
    }

    public func manifests(of kind: Kind) throws -> [AppliedManifest] {
        try records(of: kind).map(decoded)
    }

    public func manifest(_ key: ObjectKey) throws -> AppliedManifest? {
        try records("\(key)", "SELECT * FROM objects WHERE kind = $1 AND name = $2", [key.kind.rawValue, key.name]).first.map(decoded)
    }

    private func decoded(_ record: ObjectRecord) throws(StateError) -> AppliedManifest {
        do {
            let (metadata, spec) = try Canonical.decode(kind: record.key.kind, json: record.spec)
            return AppliedManifest(metadata: metadata, spec: spec, file: record.file)
        } catch {
            throw .unreadable(location: location, what: "\(record.key)", reason: "\(error)")
        }
    }

    public func hash(of key: ObjectKey) throws -> String? {
        try read("the hash of \(key)") { db in
            try db.execute("SELECT hash FROM objects WHERE kind = $1 AND name = $2", [key.kind.rawValue, key.name]).first?.text("hash")
        }
    }

    public func hashes(of kind: Kind) throws -> [String: String] {
        try read("the hashes of the applied \(kind.rawValue) objects") { db in
            let rows = try db.execute("SELECT name, hash FROM objects WHERE kind = $1", [kind.rawValue])
            return Dictionary(try rows.map { (try $0.text("name"), try $0.text("hash")) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public var catalog: any AppliedCatalog { PostgresCatalog(store: self) }

    public func apply(_ update: RevisionUpdate) throws {
        let page = update.page?.json()
        try write("storing revision \(update.revision.revision)") { db in
            try Self.save(db, update.requests, at: update.revision.appliedAt)
            try Self.insert(db, update.notifications)
            let full = update.desired.scope == .full
            if full {
                try db.execute("DELETE FROM objects")
                try db.execute("DELETE FROM refs")
            }
            let records = Array(update.desired.objects.values)
            for start in stride(from: 0, to: records.count, by: Self.batch) {
                let slice = records[start..<min(start + Self.batch, records.count)]
                if !full { try Self.deleteReferences(from: slice.map(\.key), db) }
                try db.execute("""
                    INSERT INTO objects (kind, name, file, spec, raw, hash)
                    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                    ON CONFLICT (kind, name) DO UPDATE SET file = excluded.file, spec = excluded.spec, raw = excluded.raw,
                        hash = excluded.hash
                    """, Self.keyArrays(slice.map(\.key)) + [
                        PGTextArray(slice.map(\.file)), PGTextArray(slice.map(\.spec)),
                        PGTextArray(slice.map { $0.raw == $0.spec ? nil : $0.raw }), PGTextArray(slice.map(\.hash)),
                    ])
                let references = slice.flatMap { record in
                    Set(record.references.map(RefRow.target)).sorted().map { (record.key, $0) }
                }
                try db.execute("INSERT INTO refs (kind, name, target) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
                               Self.keyArrays(references.map(\.0)) + [PGTextArray(references.map(\.1))])
            }
            for start in stride(from: 0, to: update.deleted.count, by: Self.batch) {
                let keys = update.deleted[start..<min(start + Self.batch, update.deleted.count)]
                try db.execute("DELETE FROM objects WHERE (kind, name) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                               Self.keyArrays(keys))
                try Self.deleteReferences(from: Array(keys), db)
            }
            let revision = update.revision
            try db.execute("INSERT INTO applies (revision, appliedAt, created, updated, deleted) VALUES ($1, $2, $3, $4, $5)",
                           [revision.revision, revision.appliedAt, revision.created, revision.updated, revision.deleted])
            if let page { try Self.enqueue(db, json: page, kind: .apply, subject: revision.revision, at: revision.appliedAt) }
            if let schedules = update.schedules { try Self.write(db, schedules) }
        }
    }

    private static func deleteReferences(from keys: [ObjectKey], _ db: PGConnection) throws {
        try db.execute("DELETE FROM refs WHERE (kind, name) IN (SELECT * FROM unnest($1::text[], $2::text[]))", keyArrays(keys))
    }
}

/// `AppliedCatalog` over the PostgreSQL store, one indexed query per question.
struct PostgresCatalog: AppliedCatalog {
    let store: PostgresStateStore

    func file(of key: ObjectKey) throws -> String? {
        try store.read("the file of \(key)") { db in
            try db.execute("SELECT file FROM objects WHERE kind = $1 AND name = $2", [key.kind.rawValue, key.name]).first?.text("file")
        }
    }

    func referrers(of targets: Set<Reference.Target>) throws -> [ObjectKey: String] {
        guard !targets.isEmpty else { return [:] }
        return try store.read("the objects that refer to \(targets.count) objects or files") { db in
            let rows = try db.execute("""
                SELECT DISTINCT refs.kind AS kind, refs.name AS name, objects.file AS file FROM refs
                JOIN objects ON objects.kind = refs.kind AND objects.name = refs.name
                WHERE refs.target = ANY($1::text[])
                """, [PGTextArray(targets.map(RefRow.target))])
            var out: [ObjectKey: String] = [:]
            for row in rows {
                let name = try row.text("name")
                out[ObjectKey(try row.decode(Kind.self, "kind", of: "a reference from \(name)"), name)] = try row.text("file")
            }
            return out
        }
    }

    func raw(_ key: ObjectKey) throws -> (json: String, file: String)? {
        try store.read("\(key) as written") { db in
            try db.execute("SELECT * FROM objects WHERE kind = $1 AND name = $2", [key.kind.rawValue, key.name]).first
                .map(PostgresStateStore.record).map { ($0.raw, $0.file) }
        }
    }

    func keys(inFiles files: Set<String>) throws -> [ObjectKey] {
        try store.read("the objects of \(files.count) files") { db in
            try db.execute("SELECT * FROM objects WHERE file = ANY($1::text[])", [PGTextArray(files.sorted())])
                .map { try PostgresStateStore.record($0).key }
        }
    }
}
