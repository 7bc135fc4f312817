import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One object that breaks one rule of a policy.
public struct PolicyFinding: Codable, Sendable, Equatable, Hashable {
    public var policy: String
    public var rule: String
    public var enforcement: PolicyEnforcement
    public var kind: Kind
    public var name: String
    public var file: String
    /// The field it points at: the first one the expression reads that the object has (else the
    /// first one it reads).
    public var field: String
    public var message: String
    /// Where `field` is written, once located (1-based).
    public var line: Int?
    public var column: Int?

    /// `jobs/x.yaml:12:5`
    public var location: SourceLocation { SourceLocation(file: file, line: line ?? 1, column: column ?? 1) }
    /// `policy protect-deletes, rule deletes-need-review: a job that deletes must be under workflow`
    public var sentence: String { "policy \(policy), rule \(rule): \(message)" }
    /// As a manifest problem (a `deny` refuses the revision).
    public var problem: ManifestProblem { ManifestProblem(location, field: field, sentence) }
}

/// How one rule fared over the objects it matched.
public struct PolicyRuleResult: Codable, Sendable, Equatable {
    public var policy: String
    public var rule: String
    public var enforcement: PolicyEnforcement
    /// Objects the rule matched and checked.
    public var checked: Int
    public var violations: Int

    public init(policy: String, rule: String, enforcement: PolicyEnforcement, checked: Int, violations: Int) {
        self.policy = policy
        self.rule = rule
        self.enforcement = enforcement
        self.checked = checked
        self.violations = violations
    }
}

/// The policies of a revision, checked over its objects (all of them, or those a path-scoped
/// plan read): each rule's tally, and every violation.
public struct PolicyReview: Codable, Sendable, Equatable {
    public var rules: [PolicyRuleResult]
    public var findings: [PolicyFinding]

    public init(rules: [PolicyRuleResult] = [], findings: [PolicyFinding] = []) {
        self.rules = rules
        self.findings = findings
    }

    public var denied: [PolicyFinding] { findings.filter { $0.enforcement == .deny } }
    public var warnings: [PolicyFinding] { findings.filter { $0.enforcement == .warn } }
}

/// Evaluates `Policy` rules over manifests, as their canonical JSON (`{metadata, spec}` after
/// template expansion, defaults included): the fields the expressions read are paths into it.
public enum PolicyCheck {
    /// An object to check: its key, its file and its canonical JSON.
    public struct Subject: Sendable {
        public let key: ObjectKey
        public let file: String
        public let json: String
        public init(key: ObjectKey, file: String, json: String) {
            self.key = key
            self.file = file
            self.json = json
        }
    }

    /// Every rule of `policies` over every subject it matches. A rule whose expression does not
    /// parse matches nothing (the parser reports it).
    public static func review(policies: [(name: String, spec: PolicySpec)], subjects: [Subject]) -> PolicyReview {
        var review = PolicyReview()
        let rules = policies.sorted { $0.name < $1.name }.flatMap { policy in
            policy.spec.rules.compactMap { rule in
                (try? FilterExpression.parse(rule.expression)).map { (policy: policy.name, rule: rule, expression: $0) }
            }
        }
        guard !rules.isEmpty else { return review }
        let kinds = Set(rules.flatMap(\.rule.match.kinds))
        var documents: [Int: Document] = [:]
        var tallies = rules.map { PolicyRuleResult(policy: $0.policy, rule: $0.rule.name, enforcement: $0.rule.enforcement,
                                                   checked: 0, violations: 0) }
        for (index, subject) in subjects.enumerated() where kinds.contains(subject.key.kind) {
            for (r, entry) in rules.enumerated() where entry.rule.match.kinds.contains(subject.key.kind) {
                if let pattern = entry.rule.match.names, fnmatch(pattern, subject.key.name, 0) != 0 { continue }
                if documents[index] == nil { documents[index] = Document(subject) }
                guard let document = documents[index] else { continue }
                if let connection = entry.rule.match.connection, !document.uses(connection) { continue }
                tallies[r].checked += 1
                guard !entry.expression.holds(document.values) else { continue }
                tallies[r].violations += 1
                let read: [String] = entry.expression.fields
                let field = read.first { !document.values($0).isEmpty } ?? read.first ?? "metadata.name"
                review.findings.append(PolicyFinding(
                    policy: entry.policy, rule: entry.rule.name, enforcement: entry.rule.enforcement, kind: subject.key.kind,
                    name: subject.key.name, file: subject.file, field: field,
                    message: entry.rule.message ?? entry.rule.description ?? "\(entry.rule.expression) does not hold"))
            }
        }
        review.rules = tallies
        review.findings.sort { ($0.file, $0.kind, $0.name, $0.policy, $0.rule) < ($1.file, $1.kind, $1.name, $1.policy, $1.rule) }
        return review
    }

    /// One object's JSON, read once, answering field paths.
    struct Document {
        let key: ObjectKey
        let root: [String: Any]

        init?(_ subject: Subject) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(subject.json.utf8)) as? [String: Any] else { return nil }
            key = subject.key
            root = object
        }

        /// The values at a dotted path; a list is looked through (`spec.mappings.destination` is
        /// every mapping's destination). `kind` is the object's kind. Booleans read `true` and
        /// `false`, numbers as written, a mapping as its JSON.
        func values(_ path: String) -> [String] {
            if path == "kind" { return [key.kind.rawValue] }
            var nodes: [Any] = [root]
            for component in path.split(separator: ".", omittingEmptySubsequences: false) {
                var next: [Any] = []
                for node in nodes { collect(node, String(component), into: &next) }
                nodes = next
                if nodes.isEmpty { return [] }
            }
            var out: [String] = []
            for node in nodes { leaves(node, into: &out) }
            return out
        }

        private func collect(_ node: Any, _ key: String, into out: inout [Any]) {
            if let map = node as? [String: Any], let value = map[key] {
                out.append(value)
            } else if let list = node as? [Any] {
                for item in list { collect(item, key, into: &out) }
            }
        }

        private func leaves(_ node: Any, into out: inout [String]) {
            switch node {
            case let list as [Any]: for item in list { leaves(item, into: &out) }
            case let text as String: out.append(text)
            case let flag as Bool: out.append(flag ? "true" : "false")
            case let number as Int: out.append(String(number))
            case let number as Double: out.append(number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number))
            case is NSNull: break
            default:
                if let data = try? JSONSerialization.data(withJSONObject: node, options: [.sortedKeys]) {
                    out.append(String(decoding: data, as: UTF8.self))
                }
            }
        }

        /// Whether the object is the Connection `name`, or a Job reading or writing it.
        func uses(_ connection: String) -> Bool {
            switch key.kind {
            case .connection: key.name == connection
            case .job: values("spec.source.connection").contains(connection) || values("spec.destination.connection").contains(connection)
            default: false
            }
        }
    }
}
