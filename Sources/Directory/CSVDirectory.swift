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

    /// Parses the file, handing each data row to `row` as an entry named `#<row>`. After the
    /// header, a large file is cut at record boundaries and its parts are parsed on all cores,
    /// a window at a time; rows still arrive in file order.
    private func parseRows(_ row: (Entry) throws -> Void) throws {
        guard let data = try location.load(what: what, missingIsEmpty: missingIsEmpty) else { return }
        let label = "\(what): \(location.label)"
        let delimiter = self.delimiter
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            // The header is the first record that is not a blank line.
            var headerEnd = 0
            var headerFields: [AttributeName] = []
            var headerFormat = CSVCodec.Format()
            while headerFields.isEmpty && headerEnd < bytes.count {
                headerEnd += CSVCodec.firstRecordEnd(UnsafeBufferPointer(rebasing: bytes[headerEnd...]))
                headerFormat = try CSVCodec.forEachRecord(UnsafeBufferPointer(rebasing: bytes[0..<headerEnd]),
                                                          delimiter: delimiter, what: label, firstLine: 1, width: nil) { record in
                    headerFields = record.fields.indices.map { AttributeName(String(decoding: record.field($0), as: UTF8.self)) }
                }
            }
            hadBOM = headerFormat.hadBOM
            lineEnding = headerFormat.crlf ? "\r\n" : "\n"
            guard !headerFields.isEmpty else { return }
            header = headerFields
            let names = headerFields
            let splitters: [[UInt8]?] = names.map { multiValueDelimiters[$0].map { Array($0.utf8) } }
            let headerLines = UnsafeBufferPointer(rebasing: bytes[0..<headerEnd]).reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            let parts = CSVCodec.parts(bytes, from: headerEnd, firstLine: 1 + headerLines, size: 1 << 20)
            let base = UInt(bitPattern: bytes.baseAddress), total = bytes.count
            let window = max(1, ProcessInfo.processInfo.activeProcessorCount * 2)
            var number = 1
            for windowStart in stride(from: 0, to: parts.count, by: window) {
                let group = Array(parts[windowStart..<min(windowStart + window, parts.count)])
                let parsed = ParallelParts.map(group) { part -> Result<[Entry], DirectoryError> in
                    guard let pointer = UnsafePointer<UInt8>(bitPattern: base) else { return .success([]) }
                    let whole = UnsafeBufferPointer(start: pointer, count: total)
                    var entries: [Entry] = []
                    do {
                        _ = try CSVCodec.forEachRecord(UnsafeBufferPointer(rebasing: whole[part.start..<part.end]),
                                                       delimiter: delimiter, what: label, firstLine: part.line,
                                                       width: names.count) { record in
                            var entry = Entry(dn: "", names: names)
                            for column in record.fields.indices {
                                let field = record.field(column)
                                guard !field.isEmpty else { continue }
                                if let splitter = splitters[column] {
                                    for piece in CSVCodec.split(field, by: splitter) { entry.append(at: column, bytes: piece) }
                                } else {
                                    entry.append(at: column, bytes: field)
                                }
                            }
                            entries.append(entry)
                        }
                        return .success(entries)
                    } catch let error as DirectoryError {
                        return .failure(error)
                    } catch {
                        return .failure(DirectoryError("\(label): \(error)"))
                    }
                }
                for result in parsed {
                    for var entry in try result.get() {
                        entry.dn = "#\(number)"
                        number += 1
                        try row(entry)
                    }
                }
            }
        }
    }

    private func load() throws {
        guard !loaded else { return }
        loaded = true
        try parseRows { entry in table.append(entry, key: entry.dn) }
    }

    public func read(base: String?, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
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
        try data.withUnsafeBytes { raw in
            try forEachRecord(raw.bindMemory(to: UInt8.self), delimiter: delimiter, what: what, firstLine: 1,
                              width: nil, body)
        }
    }

    /// Like `forEachRecord(_:…)` on part of a file: lines count from `firstLine`, and when `width`
    /// is given the part has no header and every record must have that many fields.
    static func forEachRecord(_ bytes: UnsafeBufferPointer<UInt8>, delimiter: UInt8, what: String, firstLine: Int,
                              width knownWidth: Int?, _ body: (Record) throws -> Void) throws -> Format {
        var format = Format()
        var width = knownWidth
        do {
            let n = bytes.count
            var i = 0
            if knownWidth == nil, n >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
                i = 3
                format.hadBOM = true
            }
            let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
            var record = Record()
            record.storage.reserveCapacity(256)
            var fieldStart = 0
            var line = firstLine
            var recordLine = firstLine
            var atFieldStart = true
            func endField() {
                record.fields.append(fieldStart..<record.storage.count)
                fieldStart = record.storage.count
                atFieldStart = true
            }
            func endRecord() throws {
                endField()
                defer {
                    record.storage.removeAll(keepingCapacity: true)
                    record.fields.removeAll(keepingCapacity: true)
                    fieldStart = 0
                }
                if record.fields.count == 1 && record.fields[0].isEmpty { return } // a blank line
                if let width {
                    if record.fields.count != width {
                        throw DirectoryError("\(what): line \(recordLine): \(record.fields.count) fields, but the header has \(width)")
                    }
                } else {
                    width = record.fields.count
                    var seen = Set<String>()
                    for index in record.fields.indices {
                        let text = String(decoding: record.field(index), as: UTF8.self)
                        if text.isEmpty { throw DirectoryError("\(what): line 1: the header has an empty column name") }
                        if !seen.insert(text.lowercased()).inserted {
                            throw DirectoryError("\(what): line 1: the header names the column '\(text)' twice")
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

    /// Cuts `bytes[start...]` into parts of about `size` bytes that end at a record boundary (a
    /// line feed outside quotes), with the line each part starts on.
    static func parts(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, firstLine: Int,
                      size: Int) -> [(start: Int, end: Int, line: Int)] {
        var parts: [(start: Int, end: Int, line: Int)] = []
        var inQuotes = false
        var partStart = start, partLine = firstLine, lines = 0
        var i = start
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == 0x22 {
                inQuotes.toggle() // "" inside quotes toggles twice
            } else if b == 0x0A {
                lines += 1
                if !inQuotes && i + 1 - partStart >= size {
                    parts.append((partStart, i + 1, partLine))
                    partStart = i + 1
                    partLine += lines
                    lines = 0
                }
            }
            i += 1
        }
        if partStart < n { parts.append((partStart, n, partLine)) }
        return parts
    }

    /// The end of the first record (after its line feed), honouring quotes; `bytes.count` if none.
    static func firstRecordEnd(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var inQuotes = false
        for i in 0..<bytes.count {
            if bytes[i] == 0x22 { inQuotes.toggle() } else if bytes[i] == 0x0A && !inQuotes { return i + 1 }
        }
        return bytes.count
    }

    /// The parts of `field` between `separator`s, trimmed of spaces; empty parts are dropped.
    static func split(_ field: ArraySlice<UInt8>, by separator: [UInt8]) -> [ArraySlice<UInt8>] {
        guard let first = separator.first else { return [field] }
        var out: [ArraySlice<UInt8>] = []
        var partStart = field.startIndex
        var i = field.startIndex
        func emit(_ end: Int) {
            var a = partStart, b = end
            while a < b, field[a] == 0x20 { a += 1 }
            while b > a, field[b - 1] == 0x20 { b -= 1 }
            if a < b { out.append(field[a..<b]) }
        }
        while i < field.endIndex {
            if field[i] == first, i + separator.count <= field.endIndex, field[i..<i + separator.count].elementsEqual(separator) {
                emit(i)
                i += separator.count
                partStart = i
            } else {
                i += 1
            }
        }
        emit(field.endIndex)
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
