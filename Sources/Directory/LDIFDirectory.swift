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
        for entry in try LDIFCodec.parse(data, what: "\(what): \(location.label)") {
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
        try AtomicFile.write(LDIFCodec.encode(table.live), to: path, what: what)
        dirty = false
    }
}

/// RFC 2849 content records, on bytes.
public enum LDIFCodec {
    /// Parses content records. `what` names the file in errors.
    public static func parse(_ data: Data, what: String) throws -> [Entry] {
        let bytes = [UInt8](data)
        // Logical lines: unfolded, with the number of the physical line each starts on.
        var lines: [(number: Int, text: [UInt8])] = []
        var number = 0
        var start = 0
        var inComment = false
        func physical(_ raw: ArraySlice<UInt8>) {
            number += 1
            var line = raw
            if line.last == 0x0D { line = line.dropLast() }
            if line.first == 0x20 { // a continuation
                if inComment { return }
                if let lastIndex = lines.indices.last, !lines[lastIndex].text.isEmpty {
                    lines[lastIndex].text.append(contentsOf: line.dropFirst())
                    return
                }
            }
            inComment = line.first == UInt8(ascii: "#")
            if inComment { return }
            lines.append((number, Array(line)))
        }
        for i in 0..<bytes.count where bytes[i] == 0x0A {
            physical(bytes[start..<i])
            start = i + 1
        }
        if start < bytes.count { physical(bytes[start..<bytes.count]) }

        var entries: [Entry] = []
        var current: Entry?
        var sawRecord = false
        for (lineNumber, text) in lines {
            if text.isEmpty {
                if let entry = current { entries.append(entry) }
                current = nil
                continue
            }
            guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else {
                throw DirectoryError("\(what): line \(lineNumber): expected 'name: value'")
            }
            let name = String(decoding: text[..<colon], as: UTF8.self)
            var rest = text[(colon + 1)...]
            let value: Data
            if rest.first == UInt8(ascii: ":") {
                rest = rest.dropFirst().drop { $0 == 0x20 }
                guard let decoded = Data(base64Encoded: Data(rest)) else {
                    throw DirectoryError("\(what): line \(lineNumber): the base64 value of \(name) is not valid")
                }
                value = decoded
            } else if rest.first == UInt8(ascii: "<") {
                throw DirectoryError("\(what): line \(lineNumber): URL values (\(name):<) are not supported")
            } else {
                value = Data(rest.drop { $0 == 0x20 })
            }
            if current == nil {
                if !sawRecord && name.lowercased() == "version" {
                    sawRecord = true
                    continue
                }
                guard name.lowercased() == "dn" else {
                    throw DirectoryError("\(what): line \(lineNumber): a record must start with dn:, found \(name):")
                }
                guard let dn = String(data: value, encoding: .utf8) else {
                    throw DirectoryError("\(what): line \(lineNumber): the DN is not valid UTF-8")
                }
                current = Entry(dn: dn)
                sawRecord = true
                continue
            }
            if name.lowercased() == "changetype" {
                throw DirectoryError("\(what): line \(lineNumber): change records (changetype) are not supported; "
                                     + "the file must hold entries")
            }
            current?[AttributeName(name)].append(Value(value))
        }
        if let entry = current { entries.append(entry) }
        return entries
    }

    /// True when `bytes` may be written as-is (RFC 2849 SAFE-STRING, and no trailing space).
    static func isSafe(_ bytes: Data) -> Bool {
        guard let first = bytes.first else { return true }
        if first == 0x20 || first == UInt8(ascii: ":") || first == UInt8(ascii: "<") { return false }
        if bytes.last == 0x20 { return false }
        return !bytes.contains { $0 == 0 || $0 == 0x0A || $0 == 0x0D || $0 > 0x7F }
    }

    /// Writes entries as LDIF, beginning with `version: 1`.
    public static func encode(_ entries: [Entry]) -> Data {
        var out = Data()
        out.reserveCapacity(entries.count * 200)
        out.append(contentsOf: Array("version: 1\n".utf8))
        var line: [UInt8] = []
        func emit(_ name: String, _ value: Data) {
            line.removeAll(keepingCapacity: true)
            line.append(contentsOf: name.utf8)
            if isSafe(value) {
                line.append(UInt8(ascii: ":"))
                if !value.isEmpty { line.append(0x20); line.append(contentsOf: value) }
            } else {
                line.append(contentsOf: Array(":: ".utf8))
                line.append(contentsOf: value.base64EncodedData())
            }
            // Fold at 76 bytes; only ASCII is ever written, so no character is split.
            if line.count <= 76 {
                out.append(contentsOf: line)
            } else {
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
            emit("dn", Data(entry.dn.utf8))
            for (name, values) in entry.attributes {
                for value in values { emit(name.name, value.bytes) }
            }
        }
        return out
    }
}
