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
    /// For an update, every changed field (a create's are `newFields`).
    public let fields: [FieldChange]
    /// For a create: the new object's canonical JSON, listed by `newFields` when shown.
    var createdSpec: String?

    /// For a create, every field of the new object (secret literals masked), worked out when
    /// asked: a first apply of 50,000 jobs need not list them.
    public var newFields: [FieldChange] {
        guard let createdSpec else { return [] }
        let fields = Plan.createdFields(createdSpec)
        return key.kind == .job ? Plan.maskingSecrets(fields, old: "{}", new: createdSpec) : fields
    }
    /// For a created or changed schedule, its next fire times (see `withUpcomingFires`).
    public var nextFires: [UpcomingFire] = []

    public init(key: ObjectKey, action: Action, file: String, fields: [FieldChange] = []) {
        self.key = key
        self.action = action
        self.file = file
        self.fields = fields
    }
}

/// A data file (a connection's `repoPath`) that the revision changes, by rows: a row is matched
/// by the key of the job that reads it (its DN in LDIF), and `changed` counts matched rows whose
/// fields differ. Without a key, rows are matched whole, so an edit counts as one added and one
/// removed.
public struct DataFileChange: Sendable, Equatable, Codable {
    public let path: String
    /// Rows at the revision.
    public let rows: Int
    public let added: Int
    public let removed: Int
    public let changed: Int
    /// The columns rows were matched by (`dn` for LDIF); nil when matched whole.
    public let key: [String]?
    /// Why the rows could not be counted (the file does not parse at one of the revisions).
    public let problem: String?

    public init(path: String, rows: Int, added: Int, removed: Int, changed: Int, key: [String]?, problem: String? = nil) {
        self.path = path
        self.rows = rows
        self.added = added
        self.removed = removed
        self.changed = changed
        self.key = key
        self.problem = problem
    }

    /// `data/hr.csv: 1,204 rows (+12 −3 ~40)`.
    public var summary: String {
        if let problem { return "\(path): changed; its rows could not be counted: \(problem)" }
        func n(_ value: Int) -> String { value.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US"))) }
        return "\(path): \(n(rows)) row\(rows == 1 ? "" : "s") (+\(n(added)) −\(n(removed)) ~\(n(changed)))"
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
    /// Whether renderings list a created object's fields (plans and diffs do; `apply` does not,
    /// as a first apply creates everything).
    public var listsNewFields = true
    /// Sorted by kind (dependencies first), then name.
    public let changes: [Change]
    /// Data files the revision changes, by path.
    public var dataFiles: [DataFileChange] = []
    /// The revision's policies over the objects planned (every object, or a path-scoped plan's):
    /// each rule's tally and its `warn` violations (a `deny` violation refuses the revision
    /// before there is a plan).
    public var policies: PolicyReview?

    public init(revision: String, appliedRevision: String?, changes: [Change]) {
        self.revision = revision
        self.appliedRevision = appliedRevision
        self.changes = changes.sorted { $0.key < $1.key }
    }

    /// Nothing changes: no object, no data file.
    public var isEmpty: Bool { changes.isEmpty && dataFiles.isEmpty }

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
                var change = Change(key: key, action: .create, file: record.file)
                change.createdSpec = record.spec
                changes.append(change)
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
        var plan = Plan(revision: revision, appliedRevision: appliedRevision, changes: changes)
        plan.policies = desired.policies
        return plan
    }

    /// What a masked value shows.
    public static let mask = "••••••"

    /// A job's `value:` literals for secret attributes (`userPassword`, `unicodePwd` and the job's
    /// `secretAttributes`, in either version) show as `••••••`: plans end up in pull-request comments.
    static func maskingSecrets(_ fields: [FieldChange], old: String, new: String) -> [FieldChange] {
        /// The secret names, and the destination of each mapping by position.
        func secrets(_ json: String) -> (names: Set<String>, destinations: [String]) {
            guard case .object(let root)? = JSONValue.parse(json), case .object(let spec)? = root["spec"] else { return ([], []) }
            var names: Set<String> = ["userpassword", "unicodepwd"]
            if case .array(let named)? = spec["secretAttributes"] {
                for case .string(let name) in named { names.insert(name.lowercased()) }
            }
            var destinations: [String] = []
            if case .array(let mappings)? = spec["mappings"] {
                for mapping in mappings {
                    if case .object(let m) = mapping, case .string(let destination)? = m["destination"] {
                        destinations.append(destination)
                    } else {
                        destinations.append("")
                    }
                }
            }
            return (names, destinations)
        }
        let (oldSecrets, oldDestinations) = secrets(old), (newSecrets, newDestinations) = secrets(new)
        let names = oldSecrets.union(newSecrets)
        /// The mapping a path is inside (`spec.mappings[destination=pin]…`, or by position when the
        /// list could not be keyed), and whether the path is the whole mapping.
        func mapping(_ path: String) -> (destination: String, whole: Bool)? {
            let prefix = "spec.mappings["
            guard path.hasPrefix(prefix), let close = path.firstIndex(of: "]") else { return nil }
            let selector = path[path.index(path.startIndex, offsetBy: prefix.count)..<close]
            let rest = path[path.index(after: close)...]
            guard rest.isEmpty || rest == ".value" else { return nil }
            if selector.hasPrefix("destination=") {
                return (String(selector.dropFirst("destination=".count)), rest.isEmpty)
            }
            guard let index = Int(selector) else { return nil }
            let candidates = [oldDestinations, newDestinations].compactMap { index < $0.count ? $0[index] : nil }
            return candidates.first { names.contains($0.lowercased()) }.map { ($0, rest.isEmpty) }
        }
        func hide(_ value: JSONValue?, whole: Bool) -> JSONValue? {
            guard let value else { return nil }
            guard whole else { return .string(mask) }
            guard case .object(var mapping) = value, mapping["value"] != nil else { return value }
            mapping["value"] = .string(mask)
            return .object(mapping)
        }
        return fields.map { field in
            guard let (destination, whole) = mapping(field.path), names.contains(destination.lowercased()) else { return field }
            return FieldChange(path: field.path, old: hide(field.old, whole: whole), new: hide(field.new, whole: whole))
        }
    }

    /// The fields of a new object, as a reviewer reads them: each leaf, each keyed list item
    /// whole (`spec.mappings[destination=mail]`), and other lists whole.
    public static func createdFields(_ spec: String) -> [FieldChange] {
        var out: [FieldChange] = []
        func walk(_ value: JSONValue, _ path: String) {
            switch value {
            case .object(let fields):
                for key in fields.keys.sorted() { walk(fields[key]!, path.isEmpty ? key : "\(path).\(key)") }
            case .array(let items):
                if let key = identityKey[path], items.allSatisfy({ if case .object(let f) = $0, case .string? = f[key] { true } else { false } }) {
                    for item in items {
                        guard case .object(let f) = item, case .string(let name)? = f[key] else { continue }
                        out.append(FieldChange(path: "\(path)[\(key)=\(name)]", old: nil, new: item))
                    }
                } else {
                    out.append(FieldChange(path: path, old: nil, new: value))
                }
            default:
                out.append(FieldChange(path: path, old: nil, new: value))
            }
        }
        if let root = JSONValue.parse(spec) { walk(root, "") }
        return out
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
            if let key = identityKey[path] {
                if diffKeyed(a, b, by: key, path: path, into: &out) { return }
            } else if diffByContent(a, b, path: path, into: &out) {
                return
            }
            for index in 0..<max(a.count, b.count) {
                diff(index < a.count ? a[index] : nil, index < b.count ? b[index] : nil,
                     path: "\(path)[\(index)]", into: &out)
            }
        default:
            if old != new { out.append(FieldChange(path: path, old: old, new: new)) }
        }
    }

    /// Lists whose items are told apart by a field: a mapping by its destination, a collection's
    /// job by its name. Other lists (triggers, object classes, approvers) by their items' content.
    static let identityKey = ["spec.mappings": "destination", "spec.jobs": "job"]

    /// `a` and `b` diffed item by item, matched by `key` (`spec.mappings[destination=mail].source`):
    /// removing one item shows that item removed, not every later one changed. A change of
    /// order among the items both keep shows as one line (a collection's jobs run in that
    /// order). False (nothing added)
    /// when some item has no such key, or two share one: then the caller diffs by position.
    private static func diffKeyed(_ a: [JSONValue], _ b: [JSONValue], by key: String, path: String,
                                  into out: inout [FieldChange]) -> Bool {
        func keyed(_ items: [JSONValue]) -> [(String, JSONValue)]? {
            var seen: Set<String> = []
            var out: [(String, JSONValue)] = []
            for item in items {
                guard case .object(let fields) = item, case .string(let name)? = fields[key], seen.insert(name).inserted else { return nil }
                out.append((name, item))
            }
            return out
        }
        guard let old = keyed(a), let new = keyed(b) else { return false }
        let oldByName = Dictionary(uniqueKeysWithValues: old), newNames = Set(new.map(\.0))
        for (name, item) in old where !newNames.contains(name) {
            out.append(FieldChange(path: "\(path)[\(key)=\(name)]", old: item, new: nil))
        }
        for (name, item) in new {
            diff(oldByName[name], item, path: "\(path)[\(key)=\(name)]", into: &out)
        }
        let kept = new.map(\.0).filter { oldByName[$0] != nil }
        let was = old.map(\.0).filter { newNames.contains($0) }
        if kept != was {
            out.append(FieldChange(path: "\(path) (order)", old: .array(was.map(JSONValue.string)), new: .array(kept.map(JSONValue.string))))
        }
        return true
    }

    /// `a` and `b` diffed as collections of items: each item only one side holds is shown at its
    /// position on that side, and an item edited in place (one gone, one new, at the same
    /// position) field by field; the same items in another order are no change. False (nothing
    /// added) when an item repeats, so that counting would be ambiguous.
    private static func diffByContent(_ a: [JSONValue], _ b: [JSONValue], path: String, into out: inout [FieldChange]) -> Bool {
        let old = Set(a.map(\.description)), new = Set(b.map(\.description))
        guard old.count == a.count, new.count == b.count else { return false }
        let gone = Set(a.indices.filter { !new.contains(a[$0].description) })
        let came = Set(b.indices.filter { !old.contains(b[$0].description) })
        for index in gone.union(came).sorted() {
            diff(gone.contains(index) ? a[index] : nil, came.contains(index) ? b[index] : nil, path: "\(path)[\(index)]", into: &out)
        }
        return true
    }
}
