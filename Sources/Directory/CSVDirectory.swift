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
    private var table = EntryTable()
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

    private func load() throws {
        guard !loaded else { return }
        loaded = true
        guard let data = try location.load(what: what, missingIsEmpty: missingIsEmpty) else { return }
        let parsed = try CSVCodec.parse(data, delimiter: delimiter, what: "\(what): \(location.label)")
        hadBOM = parsed.hadBOM
        lineEnding = parsed.crlf ? "\r\n" : "\n"
        header = parsed.header.map { AttributeName(String(decoding: $0, as: UTF8.self)) }
        let splitters: [[UInt8]?] = header.map { multiValueDelimiters[$0].map { Array($0.utf8) } }
        table.entries.reserveCapacity(parsed.rows.count)
        for (number, fields) in parsed.rows.enumerated() {
            var attributes: [(AttributeName, [Value])] = []
            attributes.reserveCapacity(fields.count)
            for (column, field) in fields.enumerated() where !field.isEmpty {
                if let splitter = splitters[column] {
                    let values = CSVCodec.split(field, by: splitter).map { Value(Data($0)) }
                    if !values.isEmpty { attributes.append((header[column], values)) }
                } else {
                    attributes.append((header[column], [Value(Data(field))]))
                }
            }
            let dn = "#\(number + 1)"
            table.append(Entry(dn: dn, attributes: attributes), key: dn)
        }
    }

    public func read(base: String?, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        try load()
        var start = 0
        let entries = table.live
        while start < entries.count {
            let end = min(start + max(pageSize, 1), entries.count)
            try page(Array(entries[start..<end]))
            start = end
        }
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
            guard let position = table.index[dn], var entry = table.entries[position] else {
                throw DirectoryError("no row \(dn) in \(location.label)")
            }
            for modification in modifications { entry.apply(modification) }
            try checkColumns(entry)
            table.entries[position] = entry
        case .delete(let dn):
            guard let position = table.index[dn], table.entries[position] != nil else {
                throw DirectoryError("no row \(dn) in \(location.label)")
            }
            table.entries[position] = nil
        case .rename:
            throw DirectoryError("CSV rows have no DN, so a csv destination cannot rename; remove container and rdn from the job")
        }
        dirty = true
    }

    private func checkColumns(_ entry: Entry) throws {
        for (name, values) in entry.attributes {
            if values.count > 1 && multiValueDelimiters[name] == nil {
                throw DirectoryError("\(name) has \(values.count) values, but a CSV column holds one; "
                                     + "give the mapping a delimiter")
            }
            if !header.contains(name) { header.append(name) }
        }
    }

    public var stagesChanges: Bool { true }

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
        try AtomicFile.write(data, to: path, what: what)
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
            self[name] = self[name] + modification.values.filter { !self[name].contains($0) }
        case .delete:
            self[name] = modification.values.isEmpty ? [] : self[name].filter { !modification.values.contains($0) }
        }
    }
}

/// RFC 4180 reading and writing, on bytes.
enum CSVCodec {
    struct Parsed {
        var header: [[UInt8]]
        var rows: [[[UInt8]]]
        var hadBOM: Bool
        var crlf: Bool
    }

    static func parse(_ data: Data, delimiter: UInt8, what: String) throws -> Parsed {
        let bytes = [UInt8](data)
        var i = 0
        var hadBOM = false
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            i = 3
            hadBOM = true
        }
        let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        var records: [[[UInt8]]] = []
        var record: [[UInt8]] = []
        var field: [UInt8] = []
        var line = 1
        var recordLine = 1
        var sawCRLF = false
        var atFieldStart = true
        let n = bytes.count
        func endField() {
            record.append(field)
            field = []
            atFieldStart = true
        }
        while i < n {
            let b = bytes[i]
            if atFieldStart && b == quote {
                // A quoted field: runs to the closing quote; "" is one quote.
                let openLine = line
                i += 1
                var closed = false
                while i < n {
                    let c = bytes[i]
                    if c == quote {
                        if i + 1 < n && bytes[i + 1] == quote {
                            field.append(quote)
                            i += 2
                            continue
                        }
                        i += 1
                        closed = true
                        break
                    }
                    if c == lf { line += 1 }
                    field.append(c)
                    i += 1
                }
                guard closed else {
                    throw DirectoryError("\(what): line \(openLine): a quoted field is never closed")
                }
                atFieldStart = false
                if i < n && bytes[i] != delimiter && bytes[i] != cr && bytes[i] != lf {
                    throw DirectoryError("\(what): line \(line): unexpected text after a closing quote")
                }
                continue
            }
            atFieldStart = false
            if b == delimiter {
                endField()
                i += 1
            } else if b == cr || b == lf {
                if b == cr && i + 1 < n && bytes[i + 1] == lf {
                    sawCRLF = true
                    i += 1
                }
                i += 1
                endField()
                if !(record.count == 1 && record[0].isEmpty) { // skip blank lines
                    records.append(record)
                    try checkWidth(records, what: what, line: recordLine)
                }
                record = []
                line += 1
                recordLine = line
            } else {
                // Fast path: copy a run of plain bytes.
                let start = i
                while i < n, bytes[i] != delimiter, bytes[i] != cr, bytes[i] != lf { i += 1 }
                field.append(contentsOf: bytes[start..<i])
            }
        }
        if !atFieldStart || !record.isEmpty || !field.isEmpty {
            endField()
            if !(record.count == 1 && record[0].isEmpty) {
                records.append(record)
                try checkWidth(records, what: what, line: recordLine)
            }
        }
        guard let header = records.first else { return Parsed(header: [], rows: [], hadBOM: hadBOM, crlf: false) }
        var seen = Set<String>()
        for name in header {
            let text = String(decoding: name, as: UTF8.self)
            if text.isEmpty { throw DirectoryError("\(what): line 1: the header has an empty column name") }
            if !seen.insert(text.lowercased()).inserted {
                throw DirectoryError("\(what): line 1: the header names the column '\(text)' twice")
            }
        }
        return Parsed(header: header, rows: Array(records.dropFirst()), hadBOM: hadBOM, crlf: sawCRLF)
    }

    private static func checkWidth(_ records: [[[UInt8]]], what: String, line: Int) throws {
        guard records.count > 1, let header = records.first, let last = records.last, last.count != header.count else { return }
        throw DirectoryError("\(what): line \(line): \(last.count) fields, but the header has \(header.count)")
    }

    static func split(_ field: [UInt8], by separator: [UInt8]) -> [[UInt8]] {
        guard !separator.isEmpty else { return [field] }
        var out: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        while i < field.count {
            if field[i] == separator[0], i + separator.count <= field.count,
               Array(field[i..<i + separator.count]) == separator {
                out.append(current)
                current = []
                i += separator.count
            } else {
                current.append(field[i])
                i += 1
            }
        }
        out.append(current)
        return out.map { trimSpaces($0) }.filter { !$0.isEmpty }
    }

    private static func trimSpaces(_ bytes: [UInt8]) -> [UInt8] {
        var start = 0, end = bytes.count
        while start < end, bytes[start] == 0x20 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 { end -= 1 }
        return Array(bytes[start..<end])
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
