import Foundation

/// A CSV file (RFC 4180) as a directory: a header row, then one entry per row.
///
/// Rows have no DN; each entry's `dn` is `#<row>` (1 for the first data row), which is how
/// changes name the row to update or delete. Quoted fields may hold the delimiter, quotes (`""`)
/// and line breaks. A UTF-8 byte order mark is accepted, and kept on write. An empty field is
/// an absent attribute. Columns listed in `multiValueDelimiters` are split into several values
/// on read and joined on write.
public final class CSVDirectory: Directory {
    let location: FileLocation
    let what: String
    let delimiter: UInt8
    let multiValueDelimiters: [AttributeName: String]
    let missingIsEmpty: Bool
    private var header: [AttributeName] = []
    private var table = EntryTable<Entry>()
    private var loaded = false
    private var hadBOM = false
    private var lineEnding = "\n"
    private var dirty = false

    /// - Parameters:
    ///   - what: names the connection in errors, e.g. "connection hr-export".
    ///   - missingIsEmpty: a missing file reads as empty (a destination), instead of failing (a source).
    public init(_ location: FileLocation, what: String, delimiter: Character = ",",
                multiValueDelimiters: [AttributeName: String] = [:], missingIsEmpty: Bool) {
        self.location = location
        self.what = what
        self.delimiter = delimiter.asciiValue ?? UInt8(ascii: ",")
        self.multiValueDelimiters = multiValueDelimiters
        self.missingIsEmpty = missingIsEmpty
    }

    /// Parses the file, handing each data row to `row` as an entry named `#<row>`.
    private func parseRows(_ row: (Entry) throws -> Void) throws {
        guard let data = try location.load(what: what, missingIsEmpty: missingIsEmpty) else { return }
        var splitters: [[UInt8]?] = []
        var number = 0
        let format = try CSVCodec.forEachRecord(data, delimiter: delimiter, what: "\(what): \(location.label)") { record in
            if number == 0 {
                header = record.fields.indices.map { AttributeName(String(decoding: record.field($0), as: UTF8.self)) }
                splitters = header.map { multiValueDelimiters[$0].map { Array($0.utf8) } }
                number = 1
                return
            }
            var entry = Entry(dn: "#\(number)", names: header)
            for column in record.fields.indices {
                let field = record.field(column)
                guard !field.isEmpty else { continue }
                if let splitter = splitters[column] {
                    for part in CSVCodec.split(field, by: splitter) { entry.append(at: column, bytes: part) }
                } else {
                    entry.append(at: column, bytes: field)
                }
            }
            number += 1
            try row(entry)
        }
        hadBOM = format.hadBOM
        lineEnding = format.crlf ? "\r\n" : "\n"
    }

    /// Reads the whole file into the table. Marked loaded only once parsed: a file that fails
    /// to parse is never written back with only the rows before the fault.
    private func load() throws {
        guard !loaded else { return }
        var rows = EntryTable<Entry>()
        try parseRows { entry in rows.append(entry, key: entry.dn) }
        table = rows
        loaded = true
    }

    /// The column names of a CSV file's header (the first record), without reading further.
    public static func header(of data: Data, delimiter: Character = ",", what: String) throws -> [String] {
        var names: [String] = []
        struct Stop: Error {}
        do {
            _ = try CSVCodec.forEachRecord(data, delimiter: delimiter.asciiValue ?? UInt8(ascii: ","), what: what) { record in
                names = record.fields.indices.map { String(decoding: record.field($0), as: UTF8.self) }
                throw Stop()
            }
        } catch is Stop {}
        return names
    }

    /// Set when a job writes secret attributes here: a new file is then made 0600.
    public var holdsSecrets = false

    public func willHoldSecrets() { holdsSecrets = true }

    public var traits: DirectoryTraits {
        DirectoryTraits(stagesChanges: true, namesAreColumns: true, writtenFile: location.writtenPath)
    }

    public func read(_ scope: ReadScope, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        var batch: [Entry] = []
        batch.reserveCapacity(max(pageSize, 1))
        func flush(_ entry: Entry?) throws {
            if let entry { batch.append(entry) }
            if batch.count >= max(pageSize, 1) || (entry == nil && !batch.isEmpty) {
                try page(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if loaded {
            for entry in table.entries { if let entry { try flush(entry) } }
        } else {
            // Stream: a source's rows are not kept; a destination loads its table when first changed.
            try parseRows { try flush($0) }
        }
        try flush(nil)
    }

    public func apply(_ change: DirectoryChange) throws {
        try load()
        _ = try location.writablePath(what: what)
        switch change {
        case .add(let entry):
            try checkColumns(entry)
            let dn = "#\(table.entries.count + 1)"
            var row = entry
            row.dn = dn
            table.append(row, key: dn)
        case .modify(let dn, let modifications):
            guard let position = table.position(of: dn), var entry = table.entries[position] else {
                throw DirectoryError.object(dn: dn, problem: "no row \(dn) in \(location.label)")
            }
            for modification in modifications { entry.apply(modification) }
            try checkColumns(entry)
            table.entries[position] = entry
        case .delete(let dn):
            guard let position = table.position(of: dn), table.entries[position] != nil else {
                throw DirectoryError.object(dn: dn, problem: "no row \(dn) in \(location.label)")
            }
            table.entries[position] = nil
        case .rename:
            throw DirectoryError.unsupported("CSV rows have no DN, so a csv destination cannot rename; remove container and rdn from the job")
        }
        dirty = true
    }

    private func checkColumns(_ entry: Entry) throws {
        for (name, values) in entry.attributes {
            if values.count > 1 && multiValueDelimiters[name] == nil {
                throw DirectoryError.unsupported("\(name) has \(values.count) values, but a CSV column holds one; "
                                     + "give the mapping a delimiter")
            }
            if !header.contains(name) { header.append(name) }
        }
    }

    public var countHint: Int? { loaded ? table.entries.count : nil }

    public func expectAdds(_ count: Int) {
        guard count > 0, (try? load()) != nil else { return }
        table.reserveCapacity(table.entries.count + count)
    }

    public func commit() throws {
        guard dirty else { return }
        let path = try location.writablePath(what: what)
        let joiners = header.map { multiValueDelimiters[$0] }
        var rows: [[Data]] = []
        rows.reserveCapacity(table.entries.count)
        for entry in table.entries {
            guard let entry else { continue }
            rows.append(header.enumerated().map { column, name in
                let values = entry[name]
                if values.count == 1 { return values[0].bytes }
                return Data(values.map(\.bytes).joined(separator: Data((joiners[column] ?? "").utf8)))
            })
        }
        let data = CSVCodec.encode(header: header.map { Data($0.name.utf8) }, rows: rows, delimiter: delimiter,
                                   lineEnding: lineEnding, bom: hadBOM)
        try AtomicFile.write(data, to: path, what: what, newFileMode: holdsSecrets ? 0o600 : 0o644)
        dirty = false
    }
}

extension Entry {
    mutating func apply(_ modification: Modification) {
        let name = modification.attribute
        switch modification.operation {
        case .replace:
            self[name] = modification.values
        case .add:
            var values = self[name]
            var held = Set(values)
            for value in modification.values where held.insert(value).inserted { values.append(value) }
            self[name] = values
        case .delete:
            let dropped = Set(modification.values)
            self[name] = dropped.isEmpty ? [] : self[name].filter { !dropped.contains($0) }
        }
    }
}

/// RFC 4180 reading and writing, on bytes.
enum CSVCodec {
    /// One record: the bytes of all its fields in one reused buffer.
    struct Record {
        var storage: [UInt8] = []
        var fields: [Range<Int>] = []
        func field(_ index: Int) -> ArraySlice<UInt8> { storage[fields[index]] }
    }

    struct Format {
        var hadBOM = false
        var crlf = false
    }

    /// Calls `body` with each record (the header first), skipping blank lines. Checks that every
    /// record has as many fields as the header, and that header names are unique.
    static func forEachRecord(_ data: Data, delimiter: UInt8, what: String,
                              _ body: (Record) throws -> Void) throws -> Format {
        var format = Format()
        var width: Int?
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            let n = bytes.count
            var i = 0
            if n >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
                i = 3
                format.hadBOM = true
            }
            let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
            var record = Record()
            record.storage.reserveCapacity(256)
            var fieldStart = 0
            var line = 1
            var recordLine = 1
            var atFieldStart = true
            func endField() {
                record.fields.append(fieldStart..<record.storage.count)
                fieldStart = record.storage.count
                atFieldStart = true
            }
            /// Where a quoted field spanned lines in this record: a stray or missing quote there
            /// makes the error surface lines later.
            var spanningQuote: (opened: Int, closed: Int)?
            func spanNote() -> String {
                guard let spanningQuote else { return "" }
                return "; the quoted field opened on line \(spanningQuote.opened) runs to line \(spanningQuote.closed): "
                    + "is a quote missing or stray on line \(spanningQuote.opened)?"
            }
            func endRecord() throws {
                endField()
                defer { spanningQuote = nil }
                defer {
                    record.storage.removeAll(keepingCapacity: true)
                    record.fields.removeAll(keepingCapacity: true)
                    fieldStart = 0
                }
                if record.fields.count == 1 && record.fields[0].isEmpty { return } // a blank line
                if let width {
                    if record.fields.count != width {
                        throw DirectoryError.malformed(connection: what, line: recordLine, problem: "\(record.fields.count) fields, but the header has \(width)"
                            + spanNote())
                    }
                } else {
                    width = record.fields.count
                    var seen = Set<String>()
                    for index in record.fields.indices {
                        let text = String(decoding: record.field(index), as: UTF8.self)
                        if text.isEmpty { throw DirectoryError.malformed(connection: what, line: 1, problem: "the header has an empty column name") }
                        if !seen.insert(text.lowercased()).inserted {
                            throw DirectoryError.malformed(connection: what, line: 1, problem: "the header names the column '\(text)' twice")
                        }
                    }
                }
                try body(record)
            }
            while i < n {
                let b = bytes[i]
                if atFieldStart && b == quote {
                    let openLine = line
                    i += 1
                    var closed = false
                    while i < n {
                        let c = bytes[i]
                        if c == quote {
                            if i + 1 < n && bytes[i + 1] == quote {
                                record.storage.append(quote)
                                i += 2
                                continue
                            }
                            i += 1
                            closed = true
                            break
                        }
                        if c == lf { line += 1 }
                        record.storage.append(c)
                        i += 1
                    }
                    guard closed else {
                        throw DirectoryError.malformed(connection: what, line: openLine, problem: "a quoted field is never closed")
                    }
                    if line != openLine { spanningQuote = (openLine, line) }
                    atFieldStart = false
                    if i < n && bytes[i] != delimiter && bytes[i] != cr && bytes[i] != lf {
                        throw DirectoryError.malformed(connection: what, line: line, problem: "unexpected text after a closing quote" + spanNote())
                    }
                    continue
                }
                atFieldStart = false
                if b == delimiter {
                    endField()
                    i += 1
                } else if b == cr || b == lf {
                    if b == cr && i + 1 < n && bytes[i + 1] == lf {
                        format.crlf = true
                        i += 1
                    }
                    i += 1
                    try endRecord()
                    line += 1
                    recordLine = line
                } else {
                    let start = i
                    while i < n, bytes[i] != delimiter, bytes[i] != cr, bytes[i] != lf { i += 1 }
                    record.storage.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
                }
            }
            if !atFieldStart || !record.fields.isEmpty || fieldStart < record.storage.count {
                try endRecord()
            }
        }
        return format
    }

    /// The parts of `field` between `separator`s, trimmed of spaces; empty parts are dropped.
    static func split(_ field: ArraySlice<UInt8>, by separator: [UInt8]) -> [ArraySlice<UInt8>] {
        guard !separator.isEmpty else { return [field] }
        var out: [ArraySlice<UInt8>] = []
        field.withUnsafeBytes { raw in
            Bytes.forEachPart(of: raw, separatedBy: separator) { part in
                out.append(field[field.startIndex + part.lowerBound..<field.startIndex + part.upperBound])
            }
        }
        return out
    }

    static func encode(header: [Data], rows: [[Data]], delimiter: UInt8, lineEnding: String, bom: Bool) -> Data {
        var out = Data()
        out.reserveCapacity(rows.count * 64)
        if bom { out.append(contentsOf: [0xEF, 0xBB, 0xBF]) }
        let newline = Array(lineEnding.utf8)
        func write(_ fields: [Data]) {
            for (index, field) in fields.enumerated() {
                if index > 0 { out.append(delimiter) }
                let needsQuotes = field.contains { $0 == delimiter || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
                    || field.first == 0x20 || field.last == 0x20
                if needsQuotes {
                    out.append(0x22)
                    for byte in field {
                        if byte == 0x22 { out.append(0x22) }
                        out.append(byte)
                    }
                    out.append(0x22)
                } else {
                    out.append(field)
                }
            }
            out.append(contentsOf: newline)
        }
        write(header)
        for row in rows { write(row) }
        return out
    }
}
