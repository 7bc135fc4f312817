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
        loaded = true
        guard let data = try location.load(what: what, missingIsEmpty: missingIsEmpty) else { return }
        try LDIFCodec.forEachEntry(data, what: "\(what): \(location.label)") { entry in
            let key = DistinguishedName.normalize(entry.dn)
            if table.index[key] != nil {
                throw DirectoryError("\(what): \(location.label) holds the entry \(entry.dn) twice")
            }
            table.append(entry, key: key)
        }
    }

    public func read(base: String?, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        try load()
        let suffix = base.map { DistinguishedName.normalize($0) }
        var batch: [Entry] = []
        batch.reserveCapacity(max(pageSize, 1))
        for entry in table.entries {
            guard let entry else { continue }
            if let suffix, !suffix.isEmpty {
                let dn = DistinguishedName.normalize(entry.dn)
                guard dn == suffix || dn.hasSuffix("," + suffix) else { continue }
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
            let key = DistinguishedName.normalize(entry.dn)
            if let position = table.index[key], table.entries[position] != nil {
                throw DirectoryError("already exists: \(entry.dn)")
            }
            table.append(entry, key: key)
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
            table.index[key] = nil
            table.index[newKey] = position
        }
        dirty = true
    }

    public var stagesChanges: Bool { true }

    public func commit() throws {
        guard dirty else { return }
        let path = try location.writablePath(what: what)
        try AtomicFile.write(to: path, what: what) { sink in
            LDIFCodec.encode(table.entries.lazy.compactMap { $0 }, to: sink)
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
        var current: Entry?
        var sawRecord = false
        var logical: [UInt8] = []
        logical.reserveCapacity(256)
        var logicalLine = 0
        var names: [[UInt8]: AttributeName] = [:]

        func finishLogical() throws {
            defer { logical.removeAll(keepingCapacity: true) }
            guard !logical.isEmpty else { return }
            guard let colon = logical.firstIndex(of: UInt8(ascii: ":")) else {
                throw DirectoryError("\(what): line \(logicalLine): expected 'name: value'")
            }
            let nameBytes = Array(logical[..<colon])
            let name: AttributeName
            if let cached = names[nameBytes] { name = cached } else {
                name = AttributeName(String(decoding: nameBytes, as: UTF8.self))
                names[nameBytes] = name
            }
            var rest = logical[(colon + 1)...]
            var decoded: Data?
            if rest.first == UInt8(ascii: ":") {
                rest = rest.dropFirst().drop { $0 == 0x20 }
                guard let value = Data(base64Encoded: Data(rest)) else {
                    throw DirectoryError("\(what): line \(logicalLine): the base64 value of \(name) is not valid")
                }
                decoded = value
            } else if rest.first == UInt8(ascii: "<") {
                throw DirectoryError("\(what): line \(logicalLine): URL values (\(name):<) are not supported")
            } else {
                rest = rest.drop { $0 == 0x20 }
            }
            if current == nil {
                let lower = name.name.lowercased()
                if !sawRecord && lower == "version" {
                    sawRecord = true
                    return
                }
                guard lower == "dn" else {
                    throw DirectoryError("\(what): line \(logicalLine): a record must start with dn:, found \(name):")
                }
                guard let dn = decoded.map({ String(data: $0, encoding: .utf8) }) ?? String(validating: rest, as: UTF8.self) else {
                    throw DirectoryError("\(what): line \(logicalLine): the DN is not valid UTF-8")
                }
                current = Entry(dn: dn)
                sawRecord = true
                return
            }
            if name.name.count == 10 && name.name.lowercased() == "changetype" {
                throw DirectoryError("\(what): line \(logicalLine): change records (changetype) are not supported; "
                                     + "the file must hold entries")
            }
            if let decoded { current?.append(name, value: Value(decoded)) } else { current?.append(name, bytes: rest) }
        }

        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            var number = 0
            var inComment = false
            while start <= bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != 0x0A { end += 1 }
                if start == bytes.count && end == start { break }
                number += 1
                var lineEnd = end
                if lineEnd > start, bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let line = UnsafeBufferPointer(rebasing: bytes[start..<lineEnd])
                if line.first == 0x20 && (inComment || !logical.isEmpty) {
                    if !inComment { logical.append(contentsOf: line.dropFirst()) }
                } else {
                    try finishLogical()
                    inComment = line.first == UInt8(ascii: "#")
                    if line.isEmpty {
                        if let entry = current { try body(entry) }
                        current = nil
                    } else if !inComment {
                        logical.append(contentsOf: line)
                        logicalLine = number
                    }
                }
                start = end + 1
            }
            try finishLogical()
            if let entry = current { try body(entry) }
        }
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

    /// Writes entries as LDIF to `sink`, in chunks.
    static func encode(_ entries: some Sequence<Entry>, to sink: (UnsafeRawBufferPointer) -> Void) {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16)
        out.append(contentsOf: "version: 1\n".utf8)
        func emit(_ name: String, _ value: some Collection<UInt8>) {
            let lineStart = out.count
            out.append(contentsOf: name.utf8)
            if isSafe(value) {
                out.append(UInt8(ascii: ":"))
                if !value.isEmpty { out.append(0x20); out.append(contentsOf: value) }
            } else {
                out.append(contentsOf: ":: ".utf8)
                out.append(contentsOf: Data(value).base64EncodedData())
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
        for entry in entries {
            out.append(0x0A)
            emit("dn", entry.dn.utf8)
            entry.forEachValue { name, value in emit(name.name, value) }
            if out.count >= 1 << 16 {
                out.withUnsafeBytes(sink)
                out.removeAll(keepingCapacity: true)
            }
        }
        out.withUnsafeBytes(sink)
    }
}
