import Foundation
import Manifests

/// One field that differs, by path (`spec.mappings[1].value`). A nil side means absent.
public struct FieldChange: Sendable, Equatable, Codable {
    public let path: String
    public let old: JSONValue?
    public let new: JSONValue?

    public init(path: String, old: JSONValue?, new: JSONValue?) {
        self.path = path
        self.old = old
        self.new = new
    }
}

public enum Action: String, Sendable, Codable, CaseIterable { case create, update, delete }

/// What would happen to one object.
public struct Change: Sendable, Equatable {
    public let key: ObjectKey
    public let action: Action
    /// The defining file (the new one, or for a delete the old one).
    public let file: String
    /// For an update, every changed field.
    public let fields: [FieldChange]

    public init(key: ObjectKey, action: Action, file: String, fields: [FieldChange] = []) {
        self.key = key
        self.action = action
        self.file = file
        self.fields = fields
    }
}

/// The difference between a desired state and the applied one.
public struct Plan: Sendable, Equatable {
    /// The manifest revision planned (full sha), or a label such as a folder path.
    public let revision: String
    /// The revision currently applied, if any.
    public let appliedRevision: String?
    /// Sorted by kind (dependencies first), then name.
    public let changes: [Change]

    public init(revision: String, appliedRevision: String?, changes: [Change]) {
        self.revision = revision
        self.appliedRevision = appliedRevision
        self.changes = changes.sorted { $0.key < $1.key }
    }

    public var isEmpty: Bool { changes.isEmpty }

    public func count(_ action: Action) -> Int { changes.filter { $0.action == action }.count }

    /// Compares `desired` with `applied`.
    ///
    /// `applied` must hold the applied records in the desired state's scope: for a full build every
    /// applied object, for a path-scoped build those defined in the changed files plus those the
    /// desired state re-expanded. An applied object missing from `desired` is deleted.
    public static func make(desired: DesiredState, applied: [ObjectKey: ObjectRecord], revision: String,
                            appliedRevision: String?) -> Plan {
        var changes: [Change] = []
        for (key, record) in desired.objects {
            guard let old = applied[key] else {
                changes.append(Change(key: key, action: .create, file: record.file))
                continue
            }
            guard old.hash != record.hash || old.spec != record.spec else { continue }
            changes.append(Change(key: key, action: .update, file: record.file,
                                  fields: fieldChanges(old: old.spec, new: record.spec)))
        }
        for (key, record) in applied where desired.objects[key] == nil {
            changes.append(Change(key: key, action: .delete, file: record.file))
        }
        return Plan(revision: revision, appliedRevision: appliedRevision, changes: changes)
    }

    /// Every leaf path whose value differs between two canonical JSON documents.
    public static func fieldChanges(old: String, new: String) -> [FieldChange] {
        var out: [FieldChange] = []
        diff(JSONValue.parse(old), JSONValue.parse(new), path: "", into: &out)
        return out
    }

    private static func diff(_ old: JSONValue?, _ new: JSONValue?, path: String, into out: inout [FieldChange]) {
        switch (old, new) {
        case (.object(let a)?, .object(let b)?):
            for key in Set(a.keys).union(b.keys).sorted() {
                diff(a[key], b[key], path: path.isEmpty ? key : "\(path).\(key)", into: &out)
            }
        case (.array(let a)?, .array(let b)?):
            for index in 0..<max(a.count, b.count) {
                diff(index < a.count ? a[index] : nil, index < b.count ? b[index] : nil,
                     path: "\(path)[\(index)]", into: &out)
            }
        default:
            if old != new { out.append(FieldChange(path: path, old: old, new: new)) }
        }
    }
}
