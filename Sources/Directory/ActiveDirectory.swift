import Foundation

/// How Active Directory wants an object's changes written (`flavor: activeDirectory`), worked
/// out before anything is sent:
///
/// - `unicodePwd` values are written as AD takes them: the password in double quotes, in
///   UTF-16LE. (A value already so encoded is left as it is.)
/// - An account is created in AD's order: **disabled** (its `userAccountControl` with
///   ACCOUNTDISABLE set), **then its password**, **then enabled** (the `userAccountControl` the
///   mapping gave), the last two in one modify request. A failure after the first step leaves
///   the account disabled, and its error says so.
/// - `sAMAccountName` longer than 20 characters is refused before it is sent (Windows refuses
///   it; Samba does not, and such an account cannot log on to Windows).
/// - The server's terse refusals of a taken `sAMAccountName` or `userPrincipalName` say what to do.
public enum ActiveDirectory {
    public static let password = AttributeName("unicodePwd")
    public static let accountControl = AttributeName("userAccountControl")
    public static let accountName = AttributeName("sAMAccountName")
    /// userAccountControl's ACCOUNTDISABLE flag.
    public static let disabled = 0x2
    /// The longest sAMAccountName Windows accepts for a user or group.
    public static let accountNameLimit = 20

    /// One step of an object's changes, and what its failure means for the object.
    public struct Step: Sendable, Equatable {
        public var change: DirectoryChange
        /// Put before the server's reason when this step fails: set for the steps after a
        /// create, whose object then exists (disabled).
        public var afterCreate: String?
    }

    /// The steps for one object's changes; throws (sending nothing) when a change breaks a rule
    /// the server would not report clearly.
    public static func steps(for changes: [DirectoryChange]) throws -> [Step] {
        var out: [Step] = []
        for change in changes {
            switch change {
            case .add(let entry):
                out += try creation(of: entry)
            case .modify(let dn, let modifications):
                try checkAccountName(dn: dn, modifications.filter { $0.attribute == accountName && $0.operation != .delete }
                    .flatMap(\.values))
                var kept: [Modification] = []
                var target = dn
                for m in modifications {
                    if m.attribute == password {
                        kept.append(Modification(m.operation, m.attribute, m.values.map(encodedPassword)))
                    } else if let rename = renaming(dn, by: m) {
                        // AD refuses to modify the naming attribute: it is renamed instead, and
                        // nothing is sent when the name is already so (after a rename step).
                        if let rename, case .rename(_, let newRDN, let newSuperior) = rename {
                            out.append(Step(change: rename, afterCreate: nil))
                            target = DistinguishedName.renamed(dn, newRDN: newRDN, newSuperior: newSuperior)
                        }
                    } else {
                        kept.append(m)
                    }
                }
                if !kept.isEmpty { out.append(Step(change: .modify(dn: target, kept), afterCreate: nil)) }
            case .delete, .rename:
                out.append(Step(change: change, afterCreate: nil))
            }
        }
        return out
    }

    /// For a modification of `dn`'s naming attribute (its RDN's type, `cn` for users and
    /// groups): `.some(nil)` when it sets the value the RDN already has, `.some(rename)` when it
    /// sets another single value, nil when it is not such a modification.
    static func renaming(_ dn: String, by m: Modification) -> DirectoryChange?? {
        guard m.operation == .replace, m.values.count == 1, let text = m.values[0].text,
              let first = DistinguishedName.parse(dn)?.first, first.count == 1,
              AttributeName(first[0].type) == m.attribute else { return nil }
        if first[0].value == Array(text.utf8) { return .some(nil) }
        return .some(.rename(dn: dn, newRDN: DistinguishedName.make(rdnAttribute: first[0].type, value: text, container: ""),
                             newSuperior: nil))
    }

    /// Create disabled, set the password, enable: as many of these steps as the entry needs.
    static func creation(of entry: Entry) throws -> [Step] {
        try checkAccountName(dn: entry.dn, entry[accountName])
        let passwords = entry[password]
        let control = entry[accountControl].first.flatMap { $0.text.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
        // Nothing to order: no password, and no account to enable.
        guard !passwords.isEmpty || control.map({ $0 & disabled == 0 }) == true else { return [Step(change: .add(entry), afterCreate: nil)] }
        var first = entry
        first[password] = []
        if let control { first[accountControl] = [Value(String(control | disabled))] }
        // The password and the enabling go in one modify request, in that order: AD applies a
        // request's modifications in order, and all or none of them, so the account is enabled
        // only with its password set, and one round trip is saved.
        var then: [Modification] = []
        if !passwords.isEmpty { then.append(Modification(.replace, password, passwords.map(encodedPassword))) }
        let enables = control.map { $0 & disabled == 0 } ?? false
        if let control, enables { then.append(Modification(.replace, accountControl, [Value(String(control))])) }
        var steps = [Step(change: .add(first), afterCreate: nil)]
        if !then.isEmpty {
            let what = passwords.isEmpty ? "could not be enabled" : enables ? "its password was not set, nor was it enabled"
                : "its password was not set"
            steps.append(Step(change: .modify(dn: entry.dn, then), afterCreate: "created disabled, but \(what), so it stays disabled"))
        }
        return steps
    }

    /// `"password"` in UTF-16LE, as AD's `unicodePwd` takes it; a value already so is kept.
    public static func encodedPassword(_ value: Value) -> Value {
        let bytes = value.bytes
        if bytes.count >= 4, bytes.first == 0x22, bytes[bytes.startIndex + 1] == 0x00 { return value }
        var out = Data()
        out.reserveCapacity(bytes.count * 2 + 4)
        for unit in "\"\(value.text ?? "")\"".utf16 { out.append(UInt8(unit & 0xFF)); out.append(UInt8(unit >> 8)) }
        return Value(out)
    }

    static func checkAccountName(dn: String, _ values: [Value]) throws {
        for value in values {
            let name = value.text ?? ""
            guard name.count > accountNameLimit else { continue }
            throw DirectoryError.object(dn: dn, problem: "sAMAccountName '\(name)' has \(name.count) characters, and Active "
                + "Directory takes at most \(accountNameLimit); map a shorter value (for example {{login | left(20)}})")
        }
    }

    /// The server's reason, with what to do when it is a taken account name.
    public static func explain(_ reason: String) -> String {
        let lower = reason.lowercased()
        if lower.contains("samaccountname") && (lower.contains("already in use") || lower.contains("already exists")) {
            return reason + "; sAMAccountName is unique in the whole domain (not only in the container): "
                + "another object has this one, so map a value that tells the two apart"
        }
        if lower.contains("userprincipalname") && lower.contains("already in use") {
            return reason + "; userPrincipalName is unique in the whole forest: another object has this one"
        }
        return reason
    }
}
