import Foundation
import Manifests
import Testing

/// Policy rules over manifests' canonical JSON, and the filter language's additions they use.
@Suite struct PolicyCheckTests {
    func subject(_ yaml: String, file: String = "m.yaml") throws -> PolicyCheck.Subject {
        let (manifests, problems) = ManifestParser.parse(file: file, contents: Data(("apiVersion: syncwright.dev/v1\n" + yaml).utf8))
        try #require(problems.isEmpty, "\(problems)")
        let manifest = try #require(manifests.first)
        return PolicyCheck.Subject(key: manifest.key, file: file, json: manifest.canonical.json)
    }

    func rule(_ expression: String, kinds: [Kind] = [.connection], names: String? = nil, connection: String? = nil,
              enforcement: PolicyEnforcement = .deny) -> (name: String, spec: PolicySpec) {
        ("p", PolicySpec(rules: [PolicyRule(name: "r", match: PolicyMatch(kinds: kinds, names: names, connection: connection),
                                            expression: expression, enforcement: enforcement)]))
    }

    @Test func fieldsAreJSONPathsListsAreLookedThroughDefaultsCount() throws {
        let ldap = try subject("kind: Connection\nmetadata: { name: corp-a }\nspec: { type: ldap, url: \"ldap://x\", baseDN: \"dc=x\", pageSize: 1000, startTLS: true }\n")
        let job = try subject("""
            kind: Job
            metadata: { name: j }
            spec:
              source: { connection: src }
              destination: { connection: corp-a }
              mappings:
                - { source: id, destination: uid, key: true }
                - { source: mail, destination: mail }

            """)
        func violations(_ expression: String, kinds: [Kind] = [.connection, .job], names: String? = nil, connection: String? = nil) -> [String] {
            PolicyCheck.review(policies: [rule(expression, kinds: kinds, names: names, connection: connection)], subjects: [ldap, job])
                .findings.map(\.name)
        }
        #expect(violations("spec.pageSize <= 500", kinds: [.connection]) == ["corp-a"])
        #expect(violations("spec.pageSize > 500", kinds: [.connection]).isEmpty)
        #expect(violations("spec.startTLS == true", kinds: [.connection]).isEmpty, "a boolean reads true")
        #expect(violations("spec.delete == false", kinds: [.job]).isEmpty, "a default is in the canonical JSON")
        #expect(violations("spec.mappings.destination in [\"uid\", \"mail\"]", kinds: [.job]).isEmpty)
        #expect(violations("spec.mappings.destination != \"mail\"", kinds: [.job]) == ["j"], "any mapping")
        #expect(violations("exists(spec.workflow)", kinds: [.job]) == ["j"])
        #expect(violations("kind == \"Job\"") == ["corp-a"])
        #expect(violations("exists(spec.workflow)", kinds: [.job], connection: "elsewhere").isEmpty, "match.connection")
        #expect(violations("kind == \"Job\"", connection: "corp-a") == ["corp-a"], "the connection itself, and the job using it")
        #expect(violations("kind == \"Nothing\"", names: "corp-*") == ["corp-a"], "names is a shell pattern")

        let review = PolicyCheck.review(policies: [rule("spec.pageSize <= 500", enforcement: .warn)], subjects: [ldap, job])
        #expect(review.rules == [PolicyRuleResult(policy: "p", rule: "r", enforcement: .warn, checked: 1, violations: 1)])
        #expect(review.warnings.first?.field == "spec.pageSize")
        #expect(review.denied.isEmpty)
    }

    @Test func bareLiteralsAndNumericComparisonsInFilters() throws {
        let expression = try FilterExpression.parse("age >= 18 && active == true && level in [1, 2]")
        #expect(expression.holds { ["age": ["20"], "active": ["true"], "level": ["2"]][$0] ?? [] })
        #expect(!expression.holds { ["age": ["17"], "active": ["true"], "level": ["2"]][$0] ?? [] })
        #expect(!expression.holds { ["age": ["adult"], "active": ["true"], "level": ["2"]][$0] ?? [] }, "a value that is no number never compares")
        #expect(throws: ExpressionError(column: 7, message: "< compares numbers: write a number after it")) {
            try FilterExpression.parse("age < \"x\"")
        }
        #expect(throws: ExpressionError(column: 8, message: "expected a quoted string, true, false or a number")) {
            try FilterExpression.parse("age == adult")
        }
    }
}
