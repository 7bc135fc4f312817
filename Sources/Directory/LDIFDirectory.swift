import Concurrency
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
    /// The file as read: records nothing changed are kept as its bytes, and parsed only when
    /// read as entries or changed.
    private var file: RecordFile?
    private var table = EntryTable<Item>()
    /// The attribute names of the entries parsed so far, shared by the next ones.
    private var names: [AttributeName] = []
    private var loaded = false
    private var dirty = false
    /// The DN index, while it is built (see `load`).
    private var pendingIndex: Background<KeyIndex>?

    enum Item: Sendable {
        /// The record at this position of `file`, unchanged.
        case record(Int)
        case entry(Entry)
    }

    public init(_ location: FileLocation, what: String, missingIsEmpty: Bool) {
        self.location = location
        self.what = what
        self.missingIsEmpty = missingIsEmpty
    }

    private var label: String { "\(what): \(location.label)" }

    /// Reads and checks the whole file (on all cores), and indexes its records by DN. Records
    /// are not parsed into entries until they are needed.
    private func load() throws {
        guard !loaded else { return }
        // Marked loaded only once checked and indexed: a file that failed never reads as empty.
        guard let bytes = try location.loadShared(what: what, missingIsEmpty: missingIsEmpty) else {
            loaded = true
            return
        }
        let spans = try LDIFCodec.scanAll(bytes, what: label)
        let keyed = ParallelParts.map(spans) { span in
            let key = DistinguishedName.normalize(span.dn)
            return (key, EntryTable<Item>.hash(key))
        }
        let keys = keyed.map(\.0), hashes = keyed.map(\.1)
        table = EntryTable(entries: spans.indices.map { .record($0) }, keys: keys)
        // The DN index is built on a second thread while the records are read; reads end by
        // waiting for it, so a DN the file holds twice fails the read, and changes wait for it.
        let label = self.label
        pendingIndex = Background {
            switch KeyIndex.build(keys: keys, hashes: hashes) {
            case .success(let index): return index
            case .failure(let repeated): throw DirectoryError.duplicate(file: label, dn: spans[repeated.position].dn)
            }
        }
        self.file = RecordFile(bytes: bytes, spans: spans, what: label)
        loaded = true
    }

    /// Waits for the DN index, and installs it. When the file holds a DN twice, forgets the file
    /// (the next use reads it again, and fails again) and throws.
    private func settleIndex() throws {
        guard let pending = pendingIndex else { return }
        pendingIndex = nil
        do {
            table.install(try pending.value())
        } catch {
            table = EntryTable()
            file = nil
            loaded = false
            throw error
        }
    }

    /// Positions of the live entries below `base` (all when nil), in file order.
    private func positions(below base: String?) -> [Int] {
        let suffix = base.map { DistinguishedName.normalize($0) } ?? ""
        let below = "," + suffix
        return table.entries.indices.filter { position in
            guard table.entries[position] != nil else { return false }
            guard !suffix.isEmpty else { return true }
            let dn = table.keys[position]
            return dn.hasSuffix(below) || dn == suffix
        }
    }

    public func read(_ scope: ReadScope, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        try load()
        let wanted = positions(below: scope.base)
        for start in stride(from: 0, to: wanted.count, by: max(pageSize, 1)) {
            let items = wanted[start..<min(start + max(pageSize, 1), wanted.count)].compactMap { table.entries[$0] }
            try page(try entries(of: items))
        }
        try settleIndex()
    }

    public func readStored(_ scope: ReadScope, pageSize: Int, _ page: ([StoredEntry]) throws -> Void) throws {
        try load()
        let wanted = positions(below: scope.base)
        for start in stride(from: 0, to: wanted.count, by: max(pageSize, 1)) {
            try page(wanted[start..<min(start + max(pageSize, 1), wanted.count)].compactMap { position in
                switch table.entries[position] {
                case nil: nil
                case .entry(let entry): StoredEntry(entry)
                case .record(let position): file.map { StoredEntry($0, position) }
                }
            })
        }
        try settleIndex()
    }

    /// The entries of `items`, parsing records on all cores. Entries parsed together share one
    /// name list, as entries parsed from one file do.
    private func entries(of items: [Item]) throws -> [Entry] {
        let parts = min(max(1, items.count / 256), ProcessInfo.processInfo.activeProcessorCount * 2)
        let ranges = (0..<parts).map { ($0 * items.count / parts, ($0 + 1) * items.count / parts) }
        let file = self.file, seed = names, label = self.label
        let results = ParallelParts.map(ranges) { from, to -> Result<([Entry], [AttributeName]), DirectoryError> in
            var out: [Entry] = []
            out.reserveCapacity(to - from)
            var reader = LDIFReader(bytes: UnsafeBufferPointer(start: nil, count: 0), line: 1, sawRecord: true, what: label)
            reader.schema = NameSpellings(names: seed)
            do {
                for item in items[from..<to] {
                    switch item {
                    case .entry(let entry): out.append(entry)
                    case .record(let position):
                        guard let file else { throw DirectoryError.file(connection: label, path: label, problem: "the file is no longer read") }
                        out.append(try reader.parseRecord(file.spans[position], in: file.bytes.buffer))
                    }
                }
                return .success((out, reader.schema.names))
            } catch let error as DirectoryError {
                return .failure(error)
            } catch {
                return .failure(DirectoryError.file(connection: label, path: label, problem: "\(error)"))
            }
        }
        var all: [Entry] = []
        all.reserveCapacity(items.count)
        for result in results {
            let (entries, names) = try result.get()
            all += entries
            if names.count > self.names.count { self.names = names }
        }
        return all
    }

    /// The live entry at `position`, parsed when it is still a record.
    private func entry(at position: Int) throws -> Entry? {
        switch table.entries[position] {
        case nil: return nil
        case .entry(let entry): return entry
        case .record(let position):
            return try file?.parse(position, names: names)
        }
    }

    public func apply(_ change: DirectoryChange) throws {
        try apply(change, key: nil)
    }

    /// One object after another, as the protocol says; the DNs of adds are normalised and hashed
    /// on all cores first (a first load adds a million).
    public func apply(objects: [[DirectoryChange]], done: (Int, (any Error)?) -> Void) throws {
        try load()
        try settleIndex()
        _ = try location.writablePath(what: what)
        let keys = ParallelParts.map(objects) { changes -> (String, Int)? in
            guard changes.count == 1, case .add(let entry) = changes[0] else { return nil }
            let key = DistinguishedName.normalize(entry.dn)
            return (key, EntryTable<Item>.hash(key))
        }
        for index in objects.indices {
            do {
                if let (key, hash) = keys[index], case .add(let entry) = objects[index][0] {
                    try add(entry, key: key, hash: hash)
                } else {
                    for change in objects[index] { try apply(change, key: nil) }
                }
                done(index, nil)
            } catch {
                done(index, error)
            }
        }
    }

    /// Adds `entry` under its normalised DN `key`: one hash lookup, taken back if the DN is in use.
    private func add(_ entry: Entry, key: String, hash: Int) throws {
        if let previous = table.append(.entry(entry), key: key, hash: hash), table.entries[previous] != nil {
            let holder = (try? self.entry(at: previous))??.dn ?? entry.dn
            table.undoAppend(key: key, previous: previous)
            throw DirectoryError.object(dn: entry.dn, problem: Self.collision(entry.dn, holder))
        }
        dirty = true
    }

    /// `apply`, given an add's normalised DN and its hash when known.
    private func apply(_ change: DirectoryChange, key known: (String, Int)?) throws {
        try load()
        try settleIndex()
        _ = try location.writablePath(what: what)
        switch change {
        case .add(let entry):
            let (key, hash) = known ?? { let key = DistinguishedName.normalize(entry.dn); return (key, EntryTable<Item>.hash(key)) }()
            try add(entry, key: key, hash: hash)
        case .modify(let dn, let modifications):
            let key = DistinguishedName.normalize(dn)
            guard let position = table.position(of: key), var entry = try entry(at: position) else {
                throw DirectoryError.object(dn: dn, problem: "no such object: \(dn)")
            }
            for modification in modifications { entry.apply(modification) }
            table.entries[position] = .entry(entry)
        case .delete(let dn):
            let key = DistinguishedName.normalize(dn)
            guard let position = table.position(of: key), table.entries[position] != nil else {
                throw DirectoryError.object(dn: dn, problem: "no such object: \(dn)")
            }
            table.entries[position] = nil
            table.forget(key)
        case .rename(let dn, let newRDN, let newSuperior):
            let key = DistinguishedName.normalize(dn)
            guard let position = table.position(of: key), var entry = try entry(at: position) else {
                throw DirectoryError.object(dn: dn, problem: "no such object: \(dn)")
            }
            let newDN = DistinguishedName.renamed(dn, newRDN: newRDN, newSuperior: newSuperior)
            let newKey = DistinguishedName.normalize(newDN)
            if newKey != key, let other = table.position(of: newKey), table.entries[other] != nil {
                throw DirectoryError.object(dn: newDN, problem: Self.collision(newDN, (try? self.entry(at: other))??.dn ?? newDN))
            }
            entry.dn = newDN
            table.entries[position] = .entry(entry)
            table.rekey(position, to: newKey)
        }
        dirty = true
    }

    /// "already exists: DN", saying which object holds the name when it is spelt otherwise.
    static func collision(_ dn: String, _ holder: String) -> String {
        holder == dn ? "already exists: \(dn)"
            : "\(dn) is the same name as \(holder), which already exists (DNs compare without regard to escapes, runs of spaces and the case of attribute types)"
    }

    /// Set when a job writes secret attributes here: a new file is then made 0600.
    public var holdsSecrets = false

    public func willHoldSecrets() { holdsSecrets = true }

    public var traits: DirectoryTraits {
        DirectoryTraits(stagesChanges: true, writtenFile: location.writtenPath)
    }

    public var countHint: Int? { loaded ? table.entries.count : nil }

    public func expectAdds(_ count: Int) {
        guard count > 0, (try? load()) != nil, (try? settleIndex()) != nil else { return }
        table.reserveCapacity(table.entries.count + count)
    }

    /// Output, in order: encoded entries, or a run of the file's own bytes (records nothing
    /// changed, with the blank lines between them), to be written after a line feed.
    enum Piece: Sendable {
        case encoded([UInt8])
        case file(Range<Int>)
    }

    /// The pieces that write `items`.
    static func pieces(of items: ArraySlice<Item?>, file: RecordFile?) -> [Piece] {
        var pieces: [Piece] = []
        var writer = LDIFWriter(capacity: 1 << 16)
        var run: Range<Int>?
        func flushRun() {
            if let current = run { pieces.append(.file(current)) }
            run = nil
        }
        func flushWriter() {
            guard !writer.out.isEmpty else { return }
            pieces.append(.encoded(writer.out))
            writer.out.removeAll(keepingCapacity: true)
        }
        let bytes = file?.bytes.buffer
        for item in items {
            switch item {
            case nil:
                continue
            case .entry(let entry):
                flushRun()
                writer.write(entry)
            case .record(let position):
                guard let file, let bytes else { continue }
                let span = file.spans[position]
                // A record that ends in a line feed joins the run before it when exactly one
                // blank line ("\n") lies between them in the file.
                guard span.end > span.start, bytes[span.end - 1] == 0x0A else {
                    flushRun()
                    writer.writeRecord(file.record(position))
                    continue
                }
                if let current = run, current.upperBound + 1 == span.start, bytes[current.upperBound] == 0x0A {
                    run = current.lowerBound..<span.end
                } else {
                    flushRun()
                    flushWriter()
                    run = span.start..<span.end
                }
            }
        }
        flushRun()
        flushWriter()
        return pieces
    }

    /// Writes every live entry: records nothing changed as the bytes they were read as, the rest
    /// encoded (on all cores, in windows, written in order).
    public func commit() throws {
        guard dirty else { return }
        try settleIndex()
        let path = try location.writablePath(what: what)
        let items = table.entries, file = self.file
        try AtomicFile.write(to: path, what: what, newFileMode: holdsSecrets ? 0o600 : 0o644) { sink in
            let header = Array("version: 1\n".utf8)
            header.withUnsafeBytes(sink)
            // Windows are encoded on all cores by a second thread, a window or two ahead of the
            // writes. Runs of records nothing changed are written straight from the file's bytes.
            let windows = ReadAhead<[[Piece]]>(depth: 2) { body in
                let window = 65_536
                for start in stride(from: 0, to: items.count, by: window) {
                    let end = min(start + window, items.count)
                    let parts = max(1, ProcessInfo.processInfo.activeProcessorCount * 2)
                    let ranges = (0..<parts).map { (start + $0 * (end - start) / parts, start + ($0 + 1) * (end - start) / parts) }
                    try body(ParallelParts.map(ranges) { from, to in Self.pieces(of: items[from..<to], file: file) })
                }
            }
            defer { windows.finish() }
            let newline: [UInt8] = [0x0A]
            while let parts = try windows.next() {
                for part in parts {
                    for piece in part {
                        switch piece {
                        case .encoded(let bytes): bytes.withUnsafeBytes(sink)
                        case .file(let range):
                            newline.withUnsafeBytes(sink)
                            if let file { sink(file.bytes.bytes(range)) }
                        }
                    }
                }
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

    /// Parses all entries, splitting a large file at record boundaries and parsing the parts on
    /// all cores. Entries keep the file's order; errors name the file's own line numbers.
    static func parseAll(_ data: Data, what: String) throws -> [Entry] {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [Entry] in
            try inParts(raw.bindMemory(to: UInt8.self), what: what) { reader in
                var out: [Entry] = []
                try reader.run { out.append($0) }
                return out
            }
        }
    }

    /// Checks every record of a file as `parseAll` would, on all cores, without building
    /// entries: where each record lies, for parsing later (see `StoredEntry`).
    static func scanAll(_ file: SharedBytes, what: String) throws -> [RecordSpan] {
        try inParts(file.buffer, what: what) { reader in
            reader.build = false
            try reader.run { _ in }
            return reader.spans
        }
    }

    /// Runs `work` with a reader on each part of `bytes` (a large file is cut after "\n\n" near
    /// each part's share, and the parts are read on all cores), and joins the results in order.
    private static func inParts<R: Sendable>(_ bytes: UnsafeBufferPointer<UInt8>, what: String,
                                             _ work: @Sendable (inout LDIFReader) throws -> [R]) throws -> [R] {
        let parts = ProcessInfo.processInfo.activeProcessorCount * 2
        guard bytes.count > 1 << 20, parts > 1 else {
            var reader = LDIFReader(bytes: bytes, line: 1, sawRecord: false, what: what)
            return try work(&reader)
        }
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
        let results = ParallelParts.map(ranges) { start, end, line -> Result<[R], DirectoryError> in
            guard let pointer = UnsafePointer<UInt8>(bitPattern: base) else { return .success([]) }
            let whole = UnsafeBufferPointer(start: pointer, count: total)
            var reader = LDIFReader(bytes: UnsafeBufferPointer(rebasing: whole[start..<end]), line: line,
                                    sawRecord: start != 0, what: what)
            reader.offset = start
            do {
                return .success(try work(&reader))
            } catch let error as DirectoryError {
                return .failure(error)
            } catch {
                return .failure(DirectoryError.file(connection: what, path: "", problem: "\(error)"))
            }
        }
        var all: [R] = []
        all.reserveCapacity(results.reduce(0) { $0 + ((try? $1.get().count) ?? 0) })
        for result in results { all += try result.get() }
        return all
    }

    static func forEachEntry(_ bytes: UnsafeBufferPointer<UInt8>, firstLine: Int, expectVersion: Bool, what: String,
                             _ body: (Entry) throws -> Void) throws {
        var reader = LDIFReader(bytes: bytes, line: firstLine, sawRecord: !expectVersion, what: what)
        try reader.run(body)
    }

    /// True when `bytes` may be written as-is: RFC 2849 SAFE-STRING, and no whitespace (space,
    /// TAB, VT, FF) at either end, which `ldapadd` would strip. Others are written in base64, as
    /// `ldapsearch` does.
    static func isSafe(_ bytes: some Collection<UInt8>) -> Bool {
        guard let first = bytes.first else { return true }
        if first == 0x20 || first == 0x09 || first == 0x0B || first == 0x0C || first == UInt8(ascii: ":")
            || first == UInt8(ascii: "<") { return false }
        var last = first
        for byte in bytes {
            if byte == 0 || byte == 0x0A || byte == 0x0D || byte > 0x7F { return false }
            last = byte
        }
        return last != 0x20 && last != 0x09 && last != 0x0B && last != 0x0C
    }

    /// Writes entries as LDIF, beginning with `version: 1`.
    public static func encode(_ entries: [Entry]) -> Data {
        var out = Data()
        encode(entries, to: { out.append(contentsOf: $0) })
        return out
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
        writeValues(entry)
    }

    /// The entry's value lines, without its DN line.
    mutating func writeValues(_ entry: Entry) {
        if lastNames == nil || !entry.sharesNames(with: lastNames!) {
            nameBytes = (0..<entry.nameCount).map { Array(entry.name(at: $0).name.utf8) }
            lastNames = entry
        }
        entry.forEachRawValue { index, value in
            nameBytes[index].withUnsafeBytes { name in line(name, value) }
        }
    }

    /// Whether `record` is byte for byte the value lines `writeValues(entry)` would write,
    /// compared in place: short safe lines without encoding them, others encoded one by one.
    static func matches(_ entry: Entry, _ record: UnsafeRawBufferPointer) -> Bool {
        guard record.baseAddress != nil else { return entry.valueCount == 0 }
        var cursor = 0, same = true
        var scratch: LDIFWriter?
        entry.forEachRawValue { index, value in
            guard same else { return }
            var name = entry.name(at: index).name
            name.withUTF8 { nameBytes in
                let length = nameBytes.count + 2 + value.count
                if length <= 76, !value.isEmpty, LDIFCodec.isSafe(value) {
                    // "name: value\n"
                    guard cursor + length < record.count,
                          Bytes.matches(record, at: cursor, UnsafeRawBufferPointer(nameBytes)),
                          record[cursor + nameBytes.count] == UInt8(ascii: ":"),
                          record[cursor + nameBytes.count + 1] == 0x20,
                          Bytes.matches(record, at: cursor + nameBytes.count + 2, value),
                          record[cursor + length] == 0x0A else { same = false; return }
                    cursor += length + 1
                } else {
                    if scratch == nil { scratch = LDIFWriter(capacity: 256) }
                    scratch!.out.removeAll(keepingCapacity: true)
                    scratch!.line(UnsafeRawBufferPointer(nameBytes), value)
                    let line = scratch!.out
                    guard cursor + line.count <= record.count,
                          Bytes.matches(record, at: cursor, line) else {
                        same = false
                        return
                    }
                    cursor += line.count
                }
            }
        }
        return same && cursor == record.count
    }

    /// A record as read, unchanged: a blank line, then its bytes (ending in a line feed).
    mutating func writeRecord(_ bytes: UnsafeRawBufferPointer) {
        out.append(0x0A)
        out.append(contentsOf: bytes)
        if bytes.last != 0x0A { out.append(0x0A) }
    }

    private static let dnName = Array("dn".utf8)

    private mutating func line(_ name: [UInt8], _ value: UnsafeRawBufferPointer) {
        name.withUnsafeBytes { line($0, value) }
    }

    /// `name: value` (or `name:: base64` when the value is not safe), folded at 76 bytes.
    mutating func line(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
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
///
/// With `build` off, records are checked line by line exactly as when building (so a file that
/// fails, fails the same way) but not built: `spans` gets where each lies in the file instead.
struct LDIFReader {
    var bytes: UnsafeBufferPointer<UInt8>
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
    /// Scanning: whether to build entries, the spans found, and where `bytes` starts in the file.
    var build = true
    var spans: [RecordSpan] = []
    var offset = 0
    /// The record being scanned.
    private var span = RecordSpan(start: 0, bodyStart: 0, end: 0, line: 0, dn: "")
    private var lineStart = 0
    private var startedRecord = false

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

    /// Builds the entry of one record that a scan of `file` found (names are shared with the
    /// records this reader parsed before).
    mutating func parseRecord(_ record: RecordSpan, in file: UnsafeBufferPointer<UInt8>) throws -> Entry {
        bytes = UnsafeBufferPointer(rebasing: file[record.start..<record.end])
        position = 0
        line = record.line
        sawRecord = true
        inEntry = false
        build = true
        var out: Entry?
        try run { out = $0 }
        guard let out else { throw DirectoryError.malformed(connection: what, line: record.line, problem: "the record is gone") }
        return out
    }

    mutating func run(_ body: (Entry) throws -> Void) throws {
        while position < bytes.count {
            var end = lineEnd(from: position)
            var contentEnd = end
            if contentEnd > position, bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let lineNumber = line
            if contentEnd == position {
                // An empty line ends the record.
                if inEntry { try emit(end: position) }
            } else if bytes[position] == UInt8(ascii: "#") {
                // A comment, with any continuation lines.
                while end + 1 < bytes.count, bytes[end + 1] == 0x20 { line += 1; end = lineEnd(from: end + 1) }
            } else if bytes[position] == 0x20 {
                throw DirectoryError.malformed(connection: what, line: lineNumber, problem: "a continuation line follows no line")
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
                lineStart = position
                try copy.withUnsafeBufferPointer { try logicalLine($0, number: lineNumber) }
                if startedRecord { span.bodyStart = end + 1 }
            } else {
                lineStart = position
                try logicalLine(UnsafeBufferPointer(rebasing: bytes[position..<contentEnd]), number: lineNumber)
                if startedRecord { span.bodyStart = end + 1 }
            }
            startedRecord = false
            line += 1
            position = end + 1
        }
        if inEntry { try emit(end: bytes.count) }

        func emit(end: Int) throws {
            if build {
                lastSize = (entry.byteCount + 16, entry.valueCount + 1)
                try body(entry)
            } else {
                span.start += offset
                span.bodyStart = min(span.bodyStart, end) + offset
                span.end = end + offset
                spans.append(span)
            }
            inEntry = false
        }
    }

    mutating func logicalLine(_ text: UnsafeBufferPointer<UInt8>, number: Int) throws {
        guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else {
            throw DirectoryError.malformed(connection: what, line: number, problem: "expected 'name: value'")
        }
        let nameBytes = UnsafeBufferPointer(rebasing: text[..<colon])
        var valueStart = colon + 1
        var base64 = false
        if valueStart < text.count, text[valueStart] == UInt8(ascii: ":") {
            base64 = true
            valueStart += 1
        } else if valueStart < text.count, text[valueStart] == UInt8(ascii: "<") {
            throw DirectoryError.malformed(connection: what, line: number, problem: "URL values (\(String(decoding: nameBytes, as: UTF8.self)):<) are not supported")
        }
        while valueStart < text.count, text[valueStart] == 0x20 { valueStart += 1 }
        let raw = UnsafeBufferPointer(rebasing: text[valueStart...])
        var decoded: Data?
        if base64 && !build && inEntry && Self.isCanonicalBase64(raw) {
            // Checked, not decoded: a scan keeps no values.
        } else if base64 {
            guard let value = Data(base64Encoded: Data(buffer: raw)) else {
                throw DirectoryError.malformed(connection: what, line: number, problem: "the base64 value of \(String(decoding: nameBytes, as: UTF8.self)) is not valid")
            }
            decoded = value
        }
        if !inEntry {
            if !sawRecord && Self.isName(nameBytes, "version") {
                sawRecord = true
                return
            }
            guard Self.isName(nameBytes, "dn") else {
                throw DirectoryError.malformed(connection: what, line: number, problem: "a record must start with dn:, found \(String(decoding: nameBytes, as: UTF8.self)):")
            }
            guard let dn = decoded.map({ String(data: $0, encoding: .utf8) }) ?? String(validating: raw, as: UTF8.self) else {
                throw DirectoryError.malformed(connection: what, line: number, problem: "the DN is not valid UTF-8")
            }
            if build {
                // Sized like the entry before: records of one file tend to be alike.
                entry = Entry(dn: dn, names: schema.names, reservingBytes: lastSize.bytes, values: lastSize.values)
            } else {
                span = RecordSpan(start: lineStart, bodyStart: lineStart, end: lineStart, line: number, dn: dn)
            }
            startedRecord = true
            inEntry = true
            sawRecord = true
            return
        }
        if nameBytes.count == 10, Self.isChangetype(nameBytes) {
            throw DirectoryError.malformed(connection: what, line: number, problem: "change records (changetype) are not supported; "
                                 + "the file must hold entries")
        }
        guard build else { return }
        let index = schema.index(of: UnsafeRawBufferPointer(nameBytes))
        let name = schema.names[index]
        if index >= entry.nameCount {
            // A name first seen inside this entry: add it (the index matches the shared list).
            if let decoded { entry.append(name, value: Value(decoded)) } else { entry.append(name, bytes: raw) }
        } else if let decoded {
            decoded.withUnsafeBytes { entry.append(at: index, bytes: $0) }
        } else {
            entry.append(at: index, bytes: UnsafeRawBufferPointer(raw))
        }
    }

    private static func isChangetype(_ name: UnsafeBufferPointer<UInt8>) -> Bool { isName(name, "changetype") }

    /// Whether `name` is `lowercase` (letters only) in any letter case.
    private static func isName(_ name: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        guard name.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for i in 0..<name.count {
            let byte = name[i]
            guard byte == expected[i] || (byte >= 0x41 && byte <= 0x5A && byte | 0x20 == expected[i]) else { return false }
        }
        return true
    }

    /// True for base64 that Foundation surely decodes: whole quads of the RFC 4648 alphabet,
    /// padded, with the unused bits of the last quad zero. Anything else is decoded to be sure.
    static func isCanonicalBase64(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = text.count
        guard count > 0, count % 4 == 0 else { return false }
        func value(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x41...0x5A: byte - 0x41
            case 0x61...0x7A: byte - 0x61 + 26
            case 0x30...0x39: byte - 0x30 + 52
            case 0x2B: 62
            case 0x2F: 63
            default: nil
            }
        }
        let padding = text[count - 1] == 0x3D ? (text[count - 2] == 0x3D ? 2 : 1) : 0
        for i in 0..<(count - padding) where value(text[i]) == nil { return false }
        guard let last = value(text[count - padding - 1]) else { return false }
        switch padding {
        case 2: return last & 0x0F == 0
        case 1: return last & 0x03 == 0
        default: return true
        }
    }
}
