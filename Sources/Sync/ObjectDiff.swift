import Directory
import Foundation
import Manifests

/// What a row's desired entry comes to: a new object, or the changes to an existing one.
extension JobEngine {
    func create(_ desired: Entry) throws(TransformError) -> ObjectChange {
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
            if !requiredMembers.isEmpty, requiredMembers.contains(mapping.destination), desired.firstValue(at: mapping.index) == nil {
                throw emptyGroup(mapping.destination)
            }
        }
        // The entry itself says what is written; `attributes` lists changes to existing objects only.
        guard entry.valueCount > maxValuesPerRequest else {
            return ObjectChange(action: .create, dn: dn, newDN: nil, attributes: [], payload: .entry(entry))
        }
        // Too many values for one request: the entry is added with the first value of each
        // attribute and as many more as fit, and the rest follow in modifies.
        var first = Entry(dn: dn), rest: [Modification] = []
        var room = maxValuesPerRequest
        entry.forEachAttribute { name, values in
            room -= 1
            first.append(name, bytes: values[0])
            let fitting = max(0, min(values.count - 1, room))
            for value in values[1..<1 + fitting] { first.append(name, bytes: value) }
            room -= fitting
            if 1 + fitting < values.count { rest.append(Modification(.add, name, values[(1 + fitting)...].map { Value(Data($0)) })) }
        }
        let operations = [DirectoryChange.add(first)]
            + Self.chunked(rest, limit: maxValuesPerRequest).map { DirectoryChange.modify(dn: dn, $0) }
        return ObjectChange(action: .create, dn: dn, newDN: nil, attributes: [], payload: .operations(operations))
    }

    func emptyGroup(_ attribute: AttributeName) -> TransformError {
        let classes = spec.destination.objectClass.joined(separator: ", ")
        return TransformError("it would have no \(attribute) values, and an object of class \(classes) needs at least one; "
                              + "the group is left as it is")
    }

    func update(_ current: Entry, desired: Entry) throws(TransformError) -> ObjectChange? {
        var operations: [DirectoryChange] = []
        var dn = current.dn
        var newDN: String?
        // The same spelling is the common case, and needs no DN built or normalised.
        if !spelledAsComputed(current.dn, desired), let computed = try computedDN(desired), computed != current.dn,
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
            let currentIndex = current.index(of: mapping.destination, hint: mapping.index)
            // One value each side (the common case) is compared in place. Otherwise the values
            // that differ are found byte for byte in linear time: a one-member change to a large
            // group copies out two values, not the lists.
            let several = desired.hasSeveralValues(at: mapping.index) || currentIndex.map { current.hasSeveralValues(at: $0) } ?? false
            if !several, desired.sameValues(at: mapping.index, as: current, at: currentIndex) { continue }
            var (added, removed, count, had) = desired.valueDifference(at: mapping.index, from: current, at: currentIndex)
            if mapping.dnShaped { (added, removed) = Self.sameNamesLeftOut(added, removed) }
            if mapping.additive { removed = [] }
            if added.isEmpty && removed.isEmpty { continue }
            let after = mapping.additive ? had + added.count : count
            if after == 0, requiredMembers.contains(mapping.destination) { throw emptyGroup(mapping.destination) }
            let addedValues = added.map { Value(Data($0)) }, removedValues = removed.map { Value(Data($0)) }
            if had > 1 || after > 1, had > 0, after > 0 {
                // Several values change value by value: deleted first (a server that compares
                // without case then takes `a` for `A`), then added.
                attributes.append(AttributeChange(attribute: mapping.destination, added: addedValues, removed: removedValues, countAfter: after))
                if !removedValues.isEmpty { modifications.append(Modification(.delete, mapping.destination, removedValues)) }
                if !addedValues.isEmpty { modifications.append(Modification(.add, mapping.destination, addedValues)) }
                continue
            }
            let oldValues = current.values(of: mapping.destination).map { Value(Data($0)) }
            let newValues = mapping.additive ? oldValues + addedValues : desired.values(at: mapping.index).map { Value(Data($0)) }
            attributes.append(AttributeChange(attribute: mapping.destination, old: oldValues, new: newValues))
            modifications += Self.modifications(of: mapping.destination, from: oldValues, to: newValues, asDNs: mapping.dnShaped)
        }
        for chunk in Self.chunked(modifications, limit: maxValuesPerRequest) { operations.append(.modify(dn: dn, chunk)) }
        guard !operations.isEmpty else { return nil }
        return ObjectChange(action: newDN == nil ? .update : .rename, dn: current.dn, newDN: newDN,
                            attributes: attributes, operations: operations)
    }

    /// `modifications` packed, in order, into modify requests of at most `limit` values each:
    /// an add or a delete is split across requests where it does not fit. A replace (one value)
    /// or a delete of every value counts as one and is never split.
    static func chunked(_ modifications: [Modification], limit: Int) -> [[Modification]] {
        var requests: [[Modification]] = [], current: [Modification] = [], room = max(1, limit)
        func flush() {
            if !current.isEmpty { requests.append(current) }
            (current, room) = ([], max(1, limit))
        }
        for modification in modifications {
            guard modification.operation != .replace, !modification.values.isEmpty else {
                if room < 1 { flush() }
                current.append(modification)
                room -= 1
                continue
            }
            var rest = modification.values[...]
            while !rest.isEmpty {
                if room < 1 { flush() }
                let part = rest.prefix(room)
                current.append(Modification(modification.operation, modification.attribute, Array(part)))
                room -= part.count
                rest = rest.dropFirst(part.count)
            }
        }
        flush()
        return requests
    }

    /// How an attribute goes from `old` to `new` values. A multi-valued attribute (a group's
    /// `member`, a list of phones) changes value by value: the values that went are deleted and
    /// the new ones added, in one modify, so a one-member change to a large group sends one
    /// value, not the whole list (and leaves alone what others added meanwhile). Otherwise the
    /// values are replaced, or deleted when none are left. `asDNs`: values that name the same
    /// DN, however spelled, are the same value.
    static func modifications(of attribute: AttributeName, from old: [Value], to new: [Value], asDNs: Bool) -> [Modification] {
        if new.isEmpty { return [Modification(.delete, attribute, [])] }
        // An attribute without values gets its values added (as a replace would), so that a
        // large list can be sent in chunks.
        if old.isEmpty { return [Modification(new.count > 1 ? .add : .replace, attribute, new)] }
        guard old.count > 1 || new.count > 1 else { return [Modification(.replace, attribute, new)] }
        let kept = Set(new), had = Set(old)
        var removed = old.filter { !kept.contains($0) }.map { Array($0.bytes)[...] }
        var added = new.filter { !had.contains($0) }.map { Array($0.bytes)[...] }
        if asDNs { (added, removed) = sameNamesLeftOut(added, removed) }
        // Deleted first: a server that compares without case then takes `a` for `A`.
        return (removed.isEmpty ? [] : [Modification(.delete, attribute, removed.map { Value(Data($0)) })])
            + (added.isEmpty ? [] : [Modification(.add, attribute, added.map { Value(Data($0)) })])
    }

    /// `added` and `removed` DNs without those that name the same object, however spelled
    /// (`cn=x\3Dy` and `cn=x=y`): only the values that differ as bytes are parsed.
    static func sameNamesLeftOut(_ added: [ArraySlice<UInt8>], _ removed: [ArraySlice<UInt8>])
        -> ([ArraySlice<UInt8>], [ArraySlice<UInt8>]) {
        guard !added.isEmpty, !removed.isEmpty else { return (added, removed) }
        let name = { (value: ArraySlice<UInt8>) in DistinguishedName.normalize(String(decoding: value, as: UTF8.self)) }
        let addedNames = Set(added.map(name)), removedNames = Set(removed.map(name))
        return (added.filter { !removedNames.contains(name($0)) }, removed.filter { !addedNames.contains(name($0)) })
    }
}
