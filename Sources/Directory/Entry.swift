import Foundation

/// One attribute value: binary-safe bytes, shown as text when they are valid UTF-8.
public struct Value: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let bytes: Data

    public init(_ bytes: Data) { self.bytes = bytes }
    public init(_ text: String) { self.bytes = Data(text.utf8) }
    public init(stringLiteral text: String) { self.init(text) }

    /// The value as text, or nil when it is not valid UTF-8.
    public var text: String? { String(data: bytes, encoding: .utf8) }

    /// Text when possible, else `base64:…`.
    public var description: String { text ?? "base64:\(bytes.base64EncodedString())" }

    public var isEmpty: Bool { bytes.isEmpty }

    /// A value as a key that is compared as bytes: its text when it is valid UTF-8 (the common
    /// case, and how keys have always been written), otherwise U+0001 and the bytes in base64.
    /// Two values give one key only when their bytes are equal, so binary keys such as
    /// `objectGUID` never collide (a lossy decoding would make every invalid byte U+FFFD).
    public static func key(_ bytes: some Collection<UInt8>) -> String {
        if bytes.first != 0x01, let text = String(validating: bytes, as: UTF8.self) { return text }
        return "\u{1}" + Data(bytes).base64EncodedString()
    }

    /// A key made by `key(_:)` as people read it: a binary one as its GUID (16 bytes) or
    /// `base64:…`, any other as it is.
    public static func showKey(_ key: String) -> String {
        guard key.hasPrefix("\u{1}"), let bytes = Data(base64Encoded: String(key.dropFirst())) else { return key }
        return show(bytes)
    }

    /// Bytes as people read them: a GUID's usual form (`6f1c…-…`, its first three fields
    /// little-endian, as Windows writes them) when `guid` is true and they are 16 bytes that are
    /// not all printable ASCII; else text when they are valid UTF-8, else `base64:…`.
    public static func show(_ bytes: some Collection<UInt8>, guid: Bool = true) -> String {
        if guid, isBinaryGUID(bytes) { return guidText(bytes) }
        return String(validating: bytes, as: UTF8.self) ?? "base64:\(Data(bytes).base64EncodedString())"
    }

    /// 16 bytes, not all printable ASCII: a binary GUID rather than a 16-character text. (A
    /// random GUID is all printable ASCII about once in ten million.)
    public static func isBinaryGUID(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.count == 16 && bytes.contains { $0 < 0x20 || $0 >= 0x7F }
    }

    /// A 16-byte GUID as Windows writes it: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase,
    /// with the first three fields little-endian.
    public static func guidText(_ bytes: some Collection<UInt8>) -> String {
        let b = Array(bytes)
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        return order.map { $0 < 0 ? "-" : String(format: "%02x", b[$0]) }.joined()
    }

    /// Whether an attribute holds GUIDs: `objectGUID`, `mS-DS-ConsistencyGuid` and the like
    /// (a name ending in `guid`, without case).
    public static func holdsGUIDs(_ name: AttributeName) -> Bool {
        name.name.lowercased().hasSuffix("guid")
    }

    /// The parts of `bytes` between `separator`s, trimmed of spaces; empty parts are dropped.
    public static func split(_ bytes: some Collection<UInt8>, by separator: [UInt8]) -> [ArraySlice<UInt8>] {
        let array = Array(bytes)
        return CSVCodec.split(array[...], by: separator)
    }
}

/// An attribute name; compared without regard to ASCII case, as LDAP does, and kept as first written.
public struct AttributeName: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let name: String

    public init(_ name: String) { self.name = name }
    public init(stringLiteral name: String) { self.init(name) }

    public static func == (lhs: AttributeName, rhs: AttributeName) -> Bool {
        equalFolded(lhs.name, rhs.name)
    }

    public func hash(into hasher: inout Hasher) {
        for byte in name.utf8 { hasher.combine(byte | (byte >= 0x41 && byte <= 0x5A ? 0x20 : 0)) }
    }

    public var description: String { name }

    /// ASCII case-insensitive equality, without allocating.
    static func equalFolded(_ a: String, _ b: String) -> Bool {
        // Most names differ in length, and equal ones are usually spelled alike.
        guard a.utf8.count == b.utf8.count else { return false }
        if a == b { return true }
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                guard x.count == y.count else { return false }
                for i in 0..<x.count where x[i] != y[i] {
                    let p = x[i] | 0x20, q = y[i] | 0x20
                    guard p == q, p >= 0x61, p <= 0x7A else { return false }
                }
                return true
            }
        }
    }
}

/// One directory object: a DN (or, for CSV rows, `#<row>`), and multi-valued attributes in order.
///
/// Stored compactly, because a job may hold a million of them: every value in one buffer, each
/// behind a 6-byte header naming its attribute (a position in `names`, which entries built from
/// one list share) and its length. An entry is then at most two allocations (the buffer and a
/// long DN), and a copy retains three references.
public struct Entry: Sendable, Equatable {
    public var dn: String
    private var names: [AttributeName] = []
    /// Per value, in the order added: the attribute's position (UInt16), the length (UInt32),
    /// then the bytes.
    private var storage: [UInt8] = []
    /// How many values there are.
    public private(set) var valueCount = 0
    private static let header = 6

    public init(dn: String, attributes: [(AttributeName, [Value])] = []) {
        self.dn = dn
        for (name, values) in attributes { self[name] = values }
    }

    /// An entry whose attributes will be among `names` (shared, not copied, between entries
    /// built from the same list), filled with `append(at:bytes:)`.
    public init(dn: String, names: [AttributeName], reservingBytes: Int = 0, values: Int = 0) {
        self.dn = dn
        self.names = names
        // Reserving up front saves the buffer's repeated doubling: a job builds millions of these.
        if reservingBytes > 0 || values > 0 { storage.reserveCapacity(reservingBytes + Self.header * values) }
    }

    /// The size of all values, for sizing derived entries.
    public var byteCount: Int { storage.count - Self.header * valueCount }

    /// How many names the entry's name list holds, and the name at a position of it.
    public var nameCount: Int { names.count }
    public func name(at index: Int) -> AttributeName { names[index] }

    /// The position of `name` in this entry's name list, if it is there.
    public func index(of name: AttributeName) -> Int? { names.firstIndex(of: name) }

    /// Calls `body` with each value's attribute position, and where its bytes lie in `raw` (the
    /// storage), until `body` returns false.
    @inline(__always)
    private static func walk(_ raw: UnsafeRawBufferPointer,
                             _ body: (_ name: Int, _ start: Int, _ count: Int) throws -> Bool) rethrows {
        var offset = 0
        while offset + header <= raw.count {
            let name = Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            let count = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 2, as: UInt32.self)))
            let start = offset + header
            guard try body(name, start, count) else { return }
            offset = start + count
        }
    }

    /// Adds a value to the attribute at `index` of the name list.
    public mutating func append(at index: Int, bytes value: UnsafeRawBufferPointer) {
        let length = UInt32(value.count)
        var head: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
            UInt8(truncatingIfNeeded: index), UInt8(truncatingIfNeeded: index >> 8),
            UInt8(truncatingIfNeeded: length), UInt8(truncatingIfNeeded: length >> 8),
            UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 24))
        withUnsafeBytes(of: &head) { storage.append(contentsOf: $0) }
        storage.append(contentsOf: value)
        valueCount += 1
    }

    /// Adds the value `write` appends to the buffer it is given, to the attribute at `index`;
    /// nothing when it appends nothing (or throws). Saves building the value elsewhere first.
    public mutating func appendValue<E: Error>(at index: Int, _ write: (inout [UInt8]) throws(E) -> Void) throws(E) {
        let start = storage.count
        var placeholder: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
        withUnsafeBytes(of: &placeholder) { storage.append(contentsOf: $0) }
        do {
            try write(&storage)
        } catch {
            storage.removeSubrange(start...)
            throw error
        }
        let length = storage.count - start - Self.header
        guard length > 0 else {
            storage.removeSubrange(start...)
            return
        }
        storage[start] = UInt8(truncatingIfNeeded: index)
        storage[start + 1] = UInt8(truncatingIfNeeded: index >> 8)
        for byte in 0..<4 { storage[start + 2 + byte] = UInt8(truncatingIfNeeded: UInt32(length) >> (8 * byte)) }
        valueCount += 1
    }

    public mutating func append(at index: Int, bytes value: ArraySlice<UInt8>) {
        value.withUnsafeBytes { append(at: index, bytes: $0) }
    }

    /// Adds a value to `name`, adding the name when it is new.
    public mutating func append(_ name: AttributeName, bytes value: some Collection<UInt8>) {
        let index: Int
        if let existing = names.firstIndex(of: name) { index = existing } else { index = names.count; names.append(name) }
        let bytes = Array(value)
        bytes.withUnsafeBytes { append(at: index, bytes: $0) }
    }

    public mutating func append(_ name: AttributeName, value: Value) {
        let index: Int
        if let existing = names.firstIndex(of: name) { index = existing } else { index = names.count; names.append(name) }
        value.bytes.withUnsafeBytes { append(at: index, bytes: $0) }
    }

    /// The bytes of every value at name-list position `index`, without copying.
    public func values(at index: Int) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        storage.withUnsafeBytes { raw in
            Self.walk(raw) { name, start, count in
                if name == index { out.append(storage[start..<start + count]) }
                return true
            }
        }
        return out
    }

    /// The bytes of every value of `name`, without copying.
    public func values(of name: AttributeName) -> [ArraySlice<UInt8>] {
        guard let index = names.firstIndex(of: name) else { return [] }
        return values(at: index)
    }

    /// Calls `body` with each value's bytes at name-list position `index`, without allocating.
    public func forEachValue(at index: Int, _ body: (ArraySlice<UInt8>) throws -> Void) rethrows {
        try storage.withUnsafeBytes { raw in
            try Self.walk(raw) { name, start, count in
                if name == index { try body(storage[start..<start + count]) }
                return true
            }
        }
    }

    /// Calls `body` with each value's bytes at name-list position `index`, as raw buffers that are
    /// valid only during the call: no retains, no copies. The fast path for mapping rows.
    public func forEachRawValue(at index: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try storage.withUnsafeBytes { raw in
            try Self.walk(raw) { name, start, count in
                if name == index { try body(UnsafeRawBufferPointer(rebasing: raw[start..<start + count])) }
                return true
            }
        }
    }

    /// Calls `body` with each value in the order added, as its name-list position and raw bytes
    /// valid only during the call.
    public func forEachRawValue(_ body: (Int, UnsafeRawBufferPointer) throws -> Void) rethrows {
        try storage.withUnsafeBytes { raw in
            try Self.walk(raw) { name, start, count in
                try body(name, UnsafeRawBufferPointer(rebasing: raw[start..<start + count]))
                return true
            }
        }
    }

    /// Whether this entry and `other` share one name list (not a copy): then a position means
    /// the same attribute in both.
    public func sharesNames(with other: Entry) -> Bool {
        names.count == other.names.count
            && names.withUnsafeBufferPointer { mine in other.names.withUnsafeBufferPointer { $0.baseAddress == mine.baseAddress } }
    }

    /// The position of `name` in this entry's name list, trying `hint` first (entries read from a
    /// file this job wrote list names in the job's order).
    public func index(of name: AttributeName, hint: Int) -> Int? {
        if hint < names.count, names[hint] == name { return hint }
        return names.firstIndex(of: name)
    }

    /// Whether the attribute at name-list position `index` has two values or more.
    public func hasSeveralValues(at index: Int) -> Bool {
        var count = 0
        storage.withUnsafeBytes { raw in
            Self.walk(raw) { name, _, _ in
                if name == index { count += 1 }
                return count < 2
            }
        }
        return count >= 2
    }

    /// The first value's bytes at name-list position `index`.
    public func firstValue(at index: Int) -> ArraySlice<UInt8>? {
        var found: Range<Int>?
        storage.withUnsafeBytes { raw in
            Self.walk(raw) { name, start, count in
                if name == index { found = start..<start + count; return false }
                return true
            }
        }
        return found.map { storage[$0] }
    }

    /// Whether the values at `index` here and those at `otherIndex` in `other` (nil: the other
    /// has none) are the same set: every value of each side is among the other's, as LDAP
    /// compares attribute values. Duplicates do not count (a directory holds each value once), but
    /// a value one side lacks always does: `[555, 555]` is not `[555, 666]`. Small lists are
    /// compared without allocating or retaining.
    public func sameValues(at index: Int, as other: Entry, at otherIndex: Int?) -> Bool {
        storage.withUnsafeBytes { a in
            other.storage.withUnsafeBytes { b in
                var mine: [Range<Int>] = [], theirs: [Range<Int>] = []
                Self.walk(a) { name, start, count in
                    if name == index { mine.append(start..<start + count) }
                    return true
                }
                if let otherIndex {
                    Self.walk(b) { name, start, count in
                        if name == otherIndex { theirs.append(start..<start + count) }
                        return true
                    }
                }
                if mine.isEmpty || theirs.isEmpty { return mine.isEmpty && theirs.isEmpty }
                if mine.count == 1 && theirs.count == 1 {
                    return Bytes.equal(UnsafeRawBufferPointer(rebasing: a[mine[0]]), UnsafeRawBufferPointer(rebasing: b[theirs[0]]))
                }
                // The same values in the same order (a server lists a group's members as they
                // were written) are the same set, found in one pass.
                if mine.count == theirs.count, zip(mine, theirs).allSatisfy({
                    Bytes.equal(UnsafeRawBufferPointer(rebasing: a[$0]), UnsafeRawBufferPointer(rebasing: b[$1]))
                }) {
                    return true
                }
                // Each side's values must all be found on the other side.
                func covered(_ x: UnsafeRawBufferPointer, _ xs: [Range<Int>], by y: UnsafeRawBufferPointer, _ ys: [Range<Int>]) -> Bool {
                    if xs.count * ys.count <= 4_096 {
                        return xs.allSatisfy { r in
                            ys.contains { Bytes.equal(UnsafeRawBufferPointer(rebasing: x[r]), UnsafeRawBufferPointer(rebasing: y[$0])) }
                        }
                    }
                    let set = Set(ys.map { ValueBytes(name: 0, bytes: UnsafeRawBufferPointer(rebasing: y[$0])) })
                    return xs.allSatisfy { set.contains(ValueBytes(name: 0, bytes: UnsafeRawBufferPointer(rebasing: x[$0]))) }
                }
                return covered(a, mine, by: b, theirs) && covered(b, theirs, by: a, mine)
            }
        }
    }

    /// The values at `index` here that `other` lacks at `otherIndex` (nil: it has none), and
    /// the values it has there that this lacks, compared byte for byte in linear time (each
    /// side's repeats count once), in each side's order; and how many distinct values this holds
    /// at `index`, and `other` at `otherIndex`. Only the differing values are copied out.
    public func valueDifference(at index: Int, from other: Entry, at otherIndex: Int?)
        -> (added: [ArraySlice<UInt8>], removed: [ArraySlice<UInt8>], count: Int, otherCount: Int) {
        storage.withUnsafeBytes { a in
            other.storage.withUnsafeBytes { b in
                func ranges(_ raw: UnsafeRawBufferPointer, _ wanted: Int?) -> [Range<Int>] {
                    guard let wanted else { return [] }
                    var out: [Range<Int>] = []
                    Self.walk(raw) { name, start, count in
                        if name == wanted { out.append(start..<start + count) }
                        return true
                    }
                    return out
                }
                let mine = ranges(a, index), theirs = ranges(b, otherIndex)
                let mineSet = Set(mine.map { ValueBytes(name: 0, bytes: UnsafeRawBufferPointer(rebasing: a[$0])) })
                let theirSet = Set(theirs.map { ValueBytes(name: 0, bytes: UnsafeRawBufferPointer(rebasing: b[$0])) })
                var addedSeen = Set<ValueBytes>(), removedSeen = Set<ValueBytes>()
                var added: [ArraySlice<UInt8>] = [], removed: [ArraySlice<UInt8>] = []
                for range in mine {
                    let value = ValueBytes(name: 0, bytes: UnsafeRawBufferPointer(rebasing: a[range]))
                    if !theirSet.contains(value), addedSeen.insert(value).inserted { added.append(storage[range]) }
                }
                for range in theirs {
                    let value = ValueBytes(name: 0, bytes: UnsafeRawBufferPointer(rebasing: b[range]))
                    if !mineSet.contains(value), removedSeen.insert(value).inserted { removed.append(other.storage[range]) }
                }
                return (added, removed, mineSet.count, theirSet.count)
            }
        }
    }

    /// This entry with each attribute's repeated values left out (the first of each kept, in
    /// order); the entry itself, not copied, when no attribute repeats a value. Allocates nothing
    /// unless a value is repeated.
    public func withoutRepeatedValues() -> Entry {
        guard valueCount > 1 else { return self }
        let several = namesWithSeveralValues()
        if several.mask == 0 && !several.beyond64 { return self }
        var repeated = false
        storage.withUnsafeBytes { raw in
            // A few values are compared with each other; more (a group's members) go through a
            // set, so that a large list costs linear time, not quadratic.
            if valueCount > Self.compareDirectlyUpTo {
                var seen = Set<ValueBytes>(minimumCapacity: valueCount)
                Self.walk(raw) { name, start, count in
                    guard name >= 64 || several.mask & (1 << UInt64(name)) != 0 else { return true }
                    repeated = !seen.insert(ValueBytes(name: name, bytes: UnsafeRawBufferPointer(rebasing: raw[start..<start + count]))).inserted
                    return !repeated
                }
                return
            }
            Self.walk(raw) { name, start, count in
                guard name >= 64 || several.mask & (1 << UInt64(name)) != 0 else { return true }
                let value = UnsafeRawBufferPointer(rebasing: raw[start..<start + count])
                // An earlier value of the same attribute with the same bytes?
                Self.walk(raw) { otherName, otherStart, otherCount in
                    guard otherStart < start else { return false }
                    if otherName == name, Bytes.equal(value, UnsafeRawBufferPointer(rebasing: raw[otherStart..<otherStart + otherCount])) {
                        repeated = true
                        return false
                    }
                    return true
                }
                return !repeated
            }
        }
        guard repeated else { return self }
        var out = Entry(dn: dn, names: names, reservingBytes: storage.count, values: valueCount)
        storage.withUnsafeBytes { raw in
            var seen = Set<ValueBytes>(minimumCapacity: valueCount)
            Self.walk(raw) { name, start, count in
                let value = UnsafeRawBufferPointer(rebasing: raw[start..<start + count])
                if seen.insert(ValueBytes(name: name, bytes: value)).inserted { out.append(at: name, bytes: value) }
                return true
            }
        }
        return out
    }

    /// Up to this many values, `withoutRepeatedValues` compares values with each other.
    static let compareDirectlyUpTo = 32

    /// The name-list positions that hold two values or more, as bits (position < 64), and
    /// whether a position beyond 63 holds values at all (then ask `hasSeveralValues(at:)`). One
    /// walk, no allocation.
    public func namesWithSeveralValues() -> (mask: UInt64, beyond64: Bool) {
        var once: UInt64 = 0, several: UInt64 = 0, beyond = false
        storage.withUnsafeBytes { raw in
            Self.walk(raw) { name, _, _ in
                guard name < 64 else { beyond = true; return true }
                let bit: UInt64 = 1 << UInt64(name)
                if once & bit != 0 { several |= bit } else { once |= bit }
                return true
            }
        }
        return (several, beyond)
    }

    /// Every value in the order added, with its attribute name (values of one attribute are
    /// contiguous when they were added together).
    public func forEachValue(_ body: (AttributeName, ArraySlice<UInt8>) -> Void) {
        storage.withUnsafeBytes { raw in
            Self.walk(raw) { name, start, count in
                body(names[name], storage[start..<start + count])
                return true
            }
        }
    }

    public static func == (lhs: Entry, rhs: Entry) -> Bool {
        guard lhs.dn == rhs.dn else { return false }
        let a = lhs.attributes, b = rhs.attributes
        return a.count == b.count && zip(a, b).allSatisfy { $0.name == $1.name && $0.values == $1.values }
    }

    /// Every attribute with its values, in first-written order.
    public var attributes: [(name: AttributeName, values: [Value])] {
        names.indices.compactMap { index in
            let values = self.values(at: index).map { Value(Data($0)) }
            return values.isEmpty ? nil : (names[index], values)
        }
    }

    /// Calls `body` with each attribute's name and its values' bytes, without building `Value`s.
    public func forEachAttribute(_ body: (AttributeName, [ArraySlice<UInt8>]) throws -> Void) rethrows {
        for index in names.indices {
            let values = self.values(at: index)
            if !values.isEmpty { try body(names[index], values) }
        }
    }

    /// The values of `name`; empty when absent. Setting an empty list removes the attribute.
    public subscript(name: AttributeName) -> [Value] {
        get { values(of: name).map { Value(Data($0)) } }
        set {
            // Rebuild without the attribute's old values, then add the new ones (rare: updates only).
            let old = self
            names = []
            storage = []
            valueCount = 0
            storage.reserveCapacity(old.storage.count)
            var replaced = false
            old.forEachAttribute { attribute, values in
                if attribute == name {
                    replaced = true
                    for value in newValue { append(attribute, value: value) }
                } else {
                    for value in values { append(attribute, bytes: value) }
                }
            }
            if !replaced { for value in newValue { append(name, value: value) } }
        }
    }

    public subscript(name: String) -> [Value] {
        get { self[AttributeName(name)] }
        set { self[AttributeName(name)] = newValue }
    }

}

/// One attribute-level change within a modify.
public struct Modification: Sendable, Equatable {
    public enum Operation: String, Sendable { case add, replace, delete }
    public let operation: Operation
    public let attribute: AttributeName
    /// For `delete`, empty means every value.
    public let values: [Value]

    public init(_ operation: Operation, _ attribute: AttributeName, _ values: [Value]) {
        self.operation = operation
        self.attribute = attribute
        self.values = values
    }
}

/// A change to a directory.
public enum DirectoryChange: Sendable, Equatable {
    case add(Entry)
    case modify(dn: String, [Modification])
    case delete(dn: String)
    /// A new RDN (e.g. `uid=new`) and optionally a new parent.
    case rename(dn: String, newRDN: String, newSuperior: String?)
}

/// A source or destination of entries.
///
/// Reading hands entries over in pages. Writing takes changes one by one; each may fail on its
/// own (that object is then counted as failed and the job goes on). File directories keep changes
/// in memory and write them in `commit()`, atomically: readers see the old file or the new one.
public protocol Directory: AnyObject {
    /// Every entry below `scope.base` (all entries when nil), in pages of at most `pageSize`.
    /// A directory that searches on a server narrows by `scope.filter` and `scope.attributes`;
    /// files read everything, and the caller filters exactly.
    func read(_ scope: ReadScope, pageSize: Int, _ page: ([Entry]) throws -> Void) throws

    /// `read`, for planning against this directory as a destination: the objects as stored,
    /// which a directory that keeps encoded records (LDIF) need not parse (see `StoredEntry`).
    func readStored(_ scope: ReadScope, pageSize: Int, _ page: ([StoredEntry]) throws -> Void) throws

    /// Applies one change; throws a `DirectoryError` naming why this one object failed.
    func apply(_ change: DirectoryChange) throws

    /// Applies each object's changes in order, and calls `done` once per object with its index
    /// and its failure, if any. Objects may be worked on concurrently (LDAP pipelines them), so
    /// `done` may come in any order. Throws only when nothing could be applied at all.
    func apply(objects: [[DirectoryChange]], done: (Int, (any Error)?) -> Void) throws

    /// Makes every applied change durable. Nothing is visible before it.
    func commit() throws

    /// What kind of directory this is, as planning and running need to know it.
    var traits: DirectoryTraits { get }

    /// About how many entries a read will hand over, once known (after the first page), for
    /// sizing indexes; nil when unknown.
    var countHint: Int? { get }

    /// Says that about `count` adds are coming, so a directory that stages them in memory can
    /// size its tables once. A hint only: nothing is read or written.
    func expectAdds(_ count: Int)

    /// Every attribute name an entry here may have, when the directory declares them (an LDAP
    /// server's schema); nil when only the entries tell. A job checks its field names against it.
    func declaredAttributes() throws -> [AttributeName]?

    /// Says that a job writes secret attributes (passwords) here, so a file made new is made
    /// readable by its owner only. Nothing for a server.
    func willHoldSecrets()

    /// Says that the next read of exactly `scope` will be read again right after (a job that
    /// refers to its own rows looks them up, then plans): a server directory may keep that
    /// read's entries in memory and hand them over again, once, rather than search twice. A
    /// write forgets them. A hint: files ignore it.
    func keepNextRead(of scope: ReadScope)
}

/// The fixed facts about a directory that decide how a job plans and runs against it.
public struct DirectoryTraits: Sendable, Equatable {
    /// Reading waits on a server (so other work may go on meanwhile); false for files.
    public var readsFromServer = false
    /// Applied changes stay in memory until `commit()`, so a preview may apply them (and later
    /// jobs of the same run see them) without writing anything.
    public var stagesChanges = false
    /// Every entry's name list is the directory's list of columns (a CSV file's header), whether
    /// or not the entry has a value for each: a name there exists.
    public var namesAreColumns = false
    /// The file this directory writes in `commit()`, which a job locks while it works on it
    /// (`DestinationLock`); nil for a server, or for a file read from the config repository.
    public var writtenFile: String?

    public init(readsFromServer: Bool = false, stagesChanges: Bool = false, namesAreColumns: Bool = false,
                writtenFile: String? = nil) {
        self.readsFromServer = readsFromServer
        self.stagesChanges = stagesChanges
        self.namesAreColumns = namesAreColumns
        self.writtenFile = writtenFile
    }
}

/// What a read asks for. Everything but `base` is a hint that may narrow a server's answer.
public struct ReadScope: Sendable, Equatable {
    public var base: String?
    /// The attributes wanted (nil: all).
    public var attributes: [AttributeName]?
    /// An RFC 4515 filter whose matches include every entry wanted (a superset is fine).
    public var filter: String?

    public init(base: String? = nil, attributes: [AttributeName]? = nil, filter: String? = nil) {
        self.base = base
        self.attributes = attributes
        self.filter = filter
    }
}

extension Directory {
    public var countHint: Int? { nil }

    public func expectAdds(_ count: Int) {}

    public func declaredAttributes() throws -> [AttributeName]? { nil }

    public func willHoldSecrets() {}

    public func keepNextRead(of scope: ReadScope) {}

    public func readStored(_ scope: ReadScope, pageSize: Int, _ page: ([StoredEntry]) throws -> Void) throws {
        try read(scope, pageSize: pageSize) { try page($0.map(StoredEntry.init)) }
    }

    /// Every entry below `base`.
    public func read(base: String?, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        try read(ReadScope(base: base), pageSize: pageSize, page)
    }

    /// One object after another.
    public func apply(objects: [[DirectoryChange]], done: (Int, (any Error)?) -> Void) throws {
        for (index, changes) in objects.enumerated() {
            do {
                for change in changes { try apply(change) }
                done(index, nil)
            } catch {
                done(index, error)
            }
        }
    }
}

/// A value where it lies in an entry's storage, with its name's position: equal when both
/// match, byte for byte; hashed over its bytes at once. Valid only while the storage is borrowed.
private struct ValueBytes: Hashable {
    let name: Int
    let bytes: UnsafeRawBufferPointer
    static func == (a: ValueBytes, b: ValueBytes) -> Bool { a.name == b.name && Bytes.equal(a.bytes, b.bytes) }
    func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(bytes: bytes)
    }
}
