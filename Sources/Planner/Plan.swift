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
    /// For a created or changed schedule, its next fire times (see `withUpcomingFires`).
    public var nextFires: [UpcomingFire] = []

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
    /// What `appliedRevision` is: the stored state (plan, apply), or a pull request's base (diff).
    public enum Baseline: Sendable { case applied, base }
    public var baseline: Baseline = .applied
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
            var fields = fieldChanges(old: old.spec, new: record.spec)
            if key.kind == .job { fields = maskingSecrets(fields, old: old.spec, new: record.spec) }
            changes.append(Change(key: key, action: .update, file: record.file, fields: fields))
        }
        for (key, record) in applied where desired.objects[key] == nil {
            changes.append(Change(key: key, action: .delete, file: record.file))
        }
        return Plan(revision: revision, appliedRevision: appliedRevision, changes: changes)
    }

    /// What a masked value shows.
    public static let mask = "••••••"

    /// A job's `value:` literals for secret attributes (`userPassword`, `unicodePwd` and the job's
    /// `secretAttributes`, in either version) show as `••••••`: plans end up in pull-request comments.
    static func maskingSecrets(_ fields: [FieldChange], old: String, new: String) -> [FieldChange] {
        func secretMappings(_ json: String) -> Set<Int> {
            guard case .object(let root)? = JSONValue.parse(json), case .object(let spec)? = root["spec"],
                  case .array(let mappings)? = spec["mappings"] else { return [] }
            var secrets: Set<String> = ["userpassword", "unicodepwd"]
            if case .array(let named)? = spec["secretAttributes"] {
                for case .string(let name) in named { secrets.insert(name.lowercased()) }
            }
            var out: Set<Int> = []
            for (index, mapping) in mappings.enumerated() {
                if case .object(let m) = mapping, case .string(let destination)? = m["destination"],
                   secrets.contains(destination.lowercased()) { out.insert(index) }
            }
            return out
        }
        let indexes = secretMappings(old).union(secretMappings(new))
        guard !indexes.isEmpty else { return fields }
        let values = Set(indexes.map { "spec.mappings[\($0)].value" })
        let wholes = Set(indexes.map { "spec.mappings[\($0)]" })
        func hide(_ value: JSONValue?, whole: Bool) -> JSONValue? {
            guard let value else { return nil }
            guard whole else { return .string(mask) }
            guard case .object(var mapping) = value, mapping["value"] != nil else { return value }
            mapping["value"] = .string(mask)
            return .object(mapping)
        }
        return fields.map { field in
            let whole = wholes.contains(field.path)
            guard whole || values.contains(field.path) else { return field }
            return FieldChange(path: field.path, old: hide(field.old, whole: whole), new: hide(field.new, whole: whole))
        }
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
