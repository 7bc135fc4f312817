import Directory
import Foundation
import Manifests

/// Runs one job: read, filter, map, match by key, compute the ChangeSet, and apply it.
public struct JobEngine {
    public let name: String
    public let spec: JobSpec
    /// Whether a new destination entry needs a DN (directories do; CSV files do not).
    public let destinationNeedsDN: Bool
    /// Attributes whose values never appear in logs or previews.
    public let secretAttributes: Set<AttributeName>
    public var pageSize = 1000

    private let filter: FilterExpression?
    private let mappings: [CompiledMapping]
    private let keyMappings: [CompiledMapping]

    struct CompiledMapping {
        enum Way { case copy(AttributeName, delimiter: String?), template(ValueTemplate), generatePassword }
        let destination: AttributeName
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
        do {
            filter = try spec.source.filter.map { try FilterExpression.parse($0) }
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
                return CompiledMapping(destination: AttributeName(m.destination), way: way, key: m.key,
                                       newOnly: m.key || m.newOnly || generated)
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
        try destination.read(base: spec.destination.container, pageSize: pageSize) { page in
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

        try source.read(base: spec.source.base, pageSize: pageSize) { page in
            for entry in page {
                if let filter, !filter.matches(entry) { continue }
                set.read += 1
                if set.read % 10_000 == 0 { progress?(JobProgress(job: name, phase: .reading, done: set.read, total: nil)) }
                do {
                    let desired = try desiredAttributes(for: entry)
                    let key = try sourceKey(desired, entry: entry)
                    guard seenSource.insert(key).inserted else {
                        throw TransformError("its key \(describe(key)) appears more than once in the source")
                    }
                    if ambiguous.contains(key) {
                        throw TransformError("its key \(describe(key)) matches more than one destination object")
                    }
                    if let index = byKey[key] {
                        matched[index] = true
                        if let change = try update(current[index], desired: desired) {
                            set.changes.append(change)
                        } else {
                            set.unchanged += 1
                        }
                    } else if spec.create {
                        set.changes.append(try create(desired))
                    } else {
                        set.skipped += 1
                    }
                } catch let error as TransformError {
                    set.failures.append(ObjectFailure(object: entry.dn, reason: error.message))
                }
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

    /// The mapped values for a source entry, in mapping order. Generated values are left out here.
    func desiredAttributes(for entry: Entry) throws(TransformError) -> [(CompiledMapping, [Value])] {
        var out: [(CompiledMapping, [Value])] = []
        out.reserveCapacity(mappings.count)
        for mapping in mappings {
            switch mapping.way {
            case .copy(let field, let delimiter):
                var values = entry[field]
                if let delimiter {
                    values = values.flatMap { value -> [Value] in
                        guard let text = value.text else { return [value] }
                        return text.components(separatedBy: delimiter)
                            .map { $0.trimmingCharacters(in: .whitespaces) }
                            .filter { !$0.isEmpty }.map { Value($0) }
                    }
                }
                out.append((mapping, values))
            case .template(let template):
                let text = try template.render(entry)
                out.append((mapping, text.isEmpty ? [] : [Value(text)]))
            case .generatePassword:
                out.append((mapping, []))
            }
        }
        return out
    }

    private func sourceKey(_ desired: [(CompiledMapping, [Value])], entry: Entry) throws(TransformError) -> String {
        var parts: [String] = []
        for (mapping, values) in desired where mapping.key {
            guard let first = values.first else {
                throw TransformError("its key \(mapping.destination) is empty")
            }
            parts.append(first.description)
        }
        return parts.joined(separator: "\u{1F}")
    }

    func destinationKey(_ entry: Entry) -> String? {
        var parts: [String] = []
        for mapping in keyMappings {
            guard let first = entry[mapping.destination].first else { return nil }
            parts.append(first.description)
        }
        return parts.joined(separator: "\u{1F}")
    }

    private func computedDN(_ desired: [(CompiledMapping, [Value])]) throws(TransformError) -> String? {
        guard let rdn = spec.destination.rdn, let container = spec.destination.container else { return nil }
        let name = AttributeName(rdn)
        guard let value = desired.first(where: { $0.0.destination == name })?.1.first?.text, !value.isEmpty else {
            throw TransformError("its rdn attribute \(rdn) is empty, so it has no DN")
        }
        return DistinguishedName.make(rdnAttribute: rdn, value: value, container: container)
    }

    private func create(_ desired: [(CompiledMapping, [Value])]) throws(TransformError) -> ObjectChange {
        let dn = try computedDN(desired) ?? ""
        if destinationNeedsDN && dn.isEmpty {
            throw TransformError("the job gives no container and rdn, so a new destination entry would have no DN")
        }
        var entry = Entry(dn: dn)
        if !spec.destination.objectClass.isEmpty {
            entry["objectClass"] = spec.destination.objectClass.map { Value($0) }
        }
        var attributes: [AttributeChange] = []
        for (mapping, values) in desired {
            var values = values
            if case .generatePassword = mapping.way { values = [Value(PasswordGenerator.make())] }
            guard !values.isEmpty else { continue }
            entry[mapping.destination] = values
            attributes.append(AttributeChange(attribute: mapping.destination, old: [], new: values))
        }
        return ObjectChange(action: .create, dn: dn, newDN: nil, attributes: attributes, operations: [.add(entry)])
    }

    private func update(_ current: Entry, desired: [(CompiledMapping, [Value])]) throws(TransformError) -> ObjectChange? {
        var operations: [DirectoryChange] = []
        var dn = current.dn
        var newDN: String?
        if let computed = try computedDN(desired),
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
        for (mapping, values) in desired where !mapping.newOnly {
            let old = current[mapping.destination]
            guard Set(old) != Set(values) || old.count != values.count else { continue }
            attributes.append(AttributeChange(attribute: mapping.destination, old: old, new: values))
            modifications.append(values.isEmpty ? Modification(.delete, mapping.destination, [])
                                                : Modification(.replace, mapping.destination, values))
        }
        if !modifications.isEmpty { operations.append(.modify(dn: dn, modifications)) }
        guard !operations.isEmpty else { return nil }
        return ObjectChange(action: newDN == nil ? .update : .rename, dn: current.dn, newDN: newDN,
                            attributes: attributes, operations: operations)
    }
}
