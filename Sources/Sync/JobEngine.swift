import Directory
import Foundation
import Manifests

/// One job: its compiled mappings, and `plan` (which reads both sides and computes the
/// ChangeSet) and `apply` (which writes it).
///
/// Where the parts live: the mappings compiled and run on one row in `CompiledMappings.swift`;
/// a destination object diffed against its row in `ObjectDiff.swift`; the two ways to plan in
/// `FilePlanner.swift` and `ServerPlanner.swift`; writing a ChangeSet in `Apply.swift`.
public struct JobEngine: Sendable {
    public let name: String
    public let spec: JobSpec
    /// Whether a new destination entry needs a DN (directories do; CSV files do not).
    public let destinationNeedsDN: Bool
    /// Attributes whose values never appear in logs or previews.
    public let secretAttributes: Set<AttributeName>
    public var pageSize = 4096
    /// The most values one write request carries (the destination connection's
    /// `maxValuesPerRequest`): larger changes are split, in order.
    public var maxValuesPerRequest = 1_000
    /// Where each reference the mappings make leads (see `references` and `referenceTargets`).
    /// Planning a job that resolves values fails until every one of its references is here.
    public var resolved: [ValueReference: ReferenceTargets] = [:]
    /// Set when the job is planned only for the DNs it gives its rows: reference mappings are
    /// then left out (they name no object, and their targets are not needed).
    var ignoresReferences = false
    /// The attributes this job's objects must hold at least one value of (a `groupOfNames`'s
    /// `member`), worked out once from its object classes.
    let requiredMembers: Set<AttributeName>

    let filter: CompiledFilter?
    /// Every source field the job reads, with the manifest field naming it.
    let fieldUses: [FieldUse]
    let mappings: [CompiledMapping]
    let keyMappings: [CompiledMapping]
    /// `objectClass`, then every mapped destination attribute: the name list of desired entries.
    let destinationNames: [AttributeName]
    static let objectClass = AttributeName("objectClass")
    let objectClassBytes: [ArraySlice<UInt8>]
    /// Position of the rdn attribute in `destinationNames`.
    let rdnIndex: Int?
    /// The rdn attribute and the container as bytes, for checking DNs without strings.
    let rdnBytes: [UInt8]
    let containerBytes: [UInt8]

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
        rdnIndex = spec.destination.rdn.flatMap { names.firstIndex(of: AttributeName($0)) }
        rdnBytes = Array((spec.destination.rdn ?? "").utf8)
        containerBytes = Array((spec.destination.container ?? "").utf8)
        objectClassBytes = spec.destination.objectClass.map { Array($0.utf8)[...] }
        requiredMembers = Self.requiredMembers(objectClasses: spec.destination.objectClass)
        do {
            filter = try spec.source.filter.map { CompiledFilter(try FilterExpression.parse($0)) }
            mappings = try spec.mappings.map { m in
                let way: CompiledMapping.Way
                if let source = m.source {
                    way = .copy(AttributeName(source), separator: m.delimiter.map { Array($0.utf8) }.flatMap { $0.isEmpty ? nil : $0 })
                } else if let value = m.value {
                    way = .template(try ValueTemplate.parse(value))
                } else {
                    way = .generatePassword
                    secrets.insert(AttributeName(m.destination))
                }
                let generated = m.generate != nil
                let destination = AttributeName(m.destination)
                var dnShaped = false
                if case .template(let template) = way { dnShaped = template.isDNShaped }
                return CompiledMapping(destination: destination, index: names.firstIndex(of: destination) ?? 0,
                                       way: way, key: m.key, newOnly: m.key || m.newOnly || generated,
                                       dnShaped: dnShaped || m.resolve != nil, reference: m.resolve,
                                       failsRow: m.onUnresolved == .failRow, additive: m.membership == .additive,
                                       binaryAsText: !destinationNeedsDN,
                                       guid: Value.holdsGUIDs(destination) || m.source.map { Value.holdsGUIDs(AttributeName($0)) } == true)
            }
        } catch {
            throw TransformError("job \(name): \(error)")
        }
        self.secretAttributes = secrets
        keyMappings = mappings.filter(\.key)
        var uses: [FieldUse] = []
        for (index, mapping) in spec.mappings.enumerated() {
            if let source = mapping.source { uses.append(FieldUse(name: AttributeName(source), field: "spec.mappings[\(index)].source")) }
            if let value = mapping.value, let template = try? ValueTemplate.parse(value) {
                for name in template.fieldNames where !uses.contains(where: { $0.name == name }) {
                    uses.append(FieldUse(name: name, field: "spec.mappings[\(index)].value"))
                }
            }
        }
        if let text = spec.source.filter, let expression = try? FilterExpression.parse(text) {
            for field in expression.fields where !uses.contains(where: { $0.name == AttributeName(field) }) {
                uses.append(FieldUse(name: AttributeName(field), field: "spec.source.filter"))
            }
        }
        fieldUses = uses
    }

    // MARK: Planning
    /// Reads both sides and computes what the job would change. Writes nothing.
    ///
    /// A file destination is read as stored (an LDIF file's records unparsed) and indexed by key,
    /// while the source is already being read, filtered, mapped and keyed, a bounded way ahead;
    /// then source rows are matched and diffed on all cores, page by page, and settled in source
    /// order (the source is never held whole). A server destination is read while the source is read and
    /// mapped on a second thread; each page the server sends is then diffed as it comes, so the
    /// work hides behind the server's answers (`ServerPlanner.swift`). Both give the same result.
    ///
    /// A source row whose key is known claims the destination objects with that key, even when
    /// the row fails: they are never deleted for want of a match.
    public func plan(source: Directory, destination: Directory,
                     progress: ((JobProgress) -> Void)? = nil) throws -> ChangeSet {
        if !ignoresReferences, let missing = references.first(where: { resolved[$0] == nil }) {
            throw TransformError("job \(name): the reference \(missing.summary) was not looked up before planning")
        }
        var set = destination.traits.readsFromServer && source !== destination
            ? try planAgainstServer(source: source, destination: destination, progress: progress)
            : try planAgainstFile(source: source, destination: destination, progress: progress)
        deferSelfReferences(&set)
        set.guardViolation = guardViolation(set)
        return set
    }

    func tally(_ change: consuming ObjectChange?, matched: Bool, into set: inout ChangeSet) {
        if let change {
            set.changes.append(change)
        } else if matched {
            set.unchanged += 1
        } else {
            set.skipped += 1
        }
    }

    func deletion(of dn: String) -> ObjectChange {
        ObjectChange(action: .delete, dn: dn, newDN: nil, attributes: [], operations: [.delete(dn: dn)])
    }

    func duplicateReason(_ key: String) -> String {
        "its key \(describe(key)) appears more than once in the source"
    }

    func ambiguousReason(_ key: String) -> String {
        "its key \(describe(key)) matches more than one destination object"
    }
    func guardViolation(_ set: ChangeSet) -> String? {
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

    func describe(_ key: String) -> String {
        "'" + key.split(separator: "\u{1F}", omittingEmptySubsequences: false).map { Value.showKey(String($0)) }.joined(separator: "', '") + "'"
    }
    /// Wall-clock laps, in milliseconds.
    struct Stopwatch {
        private var last = DispatchTime.now().uptimeNanoseconds
        mutating func lap() -> Double {
            let now = DispatchTime.now().uptimeNanoseconds
            defer { last = now }
            return Double(now - last) / 1e6
        }
    }
}
