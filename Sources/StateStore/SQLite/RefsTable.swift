import Foundation
import GRDB
import Manifests

/// A row of `refs`: one thing an applied object refers to (another object, or a repository file).
struct RefRow: StoredRow {
    static let databaseTableName = "refs"
    var kind: Kind
    var name: String
    /// `Kind/name` for an object, `file:path` for a file.
    var target: String

    static func target(_ target: Reference.Target) -> String {
        switch target {
        case .object(let key): return "\(key.kind.rawValue)/\(key.name)"
        case .file(let path): return "file:\(path)"
        }
    }

    static func insert(_ record: ObjectRecord, _ db: Database) throws {
        let insert = try db.cachedStatement(sql: "INSERT INTO refs (kind, name, target) VALUES (?, ?, ?)")
        for target in Set(record.references.map(Self.target)) {
            try insert.execute(arguments: [record.key.kind.rawValue, record.key.name, target])
        }
    }

    static func delete(from key: ObjectKey, _ db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM refs WHERE kind = ? AND name = ?").execute(arguments: [key.kind.rawValue, key.name])
    }

    /// The applied objects that refer to any of `targets`, with the files that define them.
    static func referrers(of targets: Set<Reference.Target>, _ db: Database) throws -> [ObjectKey: String] {
        var out: [ObjectKey: String] = [:]
        let statement = try db.cachedStatement(sql: """
            SELECT refs.kind, refs.name, objects.file FROM refs
            JOIN objects ON objects.kind = refs.kind AND objects.name = refs.name
            WHERE refs.target = ?
            """)
        for target in targets {
            for row in try Row.fetchAll(statement, arguments: [Self.target(target)]) {
                let text: String = row[0]
                guard let kind = Kind(rawValue: text) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "a reference from an object of unknown kind '\(text)'"))
                }
                out[ObjectKey(kind, row[1])] = row[2]
            }
        }
        return out
    }
}
