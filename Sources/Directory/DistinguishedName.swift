/// RFC 4514 distinguished names: escaping values and comparing names.
public enum DistinguishedName {
    /// Escapes an attribute value for use in an RDN: `,` `+` `"` `\` `<` `>` `;`, a leading `#` or
    /// space, a trailing space, and NUL.
    public static func escape(_ value: String) -> String {
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

    /// A comparable form: attribute types lowercased, spaces around separators removed. Values
    /// keep their case (most directories match case-insensitively; we stay exact to be safe).
    public static func normalize(_ dn: String) -> String {
        var out = ""
        var escaped = false
        var inType = true
        var pendingSpace = false
        for c in dn {
            if escaped { out.append(c); escaped = false; continue }
            switch c {
            case "\\": out.append(c); escaped = true
            case ",", "+":
                out.append(c); inType = true; pendingSpace = false
            case "=":
                out.append(c); inType = false; pendingSpace = false
            case " ":
                if !inType && !out.isEmpty && out.last != "=" { pendingSpace = true }
            default:
                if pendingSpace { out.append(" "); pendingSpace = false }
                out.append(inType ? Character(c.lowercased()) : c)
            }
        }
        return out
    }
}
