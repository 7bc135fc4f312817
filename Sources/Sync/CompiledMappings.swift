import Directory
import Foundation
import Manifests

/// A job's mappings, compiled: what one source row maps to, and the keys that match rows to
/// destination objects.
extension JobEngine {
    struct CompiledMapping: Sendable {
        /// `copy`'s separator: the mapping's delimiter as bytes.
        enum Way: Sendable { case copy(AttributeName, separator: [UInt8]?), template(ValueTemplate), generatePassword }
        let destination: AttributeName
        /// Position of `destination` in `destinationNames`.
        let index: Int
        let way: Way
        let key: Bool
        /// Written on create only (keys and generated values always are).
        let newOnly: Bool
        /// A template that makes DNs, or a reference: its values compare as DNs (a server may
        /// spell them otherwise).
        var dnShaped = false
        /// Each value names another object, whose DN is written instead.
        var reference: ValueReference?
        /// A value that does not resolve fails the row (`onUnresolved: failRow`).
        var failsRow = false
        /// Values are only added, never removed (`membership: additive`).
        var additive = false
        /// The destination holds text only (a CSV file): a copied binary value is written as
        /// text, a GUID (`objectGUID`) in its usual form and anything else as `base64:…`.
        var binaryAsText = false
        /// The source or destination attribute holds GUIDs (`Value.holdsGUIDs`).
        var guid = false
    }

    /// The mapped values for a source entry, as an entry over `destinationNames` (no DN yet).
    /// Generated values are left out here; they are made on create.
    /// Where each mapping finds its fields in a source entry's name list, worked out once for
    /// all the entries that share the list (a CSV file's rows share its header).
    struct SourceColumns: Sendable {
        /// An entry with the name list these positions are for.
        let sample: Entry
        /// Per mapping: the copied field's position.
        let copy: [Int?]
        /// Per mapping: each template field's position.
        let template: [[Int?]]
    }

    func sourceColumns(for entry: Entry) -> SourceColumns {
        var copy: [Int?] = [], template: [[Int?]] = []
        for mapping in mappings {
            switch mapping.way {
            case .copy(let field, _):
                copy.append(entry.index(of: field)); template.append([])
            case .template(let value):
                copy.append(nil); template.append(value.fieldNames.map { entry.index(of: $0) })
            case .generatePassword:
                copy.append(nil); template.append([])
            }
        }
        return SourceColumns(sample: entry, copy: copy, template: template)
    }

    /// The mapped entry, adding to `notes` why a value was left out, and to `unresolved` how
    /// many reference values named no object (they are left out too).
    func desired(for entry: Entry, columns given: SourceColumns?, notes: inout [String],
                 unresolved: inout Int) throws(TransformError) -> Entry {
        let columns = given.flatMap { entry.sharesNames(with: $0.sample) ? $0 : nil }
        var out = Entry(dn: "", names: destinationNames, reservingBytes: entry.byteCount + 64,
                        values: entry.valueCount + objectClassBytes.count + 4)
        // Which source fields have several values, found once per row when a template asks.
        var multiValued: (mask: UInt64, beyond64: Bool)?
        // objectClass first, as directories print it; updates compare mapped attributes only.
        for objectClass in objectClassBytes { out.append(at: 0, bytes: objectClass) }

        for (position, mapping) in mappings.enumerated() {
            guard let reference = mapping.reference else {
                try emit(mapping, position, of: entry, columns: columns, into: &out, at: mapping.index,
                         multiValued: &multiValued, notes: &notes)
                continue
            }
            // A reference's values are looked up one by one, and each becomes the DN it names.
            guard !ignoresReferences, let targets = resolved[reference] else { continue }
            var names = Entry(dn: "", names: [mapping.destination], reservingBytes: 256, values: 8)
            try emit(mapping, position, of: entry, columns: columns, into: &names, at: 0, multiValued: &multiValued, notes: &notes)
            var missing: [String] = [], ambiguous: [String] = []
            names.forEachValue(at: 0) { value in
                let text = Value.key(value)
                switch targets.lookup(text) {
                case .found(let dn): out.append(at: mapping.index, bytes: Array(dn.utf8)[...])
                case .missing: missing.append(text)
                case .ambiguous: ambiguous.append(text)
                }
            }
            guard !missing.isEmpty || !ambiguous.isEmpty else { continue }
            unresolved += missing.count + ambiguous.count
            let reason = targets.unresolvedReason(attribute: mapping.destination, missing: missing, ambiguous: ambiguous)
            if mapping.failsRow { throw TransformError(reason + " (onUnresolved: failRow)") }
            notes.append(reason)
        }
        // A directory holds each value of an attribute once: `555;555` is the one value 555.
        return out.withoutRepeatedValues()
    }
    /// The mapping's values for `entry`, appended to `target` at `index`. `multiValued` is which
    /// source fields have several values, found once per row when a template asks. (A method,
    /// not a closure: it captures nothing, so a row allocates nothing for it.)
    func emit(_ mapping: CompiledMapping, _ position: Int, of entry: Entry, columns: SourceColumns?, into target: inout Entry,
              at index: Int, multiValued: inout (mask: UInt64, beyond64: Bool)?, notes: inout [String]) throws(TransformError) {
        switch mapping.way {
        case .copy(let field, let separator):
            guard let column = columns.map({ $0.copy[position] }) ?? entry.index(of: field) else { return }
            if let separator {
                entry.forEachRawValue(at: column) { value in
                    Bytes.forEachPart(of: value, separatedBy: separator) { target.append(at: index, bytes: UnsafeRawBufferPointer(rebasing: value[$0])) }
                }
            } else if mapping.binaryAsText {
                entry.forEachRawValue(at: column) { value in
                    if !(mapping.guid && Value.isBinaryGUID(value)), Bytes.isUTF8(value) {
                        target.append(at: index, bytes: value)
                    } else {
                        Array(Value.show(value, guid: mapping.guid).utf8).withUnsafeBytes { target.append(at: index, bytes: $0) }
                    }
                }
            } else {
                entry.forEachRawValue(at: column) { target.append(at: index, bytes: $0) }
            }
        case .template(let template):
            // Rendered straight into the entry's buffer; an empty result adds no value. A
            // field with several values renders once per value; two such fields are an error.
            let fields = columns?.template[position] ?? template.fieldNames.map { entry.index(of: $0) }
            if multiValued == nil { multiValued = entry.namesWithSeveralValues() }
            let multi = multiValued ?? (0, false)
            var several: Int?
            for case let column? in fields where column != several
                && (column < 64 ? multi.mask & (1 << UInt64(column)) != 0 : multi.beyond64 && entry.hasSeveralValues(at: column)) {
                if let several {
                    throw TransformError("the template of \(mapping.destination) reads \(entry.name(at: several)) and "
                        + "\(entry.name(at: column)), which both have several values; a template may take several values from one field only")
                }
                several = column
            }
            func render(_ pinned: (column: Int, value: ArraySlice<UInt8>)?) throws(TransformError) {
                var emptyField: String?
                let before = target.valueCount
                try target.appendValue(at: index) { (bytes: inout [UInt8]) throws(TransformError) in
                    let start = bytes.count
                    try template.render(entry, appendingTo: &bytes, columns: fields, pinned: pinned,
                                        dnShaped: mapping.dnShaped && mapping.reference == nil, emptyInRDN: &emptyField)
                    // A DN with an empty RDN value is never written: the value is left out.
                    if emptyField != nil { bytes.removeSubrange(start...) }
                }
                if let emptyField, target.valueCount == before {
                    notes.append("\(mapping.destination) left out: {{\(emptyField)}} is empty, so the DN would be malformed")
                }
            }
            if let several {
                var failure: TransformError?
                entry.forEachValue(at: several) { value in
                    guard failure == nil else { return }
                    do throws(TransformError) { try render((several, value)) } catch { failure = error }
                }
                if let failure { throw failure }
            } else {
                try render(nil)
            }
        case .generatePassword:
            break
        }
    }

    /// A key from each key mapping's first value (`part`), joined by U+001F when there are
    /// several; nil when a part is missing. The one rule behind every key a job compares.
    @inline(__always)
    func key(_ part: (CompiledMapping) -> String?) -> String? {
        if keyMappings.count == 1 { return part(keyMappings[0]) }
        var parts: [String] = []
        parts.reserveCapacity(keyMappings.count)
        for mapping in keyMappings {
            guard let value = part(mapping) else { return nil }
            parts.append(value)
        }
        return parts.joined(separator: "\u{1F}")
    }

    /// A source row's key, from its desired entry.
    func sourceKey(_ desired: Entry) throws(TransformError) -> String {
        if let key = key({ desired.firstValue(at: $0.index).map { Value.key($0) } }) { return key }
        let empty = keyMappings.first { desired.firstValue(at: $0.index) == nil }
        throw TransformError("its key \(empty?.destination ?? "") is empty")
    }

    /// `destinationKey` of an object as its directory stores it, read without parsing it.
    func destinationKey(_ stored: StoredEntry) -> String? {
        key { stored.firstValueText(of: $0.destination, hint: $0.index) }
    }

    /// A destination object's key.
    func destinationKey(_ entry: Entry) -> String? {
        key { mapping in
            entry.index(of: mapping.destination, hint: mapping.index)
                .flatMap { entry.firstValue(at: $0) }
                .map { Value.key($0) }
        }
    }

    func computedDN(_ desired: Entry) throws(TransformError) -> String? {
        guard let rdn = spec.destination.rdn, let container = spec.destination.container else { return nil }
        guard let index = rdnIndex, let first = desired.firstValue(at: index), !first.isEmpty,
              let value = String(validating: first, as: UTF8.self) else {
            throw TransformError("its rdn attribute \(rdn) is empty, so it has no DN")
        }
        return DistinguishedName.make(rdnAttribute: rdn, value: value, container: container)
    }

    /// Whether `dn` is spelled exactly as `computedDN(desired)` would make it, checked on bytes
    /// without building the DN (the common case of an update: the object stays where it is).
    func spelledAsComputed(_ dn: String, _ desired: Entry) -> Bool {
        guard !rdnBytes.isEmpty, spec.destination.container != nil, let index = rdnIndex,
              let value = desired.firstValue(at: index), !value.isEmpty else { return false }
        return DistinguishedName.isSpelled(dn, rdnAttribute: rdnBytes, value: value, container: containerBytes)
    }

    /// True when an object at `dn` would not be renamed for `desired`: it is where the job puts
    /// it, or the job gives no rdn and container. (False may still mean no rename.)
    func keepsDN(_ dn: String, _ desired: Entry) -> Bool {
        guard spec.destination.rdn != nil, spec.destination.container != nil else { return true }
        return spelledAsComputed(dn, desired)
    }
}
