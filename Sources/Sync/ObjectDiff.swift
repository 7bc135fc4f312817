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
        }
        // The entry itself says what is written; `attributes` lists changes to existing objects only.
        return ObjectChange(action: .create, dn: dn, newDN: nil, attributes: [], payload: .entry(entry))
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
            if desired.sameValues(at: mapping.index, as: current, at: currentIndex) { continue }
            let new = desired.values(at: mapping.index)
            let old = current.values(of: mapping.destination)
            if mapping.dnShaped {
                // The server may spell a DN otherwise (`cn=x\3Dy` for `cn=x=y`): the same names are no change.
                let names = { (values: [ArraySlice<UInt8>]) in Set(values.map { DistinguishedName.normalize(String(decoding: $0, as: UTF8.self)) }) }
                if names(new) == names(old) { continue }
            }
            let newValues = new.map { Value(Data($0)) }
            attributes.append(AttributeChange(attribute: mapping.destination, old: old.map { Value(Data($0)) }, new: newValues))
            modifications.append(newValues.isEmpty ? Modification(.delete, mapping.destination, [])
                                                   : Modification(.replace, mapping.destination, newValues))
        }
        if !modifications.isEmpty { operations.append(.modify(dn: dn, modifications)) }
        guard !operations.isEmpty else { return nil }
        return ObjectChange(action: newDN == nil ? .update : .rename, dn: current.dn, newDN: newDN,
                            attributes: attributes, operations: operations)
    }}
