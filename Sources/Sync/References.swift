import Concurrency
import Directory
import Foundation
import Manifests

/// Where the values of one reference lead: each value that names an object, with that object's
/// DN at the destination.
public struct ReferenceTargets: Sendable {
    /// What the values are looked up in, for messages: `job hr-users-to-corp (by key)`.
    public let source: String
    /// Lookup value → DN.
    private var dns: [String: String] = [:]
    /// Values that name two or more objects: they name none.
    private var ambiguous: Set<String> = []
    /// Values are DNs, compared as names (`from: dn`).
    private let valuesAreDNs: Bool
    /// Values are also matched without case when no value matches exactly (a directory's
    /// attribute usually compares so), as long as that names one object.
    private let foldsCase: Bool
    private var folded: [String: String] = [:]
    private var foldedAmbiguous: Set<String> = []
    /// For DN values: each spelling added, with its name, so that a value spelled the same
    /// (the common case: both jobs read one directory) is found without parsing it.
    private var names: [String: String] = [:]

    /// `value` as the key it is stored under: a DN's name, a spelling seen before without parsing.
    private func storedKey(_ value: String) -> String {
        guard valuesAreDNs else { return value }
        return names[value] ?? DistinguishedName.normalize(value)
    }

    init(source: String, valuesAreDNs: Bool, foldsCase: Bool) {
        self.source = source
        self.valuesAreDNs = valuesAreDNs
        self.foldsCase = foldsCase
    }

    /// How many values lead somewhere.
    public var count: Int { dns.count }

    mutating func add(_ value: String, dn: String) {
        let spelling = value
        let value = storedKey(value)
        if valuesAreDNs { names[spelling] = value }
        if ambiguous.contains(value) { return }
        if let other = dns.updateValue(dn, forKey: value), DistinguishedName.normalize(other) != DistinguishedName.normalize(dn) {
            dns[value] = nil
            ambiguous.insert(value)
        }
        if foldsCase {
            let lower = value.lowercased()
            if foldedAmbiguous.contains(lower) { return }
            if let other = folded.updateValue(dn, forKey: lower), DistinguishedName.normalize(other) != DistinguishedName.normalize(dn) {
                folded[lower] = nil
                foldedAmbiguous.insert(lower)
            }
        }
    }

    /// Marks a value as naming no one object (its rows failed, or it is held twice).
    mutating func markAmbiguous(_ value: String) {
        let value = storedKey(value)
        dns[value] = nil
        ambiguous.insert(value)
    }

    public enum Lookup: Equatable { case found(String), missing, ambiguous }

    public func lookup(_ value: String) -> Lookup {
        let value = storedKey(value)
        if let dn = dns[value] { return .found(dn) }
        if ambiguous.contains(value) { return .ambiguous }
        if foldsCase {
            let lower = value.lowercased()
            if let dn = folded[lower] { return .found(dn) }
            if foldedAmbiguous.contains(lower) { return .ambiguous }
        }
        return .missing
    }

    /// One sentence on the values of `attribute` that did not resolve (a few are named).
    func unresolvedReason(attribute: AttributeName, missing: [String], ambiguous: [String]) -> String {
        func list(_ values: [String]) -> String {
            let shown = values.prefix(5).map { "'\(Value.showKey($0))'" }.joined(separator: ", ")
            return values.count > 5 ? "\(shown) and \(values.count - 5) more" : shown
        }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("\(list(missing)) \(missing.count == 1 ? "names" : "name") no object of \(source)") }
        if !ambiguous.isEmpty {
            parts.append("\(list(ambiguous)) \(ambiguous.count == 1 ? "names" : "name") more than one object of \(source)")
        }
        let count = missing.count + ambiguous.count
        return "\(attribute): \(count) value\(count == 1 ? "" : "s") left out: " + parts.joined(separator: "; ")
    }
}

extension ValueReference {
    /// `job hr-users-to-corp (by login)`, `attribute employeeNumber under ou=People,…`.
    public var summary: String {
        if let job {
            if let by { return "job \(job) (by \(by))" }
            if from == .dn { return "job \(job) (by source DN)" }
            return "job \(job) (by key)"
        }
        let base = self.base.map { " under \($0)" } ?? ""
        return "attribute \(attribute ?? "")\(base) at the destination"
    }
}

extension JobEngine {
    /// Every reference the mappings make, once each.
    public var references: [ValueReference] {
        var seen: [ValueReference] = []
        for mapping in mappings { if let reference = mapping.reference, !seen.contains(reference) { seen.append(reference) } }
        return seen
    }

    /// True when some mapping resolves through this job's own rows (a manager in the same export).
    public var referencesItself: Bool { mappings.contains { $0.reference?.job == name } }

    /// The DN this job gives each of its source rows at its destination, by the value
    /// `reference` looks up: the row's key, its `by` column, or (`from: dn`) its source DN.
    ///
    /// Worked out as a plan would, read-only: a row matched at the destination gives the DN the
    /// object will have after this job ran (where it is, or where its rdn and container move it);
    /// a row without a match gives the DN it would be created at, when the job creates. A row
    /// that fails, shares its key, or has no DN gives none; a value two rows hold names none.
    ///
    /// With `planNext` (the job refers to its own rows, and is planned right after), the two
    /// directories are asked to keep what this reads (`keepNextRead`), and the destination is
    /// read with the plan's scope, so that the plan need not search either again.
    public func referenceTargets(for reference: ValueReference, source: Directory, destination: Directory,
                                 planNext: Bool = false) throws -> ReferenceTargets {
        var engine = self
        engine.ignoresReferences = true
        var targets = ReferenceTargets(source: reference.summary, valuesAreDNs: reference.from == .dn, foldsCase: false)
        var scope = sourceScope
        if let by = reference.by, var names = scope.attributes, !names.contains(AttributeName(by)) {
            names.append(AttributeName(by))
            scope.attributes = names
        }
        let byName = reference.by.map { AttributeName($0) }
        // Each source row, mapped on all cores: its key, the values that look it up, and its
        // computed DN, read on a second thread while this one reads the destination (unless
        // the job reads and writes one directory).
        struct Row: Sendable { let key: String; let lookups: [String]; let computed: String?; let desired: Entry }
        let handed = HandedOver(source)
        let readSource = { @Sendable [engine, scope] () throws -> (rows: [Row], found: Bool) in
            var rows: [Row] = [], found = false
            try handed.value.read(scope, pageSize: engine.pageSize) { page in
                if let byName, !found { found = page.contains { $0.index(of: byName) != nil } }
                let columns = page.first.map { engine.sourceColumns(for: $0) }
                rows += ParallelParts.map(page) { entry -> Row? in
                    guard case .keyed(let key, let desired) = engine.prepare(entry, columns).prepared else { return nil }
                    var lookups: [String] = []
                    if let byName {
                        if let column = entry.index(of: byName) {
                            entry.forEachValue(at: column) { lookups.append(Value.key($0)) }
                        }
                    } else {
                        lookups = [reference.from == .dn ? entry.dn : key]
                    }
                    return Row(key: key, lookups: lookups, computed: try? engine.computedDN(desired), desired: desired)
                }.compactMap { $0 }
            }
            return (rows, found)
        }
        let early = source !== destination ? Background(readSource) : nil
        // The destination's objects by key (only the key attributes are read, unless the plan
        // reads next and keeps what this reads).
        var placed: [String: String] = [:]
        var twice: Set<String> = []
        let keyScope = planNext ? destinationScope : ReadScope(base: spec.destination.container, attributes: keyMappings.map(\.destination))
        if planNext {
            if scope == sourceScope { source.keepNextRead(of: scope) } // (a `by` column widens it)
            destination.keepNextRead(of: keyScope)
        }
        do {
            try destination.readStored(keyScope, pageSize: pageSize) { page in
                for entry in page {
                    guard let key = destinationKey(entry) else { continue }
                    if placed.updateValue(entry.dn, forKey: key) != nil { twice.insert(key) }
                }
            }
        } catch {
            _ = try? early?.value()
            throw error
        }
        let (rows, found) = try early?.value() ?? readSource()
        var keysSeen: [String: [String]] = [:] // key → lookup values of its rows
        for row in rows {
            if let earlier = keysSeen[row.key] {
                // Two rows with one key fail when the job runs: neither names an object.
                for value in earlier + row.lookups { targets.markAmbiguous(value) }
                keysSeen[row.key] = earlier + row.lookups
                continue
            }
            keysSeen[row.key] = row.lookups
            // A key two destination objects hold fails the row when the job runs.
            if twice.contains(row.key) { for value in row.lookups { targets.markAmbiguous(value) }; continue }
            let dn: String?
            if let current = placed[row.key] {
                // Where the job leaves it: in place, unless its rdn and container move it.
                dn = keepsDN(current, row.desired) || row.computed.map({ DistinguishedName.normalize($0) == DistinguishedName.normalize(current) }) ?? true
                    ? current : row.computed
            } else {
                dn = spec.create ? row.computed : nil
            }
            guard let dn, !dn.isEmpty else { continue }
            for value in row.lookups { targets.add(value, dn: dn) }
        }
        if let by = reference.by, !found, !keysSeen.isEmpty {
            // A column no row has is most likely misspelled: every value would be unresolved.
            throw TransformError("resolve by '\(by)': no source row of job \(name) has a field \(by), so no value could resolve; "
                                 + "check the column's name in the job's source")
        }
        return targets
    }

    /// Each value of `attribute` held by an object below `base` (the whole destination when
    /// nil), with that object's DN: `resolve: { attribute, base }`.
    public static func attributeTargets(_ reference: ValueReference, destination: Directory, pageSize: Int) throws -> ReferenceTargets {
        let attribute = AttributeName(reference.attribute ?? "")
        var targets = ReferenceTargets(source: reference.summary, valuesAreDNs: false, foldsCase: true)
        let filter = "(\(attribute)=*)"
        try destination.read(ReadScope(base: reference.base, attributes: [attribute], filter: filter), pageSize: pageSize) { page in
            for entry in page {
                guard let column = entry.index(of: attribute) else { continue }
                entry.forEachValue(at: column) { targets.add(Value.key($0), dn: entry.dn) }
            }
        }
        return targets
    }

    /// In a job that refers to its own rows, a reference to an object this run creates or
    /// renames is written after every create and rename of the job: a server that checks
    /// references (Active Directory) refuses a DN that does not exist yet. Creates lose those
    /// values (a follow-up modify adds them, counted with the create); an update that adds one
    /// moves to the end.
    func deferSelfReferences(_ set: inout ChangeSet) {
        let attributes = Set(mappings.filter { $0.reference?.job == name }.map(\.destination))
        guard !attributes.isEmpty, !set.changes.isEmpty else { return }
        var arriving: Set<String> = []
        for change in set.changes {
            switch change.action {
            case .create where !change.dn.isEmpty: arriving.insert(DistinguishedName.normalize(change.dn))
            case .rename: if let newDN = change.newDN { arriving.insert(DistinguishedName.normalize(newDN)) }
            default: break
            }
        }
        guard !arriving.isEmpty else { return }
        func arrives(_ value: some Collection<UInt8>) -> Bool { arriving.contains(DistinguishedName.normalize(String(decoding: value, as: UTF8.self))) }
        var first: [ObjectChange] = [], later: [ObjectChange] = []
        first.reserveCapacity(set.changes.count)
        for change in set.changes {
            switch change.payload {
            case .entry(let entry) where change.action == .create:
                var kept = Entry(dn: entry.dn)
                var moved: [Modification] = []
                var movedChanges: [AttributeChange] = []
                entry.forEachAttribute { name, values in
                    guard attributes.contains(name) else {
                        for value in values { kept.append(name, bytes: value) }
                        return
                    }
                    var stay = values.filter { !arrives($0) }
                    var go = values.filter { arrives($0) }
                    // A group must keep one member to be created at all.
                    if stay.isEmpty, !go.isEmpty, requiredMembers.contains(name) {
                        stay.append(go.removeFirst())
                    }
                    for value in stay { kept.append(name, bytes: value) }
                    if !go.isEmpty {
                        let values = go.map { Value(Data($0)) }
                        moved.append(Modification(.add, name, values))
                        movedChanges.append(AttributeChange(attribute: name, added: values, removed: [], countAfter: stay.count + values.count))
                    }
                }
                guard !moved.isEmpty else { first.append(change); continue }
                first.append(ObjectChange(action: .create, dn: change.dn, newDN: nil, attributes: [], payload: .entry(kept)))
                var followUp = ObjectChange(action: .update, dn: change.dn, newDN: nil, attributes: movedChanges,
                                            operations: Self.chunked(moved, limit: maxValuesPerRequest).map { .modify(dn: change.dn, $0) })
                followUp.completesCreate = true
                later.append(followUp)
            case .operations(let operations) where change.action == .update || change.action == .rename:
                let addsArriving = operations.contains { operation in
                    guard case .modify(_, let modifications) = operation else { return false }
                    return modifications.contains { $0.operation != .delete && attributes.contains($0.attribute) && $0.values.contains { arrives($0.bytes) } }
                }
                if addsArriving { later.append(change) } else { first.append(change) }
            default:
                first.append(change)
            }
        }
        guard !later.isEmpty else { return }
        set.secondPassStart = first.count
        set.changes = first + later
    }

    /// The attributes an object of these classes must hold at least one value of, which a job
    /// that maps them must never leave empty: a `groupOfNames` needs a `member`.
    static func requiredMembers(objectClasses: [String]) -> Set<AttributeName> {
        var names: Set<AttributeName> = []
        for objectClass in objectClasses {
            switch objectClass.lowercased() {
            case "groupofnames": names.insert("member")
            case "groupofuniquenames": names.insert("uniqueMember")
            default: break
            }
        }
        return names
    }
}
