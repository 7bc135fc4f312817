/// RFC 4514 distinguished names: escaping values and comparing names.
public enum DistinguishedName {
    /// Escapes an attribute value for use in an RDN: `,` `+` `"` `\` `<` `>` `;`, a leading `#` or
    /// space, a trailing space, NUL, and TAB, CR, LF, VT and FF (in hex, `\09`).
    public static func escape(_ value: String) -> String {
        func special(_ byte: UInt8) -> Bool {
            switch byte {
            case 0x2C, 0x2B, 0x22, 0x5C, 0x3C, 0x3E, 0x3B, 0x00: true
            default: false
            }
        }
        let utf8 = value.utf8
        func blank(_ byte: UInt8?) -> Bool { byte.map { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) } ?? false }
        if let first = utf8.first, first != 0x23, !blank(first), !blank(utf8.last), !utf8.contains(where: special) {
            return value // nothing to escape: the common case
        }
        var out = ""
        out.reserveCapacity(value.utf8.count)
        let scalars = Array(value.unicodeScalars)
        for (index, scalar) in scalars.enumerated() {
            switch scalar {
            case ",", "+", "\"", "\\", "<", ">", ";":
                out.append("\\"); out.unicodeScalars.append(scalar)
            case "#" where index == 0:
                out.append("\\#")
            case " " where index == 0 || index == scalars.count - 1:
                out.append("\\ ")
            case "\t", "\n", "\u{0B}", "\u{0C}", "\r":
                // Control characters are written in hex: a server would strip them as blanks at
                // either end, and they are invisible in the middle.
                out.append(String(format: "\\%02X", scalar.value))
            case "\u{0}":
                out.append("\\00")
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `attribute=escaped(value),container`
    public static func make(rdnAttribute: String, value: String, container: String) -> String {
        container.isEmpty ? "\(rdnAttribute)=\(escape(value))" : "\(rdnAttribute)=\(escape(value)),\(container)"
    }

    /// Whether `dn` is spelled exactly as `make(rdnAttribute:value:container:)` spells it, checked
    /// on bytes without building the DN (the common case of an update: the object stays where it
    /// is). A value that needs escaping is never taken to match: callers then build and compare.
    public static func isSpelled(_ dn: String, rdnAttribute: [UInt8], value: ArraySlice<UInt8>, container: [UInt8]) -> Bool {
        guard value.first != 0x23, value.first != 0x20, value.last != 0x20,
              !value.contains(where: {
                  switch $0 {
                  case 0x2C, 0x2B, 0x22, 0x5C, 0x3C, 0x3E, 0x3B, 0x00: true
                  default: false
                  }
              }) else { return false }
        var dn = dn
        return dn.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            let expected = rdnAttribute.count + 1 + value.count + (container.isEmpty ? 0 : 1 + container.count)
            guard bytes.count == expected, Bytes.matches(bytes, at: 0, rdnAttribute) else { return false }
            var i = rdnAttribute.count
            guard bytes[i] == UInt8(ascii: "=") else { return false }
            i += 1
            guard value.withUnsafeBytes({ Bytes.matches(bytes, at: i, $0) }) else { return false }
            i += value.count
            guard !container.isEmpty else { return true }
            return bytes[i] == UInt8(ascii: ",") && Bytes.matches(bytes, at: i + 1, container)
        }
    }

    /// The DN an object at `dn` has after a rename to `newRDN`, under `newSuperior` (or where it is).
    public static func renamed(_ dn: String, newRDN: String, newSuperior: String?) -> String {
        let parent = newSuperior ?? split(dn).parent
        return parent.isEmpty ? newRDN : "\(newRDN),\(parent)"
    }

    /// Splits a DN into its first RDN and the rest, honouring escapes.
    public static func split(_ dn: String) -> (rdn: String, parent: String) {
        var escaped = false
        for index in dn.indices {
            let c = dn[index]
            if escaped { escaped = false; continue }
            if c == "\\" { escaped = true; continue }
            if c == "," {
                return (String(dn[..<index]), String(dn[dn.index(after: index)...]).trimmingCharacters(in: .whitespaces))
            }
        }
        return (dn, "")
    }

    /// A comparable form, after an RFC 4514 parse: attribute types lowercased; each value
    /// unescaped (`\3D`, `\=` and `=` are one character, as are `\20` and a space) and written
    /// again one way; spaces around separators dropped and runs of spaces inside a value made
    /// one (as servers compare names); the values of a multi-valued RDN in one order. Values keep
    /// their case (most directories match case-insensitively; we stay exact to be safe). A DN that
    /// does not parse is its own normal form.
    public static func normalize(_ dn: String) -> String {
        if isNormal(dn) { return dn }
        guard let rdns = parse(dn) else { return dn }
        var out: [UInt8] = []
        for (index, rdn) in rdns.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            let avas = rdn.map { (type: Array($0.type.lowercased().utf8), value: canonicalValue($0.value)) }
                .sorted { $0.type.lexicographicallyPrecedes($1.type) || ($0.type == $1.type && $0.value.lexicographicallyPrecedes($1.value)) }
            for (position, ava) in avas.enumerated() {
                if position > 0 { out.append(UInt8(ascii: "+")) }
                out += ava.type
                out.append(UInt8(ascii: "="))
                out += ava.value
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A value escaped one way: runs of spaces made one, and escapes only where needed.
    private static func canonicalValue(_ value: [UInt8]) -> [UInt8] {
        var collapsed: [UInt8] = []
        collapsed.reserveCapacity(value.count)
        for byte in value where !(byte == 0x20 && collapsed.last == 0x20) { collapsed.append(byte) }
        return Array(escape(String(decoding: collapsed, as: UTF8.self)).utf8)
    }

    /// One attribute type and value of an RDN, the value unescaped.
    public struct AttributeValue: Sendable, Equatable {
        public let type: String
        public let value: [UInt8]
    }

    /// The RDNs of `dn` (each a list of type and unescaped value), or nil when it is not a DN by
    /// RFC 4514 (leniently: spaces around `=`, `,` and `+` are allowed, as RFC 2253 parsers do).
    /// A `#` value (BER) is kept as written, lowercased.
    public static func parse(_ dn: String) -> [[AttributeValue]]? {
        let bytes = Array(dn.utf8)
        var rdns: [[AttributeValue]] = []
        var rdn: [AttributeValue] = []
        var index = 0
        func skipSpaces() { while index < bytes.count, bytes[index] == 0x20 { index += 1 } }
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: byte - 0x30
            case 0x41...0x46: byte - 0x41 + 10
            case 0x61...0x66: byte - 0x61 + 10
            default: nil
            }
        }
        skipSpaces()
        if index == bytes.count { return [] }
        while true {
            skipSpaces()
            let typeStart = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "="), bytes[index] != 0x20 { index += 1 }
            let type = String(decoding: bytes[typeStart..<index], as: UTF8.self)
            skipSpaces()
            guard !type.isEmpty, index < bytes.count, bytes[index] == UInt8(ascii: "=") else { return nil }
            index += 1
            skipSpaces()
            var value: [UInt8] = []
            if index < bytes.count, bytes[index] == UInt8(ascii: "#") {
                while index < bytes.count, bytes[index] != UInt8(ascii: ","), bytes[index] != UInt8(ascii: "+"),
                      bytes[index] != 0x20 {
                    let byte = bytes[index]
                    value.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
                    index += 1
                }
                value.insert(UInt8(ascii: "\\"), at: 0) // keeps the BER form apart from a text value "#…"
            } else {
                var trailingPlainSpaces = 0
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ";") { break }
                    if byte == UInt8(ascii: "\\") {
                        guard index + 1 < bytes.count else { return nil }
                        if index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                            value.append(high << 4 | low)
                            index += 3
                        } else {
                            value.append(bytes[index + 1])
                            index += 2
                        }
                        trailingPlainSpaces = 0
                        continue
                    }
                    value.append(byte)
                    trailingPlainSpaces = byte == 0x20 ? trailingPlainSpaces + 1 : 0
                    index += 1
                }
                value.removeLast(trailingPlainSpaces) // unescaped spaces before a separator are not part of the value
            }
            rdn.append(AttributeValue(type: type, value: value))
            skipSpaces()
            if index == bytes.count {
                rdns.append(rdn)
                return rdns
            }
            if bytes[index] == UInt8(ascii: "+") {
                index += 1
                continue
            }
            // `,` or (RFC 1779) `;`
            rdns.append(rdn)
            rdn = []
            index += 1
        }
    }

    /// True when `dn` is its own normal form: no escapes, no spaces, and attribute types in lower
    /// case (the common case, checked without allocating).
    static func isNormal(_ dn: String) -> Bool {
        var dn = dn
        return dn.withUTF8 { bytes in
            var inType = true
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\\"), UInt8(ascii: " "), UInt8(ascii: "+"), UInt8(ascii: ";"), UInt8(ascii: "#"),
                     UInt8(ascii: "\""): return false
                case UInt8(ascii: ","), UInt8(ascii: "+"): inType = true
                case UInt8(ascii: "="): inType = false
                case 0x41...0x5A where inType: return false
                default: break
                }
            }
            return true
        }
    }
}
