import Foundation
import GRDB
import Manifests

/// The state store in one SQLite file (through GRDB), with write-ahead logging.
///
/// `Sendable` because GRDB's `DatabaseQueue` serialises all access itself.
public final class SQLiteStateStore: StateStore {
    let queue: DatabaseQueue
    /// The database file.
    public let path: String
    public var location: String { path }

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    public init(path: String) throws(StateError) {
        self.path = path
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            queue = try DatabaseQueue(path: path, configuration: configuration)
            // Write-ahead logging: a reader (`status`, `history`) never waits for the reconciler's
            // writes, and a commit costs one append and one fsync instead of a journal round trip.
            // synchronous stays FULL, so a committed run survives a power cut.
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            let migrator = Migrations.migrator
            if try queue.read(migrator.hasBeenSuperseded) {
                throw StateError.cannotOpen(location: path, reason: "it was made by a newer syncwright (its schema has steps "
                                                + "this version does not know); run that version, or restore a backup")
            }
            try migrator.migrate(queue)
        } catch let error as StateError {
            throw error
        } catch {
            throw .cannotOpen(location: path, reason: Self.reason(error))
        }
    }

    /// Answers a question in one read transaction; `what` names it in an error.
    func read<T>(_ what: @autoclosure () -> String, _ body: (Database) throws -> T) throws(StateError) -> T {
        do {
            return try queue.read(body)
        } catch let error as StateError {
            throw error
        } catch let error as DatabaseError {
            throw .readFailed(location: path, what: what(), reason: Self.reason(error))
        } catch {
            // Anything else is a row that does not decode: an unknown status, or damage.
            throw .unreadable(location: path, what: what(), reason: Self.reason(error))
        }
    }

    /// Writes in one transaction: on any error nothing of it is stored.
    func write(_ what: @autoclosure () -> String, _ body: (Database) throws -> Void) throws(StateError) {
        do {
            try queue.write(body)
        } catch let error as StateError {
            throw error
        } catch {
            throw .writeFailed(location: path, what: what(), reason: Self.reason(error))
        }
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error)" }
        if case DecodingError.dataCorrupted(let context) = error { return context.debugDescription }
        return "\(error)"
    }

    public func tidy() {
        try? queue.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)") }
    }
}

/// A row of one table: `Codable`, with dates stored as seconds since 1970 (as the schema has
/// always held them).
///
/// The rows read or written many times per run or apply (objects, references, runs, fires, the
/// outbox) read and write their columns by hand (`init(row:)`, `encode(to:)`), and are looked
/// up through cached statements: GRDB's `Codable` coding and query building cost more than the
/// SQLite work there (a first apply of 60,000 objects took half as long again through them).
protocol StoredRow: Codable, FetchableRecord, PersistableRecord {}

/// A row written many times per run or apply: its columns in table order, written by hand and
/// inserted through a cached statement.
protocol OftenWritten: StoredRow {
    /// The columns an insert writes, in the order of `values()`.
    static var columns: [String] { get }
    /// `makeInsertSQL()`, kept by each type (`static let insertSQL = makeInsertSQL()`), so that
    /// it is built once, not per row.
    static var insertSQL: String { get }
    func values() throws -> [(any DatabaseValueConvertible)?]
}

extension OftenWritten {
    func encode(to container: inout PersistenceContainer) throws {
        for (column, value) in zip(Self.columns, try values()) { container[column] = value }
    }

    /// `INSERT INTO table (columns) VALUES (?, …)`.
    static func makeInsertSQL() -> String {
        let marks = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        return "INSERT INTO \(databaseTableName) (\(columns.joined(separator: ", "))) VALUES (\(marks))"
    }

    /// Inserts the row through a statement prepared once per connection.
    func insertCached(_ db: Database) throws {
        try insert(with: db.cachedStatement(sql: Self.insertSQL))
    }

    /// The insert statement, for a loop that writes many rows with it.
    static func insertStatement(_ db: Database) throws -> Statement { try db.cachedStatement(sql: insertSQL) }

    /// Inserts the row with `statement` (from `insertStatement`).
    func insert(with statement: Statement) throws {
        try statement.execute(arguments: StatementArguments(try values()))
    }
}

extension StoredRow {
    /// Throws for a text column whose value is not one of `T`'s cases (a newer version wrote it,
    /// or damage), naming the row.
    static func decode<T: RawRepresentable>(_ type: T.Type, _ row: Row, _ column: String, of what: @autoclosure () -> String)
        throws -> T where T.RawValue == String {
        let text: String = row[column]
        guard let value = T(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(what()) has the unknown \(column) '\(text)'"))
        }
        return value
    }
}

extension StoredRow {
    static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
}
