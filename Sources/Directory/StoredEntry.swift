import Foundation

/// A destination object as its directory holds it, for planning: a parsed entry, or (LDIF) the
/// record's bytes in the file, parsed only when the object has to change.
///
/// A job compares a million objects on a rerun and changes few of them. An LDIF destination
/// hands over its records unparsed: the job asks for the key, checks whether the record already
/// reads as the job would write it (`holdsValues(of:)`), and parses only the records that differ.
public struct StoredEntry: Sendable {
    /// The DN as the directory spells it.
    public let dn: String
    let form: Form

    enum Form: Sendable {
        case entry(Entry)
        /// The record at a position of a scanned file's records.
        case record(RecordFile, Int)
    }

    public init(_ entry: Entry) {
        dn = entry.dn
        form = .entry(entry)
    }

    init(_ file: RecordFile, _ position: Int) {
        dn = file.spans[position].dn
        form = .record(file, position)
    }

    /// The whole entry, parsed from its record when it is one.
    public func entry() throws -> Entry {
        switch form {
        case .entry(let entry): entry
        case .record(let file, let position): try file.parse(position)
        }
    }

    /// The first value of `name` (ASCII case-insensitive) as a key (`Value.key`), or nil when
    /// the object has none: `Entry.firstValue(at: index(of:))`, without parsing a record.
    public func firstValueText(of name: AttributeName, hint: Int = 0) -> String? {
        func text(_ entry: Entry) -> String? {
            guard let index = entry.index(of: name, hint: hint), let value = entry.firstValue(at: index) else { return nil }
            return Value.key(value)
        }
        switch form {
        case .entry(let entry):
            return text(entry)
        case .record(let file, let position):
            switch file.firstValue(of: name, at: position) {
            case .absent: return nil
            case .found(let value): return Value.key(value)
            case .encoded:
                // Base64, folded or CRLF: the parsed entry decides.
                return (try? file.parse(position)).flatMap(text)
            }
        }
    }

    /// True when this is a record whose lines after the DN are byte for byte the lines `entry`'s
    /// values would be written as: then the object holds exactly those values, in that order.
    /// False says nothing (a parsed entry always answers false).
    public func holdsValues(of entry: Entry) -> Bool {
        guard case .record(let file, let position) = form else { return false }
        let span = file.spans[position]
        return LDIFWriter.matches(entry, file.bytes.bytes(span.bodyStart..<span.end))
    }
}

/// Where one LDIF record lies in its file, as the scan found it.
struct RecordSpan: Sendable {
    /// The record's first byte (its `dn:` line), the first byte after the DN line, and the byte
    /// after its last line (its line feed included, when it has one).
    var start: Int, bodyStart: Int, end: Int
    /// The line number of the `dn:` line.
    var line: Int
    var dn: String
}

/// A scanned LDIF file: its bytes, and where each record lies in them. Never changed once made.
final class RecordFile: Sendable {
    let bytes: SharedBytes
    let spans: [RecordSpan]
    /// Names the connection and the file, for errors.
    let what: String

    init(bytes: SharedBytes, spans: [RecordSpan], what: String) {
        self.bytes = bytes
        self.spans = spans
        self.what = what
    }

    /// The entry of the record at `position`, parsed on its own.
    func parse(_ position: Int, names: [AttributeName] = []) throws -> Entry {
        var reader = LDIFReader(bytes: bytes.buffer, line: spans[position].line, sawRecord: true, what: what)
        reader.schema = NameSpellings(names: names)
        return try reader.parseRecord(spans[position], in: bytes.buffer)
    }

    func record(_ position: Int) -> UnsafeRawBufferPointer {
        bytes.bytes(spans[position].start..<spans[position].end)
    }

    enum Lookup {
        case absent
        case found(UnsafeRawBufferPointer)
        /// The first line of that name is base64, folded or ends in CR: it has to be parsed.
        case encoded
    }

    /// The first value of `name`, found in the record's lines without parsing them. A comment or
    /// a continuation line never starts with a name, so scanning lines is enough, unless a name
    /// is itself folded (then the record is parsed).
    func firstValue(of name: AttributeName, at position: Int) -> Lookup {
        let span = spans[position]
        let record = bytes.bytes(span.bodyStart..<span.end)
        guard let base = record.baseAddress else { return .absent }
        var want = name.name
        return want.withUTF8 { wanted -> Lookup in
            var position = 0
            while position < record.count {
                let rest = record.count - position
                let end = memchr(base + position, 0x0A, rest).map { base.distance(to: UnsafeRawPointer($0)) } ?? record.count
                let line = UnsafeRawBufferPointer(rebasing: record[position..<end])
                if line.count > wanted.count, line[wanted.count] == UInt8(ascii: ":"), Self.sameFolded(line, wanted) {
                    var valueStart = wanted.count + 1
                    let folded = end + 1 < record.count && record[end + 1] == 0x20
                    if folded || line.last == 0x0D || (valueStart < line.count && line[valueStart] == UInt8(ascii: ":")) {
                        return .encoded
                    }
                    while valueStart < line.count, line[valueStart] == 0x20 { valueStart += 1 }
                    return .found(UnsafeRawBufferPointer(rebasing: line[valueStart...]))
                }
                // A name may itself be folded: a line continued with no colon in it.
                if end + 1 < record.count, record[end + 1] == 0x20, line.first != UInt8(ascii: "#"), line.first != 0x20,
                   !line.contains(UInt8(ascii: ":")) {
                    return .encoded
                }
                position = end + 1
            }
            return .absent
        }
    }

    /// Whether `line` starts with `name`, ignoring ASCII case.
    private static func sameFolded(_ line: UnsafeRawBufferPointer, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        for i in 0..<name.count where line[i] != name[i] {
            let a = line[i] | 0x20
            guard a == name[i] | 0x20, a >= 0x61, a <= 0x7A else { return false }
        }
        return true
    }
}
