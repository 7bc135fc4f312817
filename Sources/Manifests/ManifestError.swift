/// One thing wrong with the manifests, at a place in a file.
public struct ManifestProblem: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    /// The field path, e.g. `spec.mappings[2].key`; empty for YAML syntax errors.
    public var field: String
    public var message: String

    public init(_ location: SourceLocation, field: String, _ message: String) {
        self.location = location
        self.field = field
        self.message = message
    }

    /// `path/in/repo.yaml:LINE:COL: field.path: message`
    public var description: String {
        field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }
}

/// The Manifests module's error: every problem found in one pass, in file order.
public struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problems: [ManifestProblem]

    public init(_ problems: [ManifestProblem]) {
        self.problems = problems.sorted {
            ($0.location.file, $0.location.line, $0.location.column, $0.field, $0.message)
                < ($1.location.file, $1.location.line, $1.location.column, $1.field, $1.message)
        }
    }

    public var description: String {
        let count = problems.count
        return "\(count) problem\(count == 1 ? "" : "s") in the manifests:\n"
            + problems.map(\.description).joined(separator: "\n")
    }
}
