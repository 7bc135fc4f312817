import Foundation
import GRDB
import Manifests

/// A row of `refs`: one thing an applied object refers to (another object, or a repository file).
struct RefRow: OftenWritten {
    static let databaseTableName = "refs"
    var kind: Kind
    var name: String
    /// `Kind/name` for an object, `file:path` for a file.
    var target: String

    static let columns = ["kind", "name", "target"]
    static let insertSQL = makeInsertSQL()
    func values() -> [(any DatabaseValueConvertible)?] { [kind.rawValue, name, target] }

    static func target(_ target: Reference.Target) -> String {
        switch target {
        case .object(let key): return "\(key.kind.rawValue)/\(key.name)"
        case .file(let path): return "file:\(path)"
        }
    }

    /// The references of `record`, each once, with `statement` (from `insertStatement`).
    static func insert(_ record: ObjectRecord, with statement: Statement) throws {
        for target in Set(record.references.map(Self.target)) {
            try RefRow(kind: record.key.kind, name: record.key.name, target: target).insert(with: statement)
        }
    }

    static func delete(from key: ObjectKey, _ db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM refs WHERE kind = ? AND name = ?").execute(arguments: [key.kind.rawValue, key.name])
    }

    /// The applied objects that refer to any of `targets`, with the files that define them.
    static func referrers(of targets: Set<Reference.Target>, _ db: Database) throws -> [ObjectKey: String] {
        var out: [ObjectKey: String] = [:]
        let statement = try db.cachedStatement(sql: """
            SELECT refs.kind AS kind, refs.name AS name, objects.file AS file FROM refs
            JOIN objects ON objects.kind = refs.kind AND objects.name = refs.name
            WHERE refs.target = ?
            """)
        for target in targets {
            for row in try Row.fetchAll(statement, arguments: [Self.target(target)]) {
                let kind = try decode(Kind.self, row, "kind", of: "a reference from \(row["name"] as String)")
                out[ObjectKey(kind, row["name"])] = row["file"]
            }
        }
        return out
    }
}
