import CPostgres
import Foundation

/// What PostgreSQL (or libpq) said when a statement or a connection failed.
struct PGFailure: Error, CustomStringConvertible {
    let message: String
    /// The SQLSTATE code, when the server sent one (e.g. `23505` for a unique violation).
    let sqlState: String?
    /// The connection was lost (the server restarted, or the network dropped).
    let connectionLost: Bool
    var description: String { message }
}

/// The connection was lost while a transaction was being committed.
struct PGCommitLost: Error {
    let failure: PGFailure
}

/// A value for a statement parameter, sent as text, which the server parses as the column's type.
protocol PGValue {
    var pgText: String { get }
}

extension String: PGValue { var pgText: String { self } }
extension Int: PGValue { var pgText: String { String(self) } }
extension Int64: PGValue { var pgText: String { String(self) } }
extension Bool: PGValue { var pgText: String { self ? "true" : "false" } }
/// Swift prints the shortest text that reads back as the same Double, and PostgreSQL reads it so.
extension Double: PGValue { var pgText: String { "\(self)" } }
/// Dates are stored as seconds since 1970 (double precision), as in the SQLite backend.
extension Date: PGValue { var pgText: String { timeIntervalSince1970.pgText } }

/// A text array parameter (`$1::text[]`), for statements that take many rows at once.
struct PGTextArray: PGValue {
    let values: [String?]
    init(_ values: [String?]) { self.values = values }
    var pgText: String {
        "{" + values.map { value -> String in
            guard let value else { return "NULL" }
            var quoted = "\""
            for character in value.unicodeScalars {
                if character == "\"" || character == "\\" { quoted.unicodeScalars.append("\\") }
                quoted.unicodeScalars.append(character)
            }
            return quoted + "\""
        }.joined(separator: ",") + "}"
    }
}

/// One row of a result, its values as text (nil for NULL), read by column name.
struct PGRow {
    let values: [String?]
    let columns: [String: Int]

    /// The value of `column` (names are compared in lower case, as PostgreSQL folds them).
    func optional(_ column: String) -> String? {
        guard let index = columns[column.lowercased()] else { return nil }
        return values[index]
    }

    func text(_ column: String) throws -> String {
        guard let value = optional(column) else { throw Self.missing(column) }
        return value
    }

    func int(_ column: String) throws -> Int {
        guard let value = Int(try text(column)) else { throw Self.unreadable(column, try text(column)) }
        return value
    }

    func int64(_ column: String) throws -> Int64 {
        guard let value = Int64(try text(column)) else { throw Self.unreadable(column, try text(column)) }
        return value
    }

    func double(_ column: String) throws -> Double {
        guard let value = Double(try text(column)) else { throw Self.unreadable(column, try text(column)) }
        return value
    }

    func date(_ column: String) throws -> Date { Date(timeIntervalSince1970: try double(column)) }

    func optionalDate(_ column: String) throws -> Date? {
        optional(column) == nil ? nil : try date(column)
    }

    func bool(_ column: String) throws -> Bool { try text(column) == "t" }

    /// A text column that must be one of `T`'s cases: anything else (a newer version wrote it,
    /// or damage) is an error naming the row.
    func decode<T: RawRepresentable>(_ type: T.Type, _ column: String, of what: @autoclosure () -> String) throws -> T
        where T.RawValue == String {
        let value = try text(column)
        guard let decoded = T(rawValue: value) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(what()) has the unknown \(column) '\(value)'"))
        }
        return decoded
    }

    private static func missing(_ column: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: [], debugDescription: "the column \(column) is NULL or missing"))
    }

    private static func unreadable(_ column: String, _ value: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: [], debugDescription: "the column \(column) holds '\(value)'"))
    }
}

/// One connection to PostgreSQL through libpq. Not thread-safe: its owner serialises calls.
///
/// Statements are sent with `PQexecParams` (unnamed, parameters as text), never as named
/// prepared statements, so that a pooler in transaction mode (PgBouncer) passes them through.
final class PGConnection {
    private var connection: OpaquePointer?

    /// Connects with libpq's keywords (`dbname` may be a whole `postgresql://` URI).
    init(parameters: [(String, String)]) throws(PGFailure) {
        let keys = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        let pointer = keys.withUnsafeBufferPointer { keyBuffer in
            values.withUnsafeBufferPointer { valueBuffer in
                keyBuffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: keys.count) { k in
                    valueBuffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: values.count) { v in
                        PQconnectdbParams(k, v, 1)
                    }
                }
            }
        }
        connection = pointer
        guard let pointer, PQstatus(pointer) == CONNECTION_OK else {
            let message = pointer.map { Self.trimmed(PQerrorMessage($0)) } ?? "out of memory"
            if let pointer { PQfinish(pointer) }
            connection = nil
            throw PGFailure(message: message, sqlState: nil, connectionLost: true)
        }
        // CREATE … IF NOT EXISTS and the like send notices; libpq would print them to stderr.
        PQsetNoticeProcessor(pointer, { _, _ in }, nil)
    }

    deinit { if let connection { PQfinish(connection) } }

    /// Whether the connection is known to be lost (a failed statement found it so).
    var isBroken: Bool { connection.map { PQstatus($0) != CONNECTION_OK } ?? true }

    /// Connects again with the same parameters, after the connection was lost.
    func reset() throws(PGFailure) {
        guard let connection else { throw PGFailure(message: "no connection", sqlState: nil, connectionLost: true) }
        PQreset(connection)
        guard PQstatus(connection) == CONNECTION_OK else {
            throw PGFailure(message: Self.trimmed(PQerrorMessage(connection)), sqlState: nil, connectionLost: true)
        }
    }

    /// Runs `body` in one transaction, begun by `begin` (BEGIN, or a script that begins it and
    /// asks a first question, whose rows `body` gets), and commits it. It is sent again, up to 3
    /// times, when the connection was lost before COMMIT was sent (the server dropped the
    /// transaction whole), or when the server chose it as a deadlock's or serialisation's victim.
    /// Throws `PGCommitLost` when the connection was lost during COMMIT: then it may or may not
    /// be stored.
    func transaction<T>(begin: String = "BEGIN", _ body: (_ begun: [PGRow]) throws -> T) throws -> T {
        var attempts = 0
        while true {
            attempts += 1
            var committing = false
            do {
                if isBroken { try reset() }
                let value = try body(try executeScript(begin))
                committing = true
                try execute("COMMIT")
                return value
            } catch {
                let failure = error as? PGFailure
                // (A failed begin script may have begun the transaction: roll back anyway.)
                if !(failure?.connectionLost ?? false) { _ = try? execute("ROLLBACK") }
                if let failure, attempts < 3,
                   (failure.connectionLost && !committing) || failure.sqlState == "40P01" || failure.sqlState == "40001" {
                    continue
                }
                if let failure, failure.connectionLost && committing { throw PGCommitLost(failure: failure) }
                throw error
            }
        }
    }

    /// Runs one statement with `parameters` ($1, $2, …; nil is NULL) and returns its rows.
    @discardableResult
    func execute(_ sql: String, _ parameters: [(any PGValue)?] = []) throws(PGFailure) -> [PGRow] {
        try run(sql, parameters).rows
    }

    /// Runs one statement and returns how many rows it changed.
    func change(_ sql: String, _ parameters: [(any PGValue)?] = []) throws(PGFailure) -> Int {
        try run(sql, parameters).changed
    }

    /// Runs several statements without parameters (a schema step, or BEGIN with a first
    /// question: one round trip), through `PQexec`; the rows of the last one.
    @discardableResult
    func executeScript(_ sql: String) throws(PGFailure) -> [PGRow] {
        guard let connection else { throw PGFailure(message: "no connection", sqlState: nil, connectionLost: true) }
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard let result, status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw failure(result, connection)
        }
        return Self.rows(of: result)
    }

    /// A literal for a script: `'text'`, quotes doubled (standard_conforming_strings is on).
    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }

    private static func rows(of result: OpaquePointer) -> [PGRow] {
        let columnCount = PQnfields(result), rowCount = PQntuples(result)
        var columns: [String: Int] = [:]
        for column in 0..<columnCount { columns[String(cString: PQfname(result, column))] = Int(column) }
        var rows: [PGRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                values.append(PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column)))
            }
            rows.append(PGRow(values: values, columns: columns))
        }
        return rows
    }

    private func failure(_ result: OpaquePointer?, _ connection: OpaquePointer) -> PGFailure {
        let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        let message = result.map { Self.trimmed(PQresultErrorMessage($0)) } ?? ""
        return PGFailure(message: message.isEmpty ? Self.trimmed(PQerrorMessage(connection)) : message, sqlState: state,
                         connectionLost: PQstatus(connection) != CONNECTION_OK)
    }

    private func run(_ sql: String, _ parameters: [(any PGValue)?]) throws(PGFailure) -> (rows: [PGRow], changed: Int) {
        guard let connection else { throw PGFailure(message: "no connection", sqlState: nil, connectionLost: true) }
        let texts: [UnsafeMutablePointer<CChar>?] = parameters.map { value in value.flatMap { strdup($0.pgText) } }
        defer { texts.forEach { free($0) } }
        let result = texts.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.map { base in
                base.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: texts.count) { values in
                    PQexecParams(connection, sql, Int32(texts.count), nil, values, nil, nil, 0)
                }
            } ?? PQexecParams(connection, sql, 0, nil, nil, nil, nil, 0)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard let result, status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw failure(result, connection)
        }
        return (Self.rows(of: result), Int(String(cString: PQcmdTuples(result))) ?? 0)
    }

    private static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        message.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
    }
}
