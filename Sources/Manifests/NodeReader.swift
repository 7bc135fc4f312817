import Yams

/// Collects problems and field locations while one file is read.
final class ReadContext {
    let file: String
    var problems: [ManifestProblem] = []
    var fieldLocations: [String: SourceLocation] = [:]
    /// Keep every field's position, not only the tracked keys' (for locating a problem found
    /// after parsing, in the few files that have one).
    let trackAll: Bool
    /// When recording (tests holding the schema to the parser): per place (`Job:spec.mappings[]`),
    /// the keys read there, i.e. accepted.
    var accepted: [String: Set<String>]?
    /// The kind of the document being read, for `accepted`.
    var kind = ""

    init(file: String, trackAll: Bool = false) {
        self.file = file
        self.trackAll = trackAll
    }

    func location(_ node: Node?) -> SourceLocation {
        SourceLocation(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1)
    }

    func fail(_ node: Node?, _ field: String, _ message: String) {
        problems.append(ManifestProblem(location(node), field: field, message))
    }
}

/// Describes a node's shape for "expected X, found Y" messages.
func shape(_ node: Node) -> String {
    switch node {
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    case .scalar(let s):
        if s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return "null" }
        return "'\(s.string)'"
    }
}

func isNull(_ node: Node) -> Bool {
    if case .scalar(let s) = node, s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) {
        return true
    }
    return false
}

/// A strict view of one YAML mapping: every key must be read, or it is reported as unknown.
struct MapReader {
    let node: Node
    let path: String
    let context: ReadContext
    private var entries: [(key: String, keyNode: Node, value: Node)] = []
    private var read: Set<String> = []

    /// Wraps `node` if it is a mapping; otherwise reports the mismatch and returns nil.
    init?(_ node: Node, path: String, context: ReadContext) {
        self.node = node
        self.path = path
        self.context = context
        guard case .mapping(let mapping) = node else {
            context.fail(node, path, "expected a mapping, found \(shape(node))")
            return nil
        }
        // Yams has already rejected duplicate keys.
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                context.fail(keyNode, path, "keys must be plain strings")
                continue
            }
            entries.append((scalar.string, keyNode, value))
        }
    }

    /// The keys whose positions are kept for checks made after parsing (references, names); every
    /// other problem is reported while parsing, with the node's own position. Keeping only these
    /// saves building a path string for every field of every document; a check that needs
    /// another field's position parses that file again with `trackAll`.
    static let trackedKeys: Set<String> = ["name", "connection", "template", "job", "jobs", "targets", "repoPath", "channels"]

    func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value of `key`, or nil when absent or null. Marks the key as read.
    mutating func value(_ key: String) -> Node? {
        read.insert(key)
        guard let entry = entries.first(where: { $0.key == key }), !isNull(entry.value) else { return nil }
        if context.trackAll || Self.trackedKeys.contains(key) {
            context.fieldLocations[child(key)] = context.location(entry.value)
        }
        return entry.value
    }

    func has(_ key: String) -> Bool {
        entries.contains { $0.key == key && !isNull($0.value) }
    }

    mutating func missing(_ key: String) {
        context.fail(node, child(key), "required field is missing")
    }

    mutating func string(_ key: String, required: Bool = false) -> String? {
        guard let node = value(key) else {
            if required { missing(key) }
            return nil
        }
        guard case .scalar(let scalar) = node else {
            context.fail(node, child(key), "expected a string, found \(shape(node))")
            return nil
        }
        if required && scalar.string.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
            context.fail(node, child(key), "must not be empty")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let node = value(key) else { return nil }
        if case .scalar(let scalar) = node, scalar.style == .plain {
            switch scalar.string.lowercased() {
            case "true": return true
            case "false": return false
            default: break
            }
        }
        context.fail(node, child(key), "expected true or false, found \(shape(node))")
        return nil
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let node = value(key) else { return nil }
        if case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) {
            if range.contains(value) { return value }
            context.fail(node, child(key), "\(value) is out of range \(range.lowerBound)-\(range.upperBound)")
            return nil
        }
        context.fail(node, child(key), "expected a whole number, found \(shape(node))")
        return nil
    }

    mutating func enumeration<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type,
                                                                   required: Bool = false) -> E?
    where E.RawValue == String {
        guard let raw = string(key, required: required) else { return nil }
        if let value = E(rawValue: raw) { return value }
        let allowed = E.allCases.map(\.rawValue).joined(separator: ", ")
        context.fail(valueNode(key) ?? node, child(key), "'\(raw)' is not one of \(allowed)")
        return nil
    }

    private func valueNode(_ key: String) -> Node? {
        entries.first(where: { $0.key == key })?.value
    }

    /// A duration field (`30s`, `15m`, `1h30m`), kept as written once it is known to be valid.
    mutating func duration(_ key: String, what: String = "a duration", example: String) -> String? {
        guard let text = string(key) else { return nil }
        if DurationText(text) == nil {
            context.fail(valueNode(key), child(key), "'\(text)' is not \(what) like \(example)")
        }
        return text
    }

    /// A timestamp field (`2026-12-01T08:00`), kept as written once it is known to be valid.
    mutating func timestamp(_ key: String, example: String) -> String? {
        guard let text = string(key) else { return nil }
        if TimestampText(text) == nil {
            context.fail(valueNode(key), child(key), "'\(text)' is not a timestamp like \(example)")
        }
        return text
    }

    /// The items of a list field, each with its field path.
    mutating func list(_ key: String, required: Bool = false) -> [(node: Node, path: String)]? {
        guard let node = value(key) else {
            if required { missing(key) }
            return nil
        }
        guard case .sequence(let sequence) = node else {
            context.fail(node, child(key), "expected a list, found \(shape(node))")
            return nil
        }
        let tracked = context.trackAll || Self.trackedKeys.contains(key)
        return sequence.enumerated().map { index, item in
            let itemPath = "\(child(key))[\(index)]"
            if tracked { context.fieldLocations[itemPath] = context.location(item) }
            return (item, itemPath)
        }
    }

    mutating func stringList(_ key: String, required: Bool = false) -> [String]? {
        guard let items = list(key, required: required) else { return nil }
        var result: [String] = []
        for (item, itemPath) in items {
            guard case .scalar(let scalar) = item, !isNull(item) else {
                context.fail(item, itemPath, "expected a string, found \(shape(item))")
                continue
            }
            result.append(scalar.string)
        }
        return result
    }

    mutating func map(_ key: String, required: Bool = false) -> MapReader? {
        guard let node = value(key) else {
            if required { missing(key) }
            return nil
        }
        return MapReader(node, path: child(key), context: context)
    }

    /// Reports every key that was never read. Call once, after reading the known fields.
    func finish() {
        if context.accepted != nil {
            var place = ""
            var inIndex = false
            for character in path {
                if character == "[" { inIndex = true; place.append("[") } else if character == "]" { inIndex = false; place.append("]") }
                else if !inIndex { place.append(character) }
            }
            context.accepted![context.kind + ":" + place, default: []].formUnion(read)
        }
        let known = read.sorted()
        for entry in entries where !read.contains(entry.key) {
            context.fail(entry.keyNode, child(entry.key),
                         "unknown field (expected one of: \(known.joined(separator: ", ")))")
        }
    }
}
