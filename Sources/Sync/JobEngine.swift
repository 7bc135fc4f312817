import Directory
import Foundation
import Manifests

/// Runs one job: read, filter, map, match by key, compute the ChangeSet, and apply it.
public struct JobEngine: Sendable {
    public let name: String
    public let spec: JobSpec
    /// Whether a new destination entry needs a DN (directories do; CSV files do not).
    public let destinationNeedsDN: Bool
    /// Attributes whose values never appear in logs or previews.
    public let secretAttributes: Set<AttributeName>
    public var pageSize = 4096

    private let filter: CompiledFilter?
    private let mappings: [CompiledMapping]
    private let keyMappings: [CompiledMapping]
    /// `objectClass`, then every mapped destination attribute: the name list of desired entries.
    private let destinationNames: [AttributeName]
    static let objectClass = AttributeName("objectClass")
    private let objectClassBytes: [ArraySlice<UInt8>]

    struct CompiledMapping: Sendable {
        enum Way: Sendable { case copy(AttributeName, delimiter: String?), template(ValueTemplate), generatePassword }
        let destination: AttributeName
        /// Position of `destination` in `destinationNames`.
        let index: Int
        let way: Way
        let key: Bool
        /// Written on create only (keys and generated values always are).
        let newOnly: Bool
    }

    /// Compiles the job. Filters and templates were checked at validate time; a failure here is
    /// reported as the job's error.
    public init(name: String, spec: JobSpec, destinationNeedsDN: Bool,
                secretAttributes: Set<AttributeName> = ["userPassword", "unicodePwd"]) throws {
        self.name = name
        self.spec = spec
        self.destinationNeedsDN = destinationNeedsDN
        var secrets = secretAttributes
        var names: [AttributeName] = [Self.objectClass]
        for mapping in spec.mappings where !names.contains(AttributeName(mapping.destination)) {
            names.append(AttributeName(mapping.destination))
        }
        destinationNames = names
        objectClassBytes = spec.destination.objectClass.map { Array($0.utf8)[...] }
        do {
            filter = try spec.source.filter.map { CompiledFilter(try FilterExpression.parse($0)) }
            mappings = try spec.mappings.map { m in
                let way: CompiledMapping.Way
                if let source = m.source {
                    way = .copy(AttributeName(source), delimiter: m.delimiter)
                } else if let value = m.value {
                    way = .template(try ValueTemplate.parse(value))
                } else {
                    way = .generatePassword
                    secrets.insert(AttributeName(m.destination))
                }
                let generated = m.generate != nil
                let destination = AttributeName(m.destination)
                return CompiledMapping(destination: destination, index: names.firstIndex(of: destination) ?? 0,
                                       way: way, key: m.key, newOnly: m.key || m.newOnly || generated)
            }
        } catch {
            throw TransformError("job \(name): \(error)")
        }
        self.secretAttributes = secrets
        keyMappings = mappings.filter(\.key)
    }

    // MARK: Planning

    /// Reads both sides and computes what the job would change. Writes nothing.
    public func plan(source: Directory, destination: Directory,
                     progress: ((JobProgress) -> Void)? = nil) throws -> ChangeSet {
        var set = ChangeSet()
        // The destination, indexed by key.
        var current: [Entry] = []
        var byKey: [String: Int] = [:]
        var ambiguous: Set<String> = []
        try destination.read(destinationScope, pageSize: pageSize) { page in
            for entry in page {
                guard let key = destinationKey(entry) else { continue }
                if byKey[key] != nil { ambiguous.insert(key) }
                byKey[key] = current.count
                current.append(entry)
            }
        }
        set.managed = current.count
        var matched = [Bool](repeating: false, count: current.count)
        var seenSource: Set<String> = []

        // Rows are mapped, keyed and diffed on all cores (the destination index is read-only by
        // now); duplicates and matches are then settled in source order.
        let index = byKey, existing = current, ambiguousKeys = ambiguous
        try source.read(sourceScope, pageSize: pageSize) { page in
            let rows = ParallelParts.map(page) { entry in
                outcome(for: entry, index: index, existing: existing, ambiguous: ambiguousKeys)
            }
            for (entry, row) in zip(page, rows) {
                switch row {
                case .filteredOut:
                    continue
                case .failed(let reason):
                    set.read += 1
                    set.failures.append(ObjectFailure(object: entry.dn, reason: reason))
                case .planned(let key, let match, let change):
                    set.read += 1
                    guard seenSource.insert(key).inserted else {
                        set.failures.append(ObjectFailure(object: entry.dn,
                                                          reason: "its key \(describe(key)) appears more than once in the source"))
                        continue
                    }
                    if let match { matched[match] = true }
                    if let change {
                        set.changes.append(change)
                    } else if match != nil {
                        set.unchanged += 1
                    } else {
                        set.skipped += 1
                    }
                }
                if set.read % 10_000 == 0 { progress?(JobProgress(job: name, phase: .reading, done: set.read, total: nil)) }
            }
        }
        if spec.delete {
            for (index, entry) in current.enumerated() where !matched[index] {
                set.changes.append(ObjectChange(action: .delete, dn: entry.dn, newDN: nil, attributes: [],
                                                operations: [.delete(dn: entry.dn)]))
            }
        }
        set.guardViolation = guardViolation(set)
        return set
    }

    /// What one source row comes to, computed independently of the other rows.
    enum RowOutcome: Sendable {
        case filteredOut
        case failed(String)
        /// `match`: the destination entry's position, if any; `change`: nil for unchanged or skipped.
        case planned(key: String, match: Int?, change: ObjectChange?)
    }

    func outcome(for entry: Entry, index: [String: Int], existing: [Entry], ambiguous: Set<String>) -> RowOutcome {
        if let filter, !filter.matches(entry) { return .filteredOut }
        do throws(TransformError) {
            let desired = try desired(for: entry)
            let key = try sourceKey(desired)
            if ambiguous.contains(key) {
                throw TransformError("its key \(describe(key)) matches more than one destination object")
            }
            if let match = index[key] {
                return .planned(key: key, match: match, change: try update(existing[match], desired: desired))
            }
            return .planned(key: key, match: nil, change: spec.create ? try create(desired) : nil)
        } catch {
            return .failed(error.message)
        }
    }

    private func guardViolation(_ set: ChangeSet) -> String? {
        if set.read == 0 && !spec.allowEmptySource {
            return "the source returned no entries, so nothing was changed (set allowEmptySource: true if that is expected)"
        }
        let deletes = set.count(.delete)
        guard deletes > 0 else { return nil }
        if let count = spec.deleteThreshold.count, deletes > count {
            return "would delete \(deletes), threshold \(count); nothing was changed (raise deleteThreshold if that is expected)"
        }
        if let percent = spec.deleteThreshold.percent, set.managed > 0, deletes * 100 > percent * set.managed {
            return "would delete \(deletes) of \(set.managed) (\(deletes * 100 / set.managed)%), threshold \(percent)%; "
                + "nothing was changed (raise deleteThreshold if that is expected)"
        }
        return nil
    }

    private func describe(_ key: String) -> String {
        "'" + key.replacingOccurrences(of: "\u{1F}", with: "', '") + "'"
    }

    /// The mapped values for a source entry, as an entry over `destinationNames` (no DN yet).
    /// Generated values are left out here; they are made on create.
    func desired(for entry: Entry) throws(TransformError) -> Entry {
        var out = Entry(dn: "", names: destinationNames, reservingBytes: entry.byteCount + 64,
                        values: entry.valueCount + objectClassBytes.count + 4)
        // objectClass first, as directories print it; updates compare mapped attributes only.
        for objectClass in objectClassBytes { out.append(at: 0, bytes: objectClass) }
        for mapping in mappings {
            switch mapping.way {
            case .copy(let field, let delimiter):
                guard let column = entry.index(of: field) else { continue }
                if let delimiter {
                    let separator = Array(delimiter.utf8)
                    entry.forEachValue(at: column) { value in
                        for part in Value.split(value, by: separator) { out.append(at: mapping.index, bytes: part) }
                    }
                } else {
                    entry.forEachValue(at: column) { out.append(at: mapping.index, bytes: $0) }
                }
            case .template(let template):
                let text = try template.render(entry)
                if !text.isEmpty { out.append(at: mapping.index, bytes: Array(text.utf8)[...]) }
            case .generatePassword:
                break
            }
        }
        return out
    }

    private func sourceKey(_ desired: Entry) throws(TransformError) -> String {
        var parts: [String] = []
        for mapping in keyMappings {
            guard let first = desired.firstValue(at: mapping.index) else {
                throw TransformError("its key \(mapping.destination) is empty")
            }
            parts.append(String(decoding: first, as: UTF8.self))
        }
        return parts.count == 1 ? parts[0] : parts.joined(separator: "\u{1F}")
    }

    func destinationKey(_ entry: Entry) -> String? {
        var parts: [String] = []
        for mapping in keyMappings {
            guard let index = entry.index(of: mapping.destination), let first = entry.firstValue(at: index) else { return nil }
            parts.append(String(decoding: first, as: UTF8.self))
        }
        return parts.count == 1 ? parts[0] : parts.joined(separator: "\u{1F}")
    }

    private func computedDN(_ desired: Entry) throws(TransformError) -> String? {
        guard let rdn = spec.destination.rdn, let container = spec.destination.container else { return nil }
        guard let index = destinationNames.firstIndex(of: AttributeName(rdn)),
              let first = desired.firstValue(at: index), !first.isEmpty,
              let value = String(validating: first, as: UTF8.self) else {
            throw TransformError("its rdn attribute \(rdn) is empty, so it has no DN")
        }
        return DistinguishedName.make(rdnAttribute: rdn, value: value, container: container)
    }

    private func create(_ desired: Entry) throws(TransformError) -> ObjectChange {
        let dn = try computedDN(desired) ?? ""
        if destinationNeedsDN && dn.isEmpty {
            throw TransformError("the job gives no container and rdn, so a new destination entry would have no DN")
        }
        var entry = desired
        entry.dn = dn
        for mapping in mappings {
            if case .generatePassword = mapping.way {
                entry.append(at: mapping.index, bytes: Array(PasswordGenerator.make().utf8)[...])
            }
        }
        // The entry itself says what is written; `attributes` lists changes to existing objects only.
        return ObjectChange(action: .create, dn: dn, newDN: nil, attributes: [], payload: .entry(entry))
    }

    private func update(_ current: Entry, desired: Entry) throws(TransformError) -> ObjectChange? {
        var operations: [DirectoryChange] = []
        var dn = current.dn
        var newDN: String?
        // The same spelling is the common case, and needs no normalising.
        if let computed = try computedDN(desired), computed != current.dn,
           DistinguishedName.normalize(computed) != DistinguishedName.normalize(current.dn) {
            let (newRDN, newParent) = DistinguishedName.split(computed)
            let oldParent = DistinguishedName.split(current.dn).parent
            let moves = DistinguishedName.normalize(newParent) != DistinguishedName.normalize(oldParent)
            operations.append(.rename(dn: current.dn, newRDN: newRDN, newSuperior: moves ? newParent : nil))
            newDN = computed
            dn = computed
        }
        var attributes: [AttributeChange] = []
        var modifications: [Modification] = []
        for mapping in mappings where !mapping.newOnly {
            let currentIndex = current.index(of: mapping.destination)
            if desired.sameValues(at: mapping.index, as: current, at: currentIndex) { continue }
            let new = desired.values(at: mapping.index)
            let old = current.values(of: mapping.destination)
            let newValues = new.map { Value(Data($0)) }
            attributes.append(AttributeChange(attribute: mapping.destination, old: old.map { Value(Data($0)) }, new: newValues))
            modifications.append(newValues.isEmpty ? Modification(.delete, mapping.destination, [])
                                                   : Modification(.replace, mapping.destination, newValues))
        }
        if !modifications.isEmpty { operations.append(.modify(dn: dn, modifications)) }
        guard !operations.isEmpty else { return nil }
        return ObjectChange(action: newDN == nil ? .update : .rename, dn: current.dn, newDN: newDN,
                            attributes: attributes, operations: operations)
    }
}

