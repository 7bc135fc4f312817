import Foundation

/// An LDIF file (RFC 2849, content records) as a directory.
///
/// Reads folded lines, comments, `version: 1`, and base64 (`::`) values and DNs. Writes values
/// that are not SAFE-STRINGs (non-ASCII, leading space, `:` or `<`, trailing space, control
/// characters) as base64, and folds lines at 76 bytes. Change records (`changetype:`) are
/// refused: the file holds entries, not operations.
public final class LDIFDirectory: Directory {
    let location: FileLocation
    let what: String
    let missingIsEmpty: Bool
    private var table = EntryTable()
    private var loaded = false
    private var dirty = false

    public init(_ location: FileLocation, what: String, missingIsEmpty: Bool) {
        self.location = location
        self.what = what
        self.missingIsEmpty = missingIsEmpty
    }

    private func load() throws {
        guard !loaded else { return }
        // The file's bytes are released as soon as they are parsed: they are as large as the entries.
        func parse() throws -> [Entry]? {
            guard let data = try location.load(what: what, missingIsEmpty: missingIsEmpty) else { return nil }
            return try LDIFCodec.parseAll(data, what: "\(what): \(location.label)")
        }
        // Marked loaded only once parsed and indexed: a file that failed never reads as empty.
        guard let entries = try parse() else { loaded = true; return }
        let keys = ParallelParts.map(entries) { DistinguishedName.normalize($0.dn) }
        var table = EntryTable()
        table.reserveCapacity(entries.count)
        for (entry, key) in zip(entries, keys) where table.append(entry, key: key) != nil {
            throw DirectoryError("\(what): \(location.label) holds the entry \(entry.dn) twice")
        }
        self.table = table
        loaded = true
    }

    public func read(_ scope: ReadScope, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        let base = scope.base
        try load()
        let suffix = base.map { DistinguishedName.normalize($0) }
        var batch: [Entry] = []
        batch.reserveCapacity(max(pageSize, 1))
        let below = suffix.map { "," + $0 }
        for (position, entry) in table.entries.enumerated() {
            guard let entry else { continue }
            if let suffix, let below, !suffix.isEmpty {
                let dn = table.keys[position]
                guard dn.hasSuffix(below) || dn == suffix else { continue }
            }
            batch.append(entry)
            if batch.count >= max(pageSize, 1) {
                try page(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try page(batch) }
    }

    public func apply(_ change: DirectoryChange) throws {
        try load()
        _ = try location.writablePath(what: what)
        switch change {
        case .add(let entry):
            // One hash lookup: add, and take it back if the DN is in use.
            let key = DistinguishedName.normalize(entry.dn)
            if let previous = table.append(entry, key: key), table.entries[previous] != nil {
                table.undoAppend(key: key, previous: previous)
                throw DirectoryError("already exists: \(entry.dn)")
            }
        case .modify(let dn, let modifications):
            let key = DistinguishedName.normalize(dn)
            guard let position = table.index[key], var entry = table.entries[position] else {
                throw DirectoryError("no such object: \(dn)")
            }
            for modification in modifications { entry.apply(modification) }
            table.entries[position] = entry
        case .delete(let dn):
            let key = DistinguishedName.normalize(dn)
            guard let position = table.index[key], table.entries[position] != nil else {
                throw DirectoryError("no such object: \(dn)")
            }
            table.entries[position] = nil
            table.index[key] = nil
        case .rename(let dn, let newRDN, let newSuperior):
            let key = DistinguishedName.normalize(dn)
            guard let position = table.index[key], var entry = table.entries[position] else {
                throw DirectoryError("no such object: \(dn)")
            }
            let parent = newSuperior ?? DistinguishedName.split(dn).parent
            let newDN = parent.isEmpty ? newRDN : "\(newRDN),\(parent)"
            let newKey = DistinguishedName.normalize(newDN)
            if newKey != key, let other = table.index[newKey], table.entries[other] != nil {
                throw DirectoryError("already exists: \(newDN)")
            }
            entry.dn = newDN
            table.entries[position] = entry
            table.keys[position] = newKey
            table.index[key] = nil
            table.index[newKey] = position
        }
        dirty = true
    }

    public var stagesChanges: Bool { true }

    public var countHint: Int? { loaded ? table.entries.count : nil }

    public func expectAdds(_ count: Int) {
        guard count > 0, (try? load()) != nil else { return }
        table.reserveCapacity(table.entries.count + count)
    }

    public func commit() throws {
        guard dirty else { return }
        let path = try location.writablePath(what: what)
        let entries = table.entries
        try AtomicFile.write(to: path, what: what) { sink in
            // Encode windows of entries on all cores, and write them in order.
            let header = Array("version: 1\n".utf8)
            header.withUnsafeBytes(sink)
            let window = 65_536
            for start in stride(from: 0, to: entries.count, by: window) {
                let slice = Array(entries[start..<min(start + window, entries.count)].lazy.compactMap { $0 })
                let parts = max(1, ProcessInfo.processInfo.activeProcessorCount * 2)
                let ranges = (0..<parts).map { ($0 * slice.count / parts, ($0 + 1) * slice.count / parts) }
                let buffers = ParallelParts.map(ranges) { from, to in LDIFCodec.encodeBody(slice[from..<to]) }
                for buffer in buffers { buffer.withUnsafeBytes(sink) }
            }
        }
        dirty = false
    }
}

/// RFC 2849 content records, on bytes.
public enum LDIFCodec {
    /// Parses content records. `what` names the file in errors.
    public static func parse(_ data: Data, what: String) throws -> [Entry] {
        var entries: [Entry] = []
        try forEachEntry(data, what: what) { entries.append($0) }
        return entries
    }

    /// Streams content records: lines are unfolded as they are read, comments skipped, and each
    /// value is added to its entry straight from the file's bytes.
    static func forEachEntry(_ data: Data, what: String, _ body: (Entry) throws -> Void) throws {
        try data.withUnsafeBytes { raw in
            try forEachEntry(raw.bindMemory(to: UInt8.self), firstLine: 1, expectVersion: true, what: what, body)
        }
    }

    /// Parses all entries, splitting a large file at record boundaries (a line break followed by
    /// an empty line) and parsing the parts on all cores. Entries keep the file's order; errors
    /// name the file's own line numbers.
    static func parseAll(_ data: Data, what: String) throws -> [Entry] {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [Entry] in
            let bytes = raw.bindMemory(to: UInt8.self)
            let parts = ProcessInfo.processInfo.activeProcessorCount * 2
            guard bytes.count > 1 << 20, parts > 1 else {
                var out: [Entry] = []
                try forEachEntry(bytes, firstLine: 1, expectVersion: true, what: what) { out.append($0) }
                return out
            }
            // Cut points: after "\n\n" (or "\n\r\n") near each part's share of the file.
            var cuts = [0]
            for part in 1..<parts {
                var i = max(bytes.count * part / parts, cuts[cuts.count - 1])
                while i + 1 < bytes.count, !(bytes[i] == 0x0A && (bytes[i + 1] == 0x0A
                        || (bytes[i + 1] == 0x0D && i + 2 < bytes.count && bytes[i + 2] == 0x0A))) { i += 1 }
                guard i + 1 < bytes.count else { break }
                cuts.append(i + 1)
            }
            cuts.append(bytes.count)
            // Line numbers where each part starts.
            var firstLines = [1]
            for index in 1..<cuts.count - 1 {
                var lines = 0
                for byte in UnsafeBufferPointer(rebasing: bytes[cuts[index - 1]..<cuts[index]]) where byte == 0x0A { lines += 1 }
                firstLines.append(firstLines[index - 1] + lines)
            }
            let ranges = (0..<cuts.count - 1).map { (cuts[$0], cuts[$0 + 1], firstLines[$0]) }
            let base = UInt(bitPattern: bytes.baseAddress), total = bytes.count
            let results = ParallelParts.map(ranges) { start, end, line -> Result<[Entry], DirectoryError> in
                guard let pointer = UnsafePointer<UInt8>(bitPattern: base) else { return .success([]) }
                let whole = UnsafeBufferPointer(start: pointer, count: total)
                var out: [Entry] = []
                do {
                    try forEachEntry(UnsafeBufferPointer(rebasing: whole[start..<end]), firstLine: line,
                                     expectVersion: start == 0, what: what) { out.append($0) }
                    return .success(out)
                } catch let error as DirectoryError {
                    return .failure(error)
                } catch {
                    return .failure(DirectoryError("\(what): \(error)"))
                }
            }
            var all: [Entry] = []
            all.reserveCapacity(results.reduce(0) { $0 + ((try? $1.get().count) ?? 0) })
            for result in results { all += try result.get() }
            return all
        }
    }

    static func forEachEntry(_ bytes: UnsafeBufferPointer<UInt8>, firstLine: Int, expectVersion: Bool, what: String,
                             _ body: (Entry) throws -> Void) throws {
        var reader = LDIFReader(bytes: bytes, line: firstLine, sawRecord: !expectVersion, what: what)
        try reader.run(body)
    }

    /// True when `bytes` may be written as-is (RFC 2849 SAFE-STRING, and no trailing space).
    static func isSafe(_ bytes: some Collection<UInt8>) -> Bool {
        guard let first = bytes.first else { return true }
        if first == 0x20 || first == UInt8(ascii: ":") || first == UInt8(ascii: "<") { return false }
        var last = first
        for byte in bytes {
            if byte == 0 || byte == 0x0A || byte == 0x0D || byte > 0x7F { return false }
            last = byte
        }
        return last != 0x20
    }

    /// Writes entries as LDIF, beginning with `version: 1`.
    public static func encode(_ entries: [Entry]) -> Data {
        var out = Data()
        encode(entries, to: { out.append(contentsOf: $0) })
        return out
    }

    /// The records of `entries`, without the `version` line.
    static func encodeBody(_ entries: ArraySlice<Entry>) -> [UInt8] {
        var writer = LDIFWriter(capacity: entries.count * 320)
        for entry in entries { writer.write(entry) }
        return writer.out
    }

    /// Writes entries as LDIF to `sink`, in chunks.
    static func encode(_ entries: some Sequence<Entry>, versionLine: Bool = true, to sink: (UnsafeRawBufferPointer) -> Void) {
        var writer = LDIFWriter()
        if versionLine { writer.out.append(contentsOf: "version: 1\n".utf8) }
        for entry in entries {
            writer.write(entry)
            if writer.out.count >= 1 << 16 {
                writer.out.withUnsafeBytes(sink)
                writer.out.removeAll(keepingCapacity: true)
            }
        }
        writer.out.withUnsafeBytes(sink)
    }
}

/// Encodes entries as LDIF records into `out`.
struct LDIFWriter {
    var out: [UInt8] = []
    /// The name list of the last entry written, and its names as bytes, by position: entries
    /// read or mapped together share one list, so names are converted once per list.
    private var lastNames: Entry?
    private var nameBytes: [[UInt8]] = []
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    init(capacity: Int = 1 << 17) { out.reserveCapacity(capacity) }

    mutating func write(_ entry: Entry) {
        if lastNames == nil || !entry.sharesNames(with: lastNames!) {
            nameBytes = (0..<entry.nameCount).map { Array(entry.name(at: $0).name.utf8) }
            lastNames = entry
        }
        out.append(0x0A)
        var dn = entry.dn
        dn.withUTF8 { line(Self.dnName, UnsafeRawBufferPointer($0)) }
        entry.forEachRawValue { index, value in
            nameBytes[index].withUnsafeBytes { name in line(name, value) }
        }
    }

    private static let dnName = Array("dn".utf8)

    private mutating func line(_ name: [UInt8], _ value: UnsafeRawBufferPointer) {
        name.withUnsafeBytes { line($0, value) }
    }

    /// `name: value` (or `name:: base64` when the value is not safe), folded at 76 bytes.
    private mutating func line(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        let lineStart = out.count
        out.append(contentsOf: name)
        if LDIFCodec.isSafe(value) {
            out.append(UInt8(ascii: ":"))
            if !value.isEmpty { out.append(0x20); out.append(contentsOf: value) }
        } else {
            out.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: ":"), 0x20])
            base64(value)
        }
        // Fold at 76 bytes; only ASCII is ever written, so no character is split.
        if out.count - lineStart > 76 {
            let line = Array(out[lineStart...])
            out.removeSubrange(lineStart...)
            out.append(contentsOf: line[0..<76])
            var i = 76
            while i < line.count {
                out.append(0x0A)
                out.append(0x20)
                let end = min(i + 75, line.count)
                out.append(contentsOf: line[i..<end])
                i = end
            }
        }
        out.append(0x0A)
    }

    /// RFC 4648 base64, with padding.
    private mutating func base64(_ value: UnsafeRawBufferPointer) {
        let table = Self.alphabet
        var i = 0
        while i + 3 <= value.count {
            let n = UInt32(value[i]) << 16 | UInt32(value[i + 1]) << 8 | UInt32(value[i + 2])
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)])
            out.append(table[Int(n >> 6 & 63)]); out.append(table[Int(n & 63)])
            i += 3
        }
        let rest = value.count - i
        if rest == 1 {
            let n = UInt32(value[i]) << 16
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)])
            out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "="))
        } else if rest == 2 {
            let n = UInt32(value[i]) << 16 | UInt32(value[i + 1]) << 8
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)])
            out.append(table[Int(n >> 6 & 63)]); out.append(UInt8(ascii: "="))
        }
    }
}

/// The LDIF parser's state. Values are added to entries straight from the file's bytes; a line is
/// copied only when it is folded.
struct LDIFReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var line: Int
    var sawRecord: Bool
    let what: String
    var position = 0
    var entry = Entry(dn: "")
    var inEntry = false
    /// Attribute names seen so far, shared by the entries.
    var schema = NameSpellings()
    var folded: [UInt8] = []
    /// The size of the last entry, to reserve for the next.
    var lastSize = (bytes: 0, values: 0)

    init(bytes: UnsafeBufferPointer<UInt8>, line: Int, sawRecord: Bool, what: String) {
        self.bytes = bytes
        self.line = line
        self.sawRecord = sawRecord
        self.what = what
    }

    /// The end of the physical line starting at `start` (the index of its line feed, or the end).
    func lineEnd(from start: Int) -> Int {
        guard start < bytes.count, let base = bytes.baseAddress else { return bytes.count }
        if let found = memchr(base + start, 0x0A, bytes.count - start) {
            return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
        }
        return bytes.count
    }

    mutating func run(_ body: (Entry) throws -> Void) throws {
        while position < bytes.count {
            var end = lineEnd(from: position)
            var contentEnd = end
            if contentEnd > position, bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let lineNumber = line
            if contentEnd == position {
                // An empty line ends the record.
                if inEntry { try emit() }
            } else if bytes[position] == UInt8(ascii: "#") {
                // A comment, with any continuation lines.
                while end + 1 < bytes.count, bytes[end + 1] == 0x20 { line += 1; end = lineEnd(from: end + 1) }
            } else if bytes[position] == 0x20 {
                throw DirectoryError("\(what): line \(lineNumber): a continuation line follows no line")
            } else if end + 1 < bytes.count, bytes[end + 1] == 0x20 {
                // A folded line: join its parts, then read it.
                folded.removeAll(keepingCapacity: true)
                folded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position..<contentEnd]))
                while end + 1 < bytes.count, bytes[end + 1] == 0x20 {
                    let next = end + 2
                    end = lineEnd(from: next)
                    var nextEnd = end
                    if nextEnd > next, bytes[nextEnd - 1] == 0x0D { nextEnd -= 1 }
                    folded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[next..<max(next, nextEnd)]))
                    line += 1
                }
                let copy = folded
                try copy.withUnsafeBufferPointer { try logicalLine($0, number: lineNumber) }
            } else {
                try logicalLine(UnsafeBufferPointer(rebasing: bytes[position..<contentEnd]), number: lineNumber)
            }
            line += 1
            position = end + 1
        }
        if inEntry { try emit() }

        func emit() throws {
            lastSize = (entry.byteCount + 16, entry.valueCount + 1)
            try body(entry)
            inEntry = false
        }
    }

    mutating func logicalLine(_ text: UnsafeBufferPointer<UInt8>, number: Int) throws {
        guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else {
            throw DirectoryError("\(what): line \(number): expected 'name: value'")
        }
        let nameBytes = UnsafeBufferPointer(rebasing: text[..<colon])
        var valueStart = colon + 1
        var base64 = false
        if valueStart < text.count, text[valueStart] == UInt8(ascii: ":") {
            base64 = true
            valueStart += 1
        } else if valueStart < text.count, text[valueStart] == UInt8(ascii: "<") {
            throw DirectoryError("\(what): line \(number): URL values (\(String(decoding: nameBytes, as: UTF8.self)):<) are not supported")
        }
        while valueStart < text.count, text[valueStart] == 0x20 { valueStart += 1 }
        let raw = UnsafeBufferPointer(rebasing: text[valueStart...])
        var decoded: Data?
        if base64 {
            guard let value = Data(base64Encoded: Data(buffer: raw)) else {
                throw DirectoryError("\(what): line \(number): the base64 value of \(String(decoding: nameBytes, as: UTF8.self)) is not valid")
            }
            decoded = value
        }
        if !inEntry {
            let lower = String(decoding: nameBytes, as: UTF8.self).lowercased()
            if !sawRecord && lower == "version" {
                sawRecord = true
                return
            }
            guard lower == "dn" else {
                throw DirectoryError("\(what): line \(number): a record must start with dn:, found \(String(decoding: nameBytes, as: UTF8.self)):")
            }
            guard let dn = decoded.map({ String(data: $0, encoding: .utf8) }) ?? String(validating: raw, as: UTF8.self) else {
                throw DirectoryError("\(what): line \(number): the DN is not valid UTF-8")
            }
            // Sized like the entry before: records of one file tend to be alike.
            entry = Entry(dn: dn, names: schema.names, reservingBytes: lastSize.bytes, values: lastSize.values)
            inEntry = true
            sawRecord = true
            return
        }
        let index = schema.index(of: UnsafeRawBufferPointer(nameBytes))
        let name = schema.names[index]
        if nameBytes.count == 10, name.name.lowercased() == "changetype" {
            throw DirectoryError("\(what): line \(number): change records (changetype) are not supported; "
                                 + "the file must hold entries")
        }
        if index >= entry.nameCount {
            // A name first seen inside this entry: add it (the index matches the shared list).
            if let decoded { entry.append(name, value: Value(decoded)) } else { entry.append(name, bytes: raw) }
        } else if let decoded {
            decoded.withUnsafeBytes { entry.append(at: index, bytes: $0) }
        } else {
            entry.append(at: index, bytes: UnsafeRawBufferPointer(raw))
        }
    }
}
