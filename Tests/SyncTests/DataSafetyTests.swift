import Directory
import Foundation
import Manifests
import Sync
import TestSupport
import Testing

private func mapping(_ source: String?, _ destination: String, value: String? = nil, key: Bool = false,
                     delimiter: String? = nil) -> FieldMapping {
    FieldMapping(source: source, destination: destination, value: value, generate: nil, key: key, newOnly: false,
                 delimiter: delimiter)
}

private func spec(_ mappings: [FieldMapping], filter: String? = nil, container: String = "ou=People,dc=corp",
                  rdn: String = "uid") -> JobSpec {
    JobSpec(source: JobSource(connection: "src", filter: filter, base: nil),
            destination: JobDestination(connection: "dst", objectClass: ["inetOrgPerson"], container: container, rdn: rdn),
            mappings: mappings, create: true, delete: false, workflow: nil, allowEmptySource: false,
            deleteThreshold: .standard)
}

/// Each test here failed before its fix (issue: never lose or corrupt directory data silently).
@Suite struct DataSafetyTests {
    // 1. A stale value is removed: values compare as sets, not by count and membership.
    /// A job mapping phones (split on `;`), and a destination object holding `phones`.
    func phonesJob(holding phones: [Value]) throws -> (JobEngine, Entry) {
        let engine = try JobEngine(name: "j", spec: spec([
            mapping("id", "employeeNumber", key: true), mapping("login", "uid"),
            mapping("phones", "telephoneNumber", delimiter: ";"),
        ]), destinationNeedsDN: true)
        return (engine, Entry(dn: "uid=a,ou=People,dc=corp", attributes: [
            ("objectClass", ["inetOrgPerson"]), ("employeeNumber", ["1"]), ("uid", ["a"]), ("telephoneNumber", phones),
        ]))
    }

    @Test func aStaleValueIsReplacedEvenWhenTheCountsMatch() throws {
        let (engine, current) = try phonesJob(holding: ["555", "666"])
        let set = try engine.plan(source: csv("id,login,phones\n1,a,555;555\n"), destination: ldif([current]))
        let change = try #require(set.changes.first)
        #expect(change.action == .update)
        #expect(change.attributes.map(\.attribute) == ["telephoneNumber"])
        // Written once: a directory holds each value once. 666 goes, 555 stays, nothing is added.
        let values = try #require(change.attributes.first?.values)
        #expect(values.removed == ["666"] && values.added.isEmpty && values.countAfter == 1)
    }

    @Test func repeatedSourceValuesAgainstTheSameSetAreUnchanged() throws {
        let (engine, current) = try phonesJob(holding: ["666", "555"])
        let set = try engine.plan(source: csv("id,login,phones\n1,a,555;666;555\n"), destination: ldif([current]))
        #expect(set.changes.isEmpty)
        #expect(set.unchanged == 1)
    }

    @Test func sameValuesIsSetEqualityBothWays() {
        func entry(_ values: [Value]) -> Entry { Entry(dn: "x", attributes: [("a", values)]) }
        let cases: [([Value], [Value], Bool)] = [
            (["1", "1"], ["1", "2"], false), (["1", "2"], ["1", "1"], false), (["1"], ["1", "1"], true),
            (["2", "1"], ["1", "2"], true), ([], [], true), (["1"], [], false), ([], ["1"], false),
        ]
        for (a, b, same) in cases {
            let x = entry(a), y = entry(b)
            #expect(x.sameValues(at: 0, as: y, at: y.index(of: "a")) == same, "\(a) vs \(b)")
        }
        // Large lists take the hashed path.
        let many = (0..<200).map { Value("v\($0)") }
        let x = entry(many), y = entry(many.reversed()), z = entry(Array(many.dropLast()) + ["v0"])
        #expect(x.sameValues(at: 0, as: y, at: 0))
        #expect(!x.sameValues(at: 0, as: z, at: 0))
    }

    // 2. A misspelt source column is an error, never an empty value.
    @Test func aMisspeltColumnFailsThePlanWithADidYouMean() throws {
        let engine = try JobEngine(name: "hr", spec: spec([
            mapping("id", "employeeNumber", key: true), mapping("login", "uid"),
            mapping("departmnet", "departmentNumber"),
        ]), destinationNeedsDN: true)
        let current = Entry(dn: "uid=a,ou=People,dc=corp", attributes: [
            ("objectClass", ["inetOrgPerson"]), ("employeeNumber", ["1"]), ("uid", ["a"]), ("departmentNumber", ["Board"]),
        ])
        #expect {
            try engine.plan(source: csv("id,login,department\n1,a,Board\n"), destination: ldif([current]))
        } throws: { error in
            let text = "\(error)"
            return text.contains("spec.mappings[2].source names 'departmnet'")
                && text.contains("did you mean 'department'?") && text.contains("id, login, department")
        }
    }

    @Test func anEmptyColumnThatExistsIsNotAnError() throws {
        let engine = try JobEngine(name: "hr", spec: spec([
            mapping("id", "employeeNumber", key: true), mapping("login", "uid"), mapping("department", "departmentNumber"),
        ]), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,department\n1,a,\n"), destination: ldif([]))
        #expect(set.changes.count == 1)
    }

    @Test func templateAndFilterFieldsAreCheckedToo() throws {
        let template = try JobEngine(name: "t", spec: spec([
            mapping("id", "employeeNumber", key: true), mapping("login", "uid"), mapping(nil, "cn", value: "{{givn}} {{sn}}"),
        ]), destinationNeedsDN: true)
        #expect { try template.plan(source: csv("id,login,given,sn\n1,a,A,B\n"), destination: ldif([])) } throws: {
            "\($0)".contains("spec.mappings[2].value names 'givn'") && "\($0)".contains("did you mean 'given'?")
        }
        let filter = try JobEngine(name: "f", spec: spec([
            mapping("id", "employeeNumber", key: true), mapping("login", "uid"),
        ], filter: "stauts == \"active\""), destinationNeedsDN: true)
        #expect { try filter.plan(source: csv("id,login,status\n1,a,active\n"), destination: ldif([])) } throws: {
            "\($0)".contains("spec.source.filter names 'stauts'")
        }
    }

    @Test func anLDIFSourceFieldThatNoEntryHasIsAnError() throws {
        let source = ldif([Entry(dn: "uid=a,dc=src", attributes: [("uid", ["a"]), ("employeeNumber", ["1"])])])
        let engine = try JobEngine(name: "l", spec: spec([
            mapping("employeeNumber", "employeeNumber", key: true), mapping("uid", "uid"), mapping("mial", "mail"),
        ]), destinationNeedsDN: true)
        #expect { try engine.plan(source: source, destination: ldif([])) } throws: { "\($0)".contains("names 'mial'") }
    }

    // 3. A template over a multi-valued field maps every value.
    @Test func aTemplateOverAThousandMemberGroupKeepsEveryMember() throws {
        let members = (0..<1_000).map { Value("uid=u\($0),ou=People,dc=src") }
        let group = Entry(dn: "cn=staff,ou=Groups,dc=src", attributes: [("cn", ["staff"]), ("member", members)])
        let engine = try JobEngine(name: "g", spec: spec([
            mapping("cn", "cn", key: true),
            mapping(nil, "member", value: "{{member | replace(\"dc=src\", \"dc=corp\")}}"),
        ], container: "ou=Groups,dc=corp", rdn: "cn"), destinationNeedsDN: true)
        let folder = try TemporaryFolder()
        let file = folder.sub("groups.ldif")
        let set = try engine.plan(source: ldif([group]), destination: LDIFDirectory(.path(file), what: "d", missingIsEmpty: true))
        #expect(set.changes.map(\.action) == [.create])
        // More values than one request carries: written as an add and a modify, all of them.
        let outcome = engine.apply(set, to: LDIFDirectory(.path(file), what: "d", missingIsEmpty: true))
        #expect(outcome.error == nil && outcome.statistics.created == 1 && outcome.statistics.failed == 0, "\(outcome.log)")
        var written: [Entry] = []
        try LDIFDirectory(.path(file), what: "d", missingIsEmpty: false).read(ReadScope(), pageSize: 100) { written += $0 }
        guard let entry = written.first else { Issue.record("nothing written"); return }
        #expect(entry["member"].count == 1_000)
        #expect(entry["member"].first == "uid=u0,ou=People,dc=corp")
        #expect(entry["member"].last == "uid=u999,ou=People,dc=corp")
    }

    @Test func aTemplateOverTwoMultiValuedFieldsFailsTheRow() throws {
        let row = Entry(dn: "cn=x,dc=src", attributes: [("cn", ["x"]), ("a", ["1", "2"]), ("b", ["3", "4"])])
        let engine = try JobEngine(name: "g", spec: spec([
            mapping("cn", "cn", key: true), mapping(nil, "description", value: "{{a}}-{{b}}"),
        ], container: "dc=corp", rdn: "cn"), destinationNeedsDN: true)
        let set = try engine.plan(source: ldif([row]), destination: ldif([]))
        #expect(set.changes.isEmpty)
        #expect(set.failures.first?.reason.contains("both have several values") == true)
    }

    // 4. An empty placeholder in a DN template leaves the value out, and says so.
    @Test func anEmptyPlaceholderInADNTemplateIsLeftOutNotWrittenMalformed() throws {
        let engine = try JobEngine(name: "m", spec: spec([
            mapping("id", "employeeNumber", key: true), mapping("login", "uid"),
            mapping(nil, "manager", value: "uid={{manager}},ou=People,dc=corp"),
        ]), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,manager\n1,a,\n2,b,a\n"), destination: ldif([]))
        let entries = set.changes.compactMap { change -> Entry? in
            if case .add(let entry)? = change.operations.first { entry } else { nil }
        }
        #expect(entries.count == 2)
        #expect(entries[0]["manager"] == [])
        #expect(entries[1]["manager"] == ["uid=a,ou=People,dc=corp"])
        #expect(set.notes == [ObjectFailure(object: "#1", reason: "manager left out: {{manager}} is empty, so the DN would be malformed")])
        let outcome = engine.apply(set, to: ldif([]), commit: false)
        #expect(outcome.log.contains("? #1 manager left out: {{manager}} is empty, so the DN would be malformed"))
    }

    @Test func aDNTemplateEscapesTheValueItPlacesInAnRDN() throws {
        let engine = try JobEngine(name: "m", spec: spec([
            mapping("id", "employeeNumber", key: true), mapping("login", "uid"),
            mapping(nil, "manager", value: "cn={{boss}},ou=People,dc=corp"),
            mapping(nil, "description", value: "{{boss}}, boss"),
        ]), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,boss\n1,a,\"Smith, Jr\"\n"), destination: ldif([]))
        guard case .add(let entry)? = set.changes.first?.operations.first else { Issue.record("no add"); return }
        #expect(entry["manager"] == ["cn=Smith\\, Jr,ou=People,dc=corp"])
        #expect(entry["description"] == ["Smith, Jr, boss"])
    }

    @Test func templatesThatAreNotDNsMayRenderEmptyPlaceholders() throws {
        #expect(try ValueTemplate.parse("uid={{m}},ou=People").isDNShaped)
        #expect(try !ValueTemplate.parse("{{given}} {{sn}}").isDNShaped)
        #expect(try !ValueTemplate.parse("a={{x}}").isDNShaped)
        #expect(try ValueTemplate.parse("cn={{x}}+uid={{y}},dc=corp").isDNShaped)
    }
}

@Suite struct LogTextTests {
    @Test func aLineBreakInAValueKeepsOneLinePerObject() {
        #expect(LogText.escape("Head of\nSales") == "Head of\\nSales")
        #expect(LogText.escape("a\r\n\tb\\c\u{1B}") == "a\\r\\n\\tb\\\\c\\u{1B}")
        #expect(LogText.escape("plain, Müller") == "plain, Müller")
    }
}
