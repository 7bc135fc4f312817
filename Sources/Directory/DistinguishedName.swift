/// RFC 4514 distinguished names: escaping values and comparing names.
public enum DistinguishedName {
    /// Escapes an attribute value for use in an RDN: `,` `+` `"` `\` `<` `>` `;`, a leading `#` or
    /// space, a trailing space, and NUL.
    public static func escape(_ value: String) -> String {
        func special(_ byte: UInt8) -> Bool {
            switch byte {
            case 0x2C, 0x2B, 0x22, 0x5C, 0x3C, 0x3E, 0x3B, 0x00: true
            default: false
            }
        }
        let utf8 = value.utf8
        if let first = utf8.first, first != 0x23, first != 0x20, utf8.last != 0x20, !utf8.contains(where: special) {
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

    /// A comparable form: attribute types lowercased, spaces around separators removed, and
    /// every escape written one way (`\2C` and `\,` are the same character; servers answer
    /// with hex escapes). Values keep their case (most directories match case-insensitively; we
    /// stay exact to be safe).
    public static func normalize(_ dn: String) -> String {
        if isNormal(dn) { return dn }
        let bytes = Array(dn.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var inType = true, pendingSpace = false
        var index = 0
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: byte - 0x30
            case 0x41...0x46: byte - 0x41 + 10
            case 0x61...0x66: byte - 0x61 + 10
            default: nil
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\\") where index < bytes.count:
                if pendingSpace { out.append(UInt8(ascii: " ")); pendingSpace = false }
                var value = bytes[index]
                if index + 1 < bytes.count, let high = hex(bytes[index]), let low = hex(bytes[index + 1]) {
                    value = high << 4 | low
                    index += 2
                } else {
                    index += 1
                }
                // Characters that need an escape keep one (a backslash and the character);
                // everything else, UTF-8 bytes included, stands as itself.
                if Self.special.contains(value) || value == UInt8(ascii: " ") || value == UInt8(ascii: "#") || value == 0 {
                    out.append(UInt8(ascii: "\\"))
                }
                out.append(value)
            case UInt8(ascii: ","), UInt8(ascii: "+"):
                out.append(byte); inType = true; pendingSpace = false
            case UInt8(ascii: "="):
                out.append(byte); inType = false; pendingSpace = false
            case UInt8(ascii: " "):
                if !inType && !out.isEmpty && out.last != UInt8(ascii: "=") { pendingSpace = true }
            default:
                if pendingSpace { out.append(UInt8(ascii: " ")); pendingSpace = false }
                out.append(inType && byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// True when `dn` is its own normal form: no escapes, no spaces, and attribute types in lower
    /// case (the common case, checked without allocating).
    static func isNormal(_ dn: String) -> Bool {
        var dn = dn
        return dn.withUTF8 { bytes in
            var inType = true
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\\"), UInt8(ascii: " "): return false
                case UInt8(ascii: ","), UInt8(ascii: "+"): inType = true
                case UInt8(ascii: "="): inType = false
                case 0x41...0x5A where inType: return false
                default: break
                }
            }
            return true
        }
    }

    /// Characters that are escaped inside an RDN value.
    static let special: Set<UInt8> = [0x2C, 0x2B, 0x22, 0x5C, 0x3C, 0x3E, 0x3B, 0x3D]
}
