import Directory
import Manifests
import Sync
import Testing

let person = Entry(dn: "uid=a", attributes: [
    ("status", ["active"]), ("title", ["Senior Engineer", "Intern Mentor"]), ("mail", ["Alice.J@Corp.Example"]),
    ("givenName", ["  Alice "]), ("sn", ["Johnson"]), ("city", ["München"]),
])

@Suite struct FilterLanguageTests {
    @Test(arguments: [
        ("status == \"active\"", true),
        ("status == 'inactive'", false),
        ("status != \"inactive\"", true),
        ("missing != \"x\"", true),
        ("missing == \"\"", false),
        ("title contains \"Engineer\"", true),
        ("title startsWith \"Intern\"", true),
        ("title startsWith \"Engineer\"", false),
        ("status in [\"active\", \"leave\"]", true),
        ("status in ['x']", false),
        ("exists(mail)", true),
        ("exists(phone)", false),
        ("!exists(phone) && status == \"active\"", true),
        ("status == \"x\" || sn == \"Johnson\"", true),
        ("!(status == \"active\" || sn == \"x\")", false),
        ("status == \"active\" && (sn == \"x\" || title contains \"Mentor\")", true),
        ("sn == \"Jo\\\"hn\"", false),
    ])
    func evaluates(_ text: String, _ expected: Bool) throws {
        #expect(try FilterExpression.parse(text).matches(person) == expected)
    }

    /// Numbers compare as numbers on an entry's values; a value that is not one never does.
    @Test(arguments: [("age > 40", true), ("age >= 42.5", false), ("age <= 42", true), ("age < 9", false),
                      ("level > 0", false), ("level < 0", false), ("missing > 0", false), ("age == 42", true)])
    func comparesNumbers(_ text: String, _ expected: Bool) throws {
        let entry = Entry(dn: "uid=b", attributes: [("age", ["42"]), ("level", ["high"])])
        #expect(try FilterExpression.parse(text).matches(entry) == expected)
    }

    @Test(arguments: [
        ("status ==", "column 10: expected a quoted string"),
        ("status = \"a\"", "column 8: expected ==, !=, <, <=, >, >=, contains, startsWith or in after 'status', found '= \"a\"'"),
        ("(status == \"a\"", "column 15: expected ')'"),
        ("status == \"a", "column 11: the string is never closed with \""),
        ("status in \"a\"", "column 11: expected '[' after in"),
        ("status in [\"a\" \"b\"]", "column 16: expected ',' or ']'"),
        ("&& x", "column 1: expected a field name, '!', '(' or exists(field)"),
        ("status == \"a\" extra", "column 15: unexpected 'extra'"),
        ("exists(mail", "column 12: expected ')' after exists(mail"),
        ("!= \"x\"", "column 1: '!=' needs a field before it"),
    ])
    func rejects(_ text: String, _ message: String) {
        #expect(throws: ExpressionError.self) { try FilterExpression.parse(text) }
        do { _ = try FilterExpression.parse(text) } catch { #expect(error.description == message) }
    }
}

@Suite struct TemplateLanguageTests {
    @Test(arguments: [
        ("{{givenName | trim}} {{sn}}", "Alice Johnson"),
        ("{{mail | lower}}", "alice.j@corp.example"),
        ("{{ sn | upper | left(3) }}", "JOH"),
        ("{{sn | substring(1, 3)}}", "ohn"),
        ("{{sn | substring(5, 10)}}", "on"),
        ("{{sn | left(100)}}", "Johnson"),
        ("{{mail | replace(\"@Corp.Example\", \"@corp.example\")}}", "Alice.J@corp.example"),
        ("{{phone | default(\"none\")}}", "none"),
        ("{{phone}}", ""),
        ("static text", "static text"),
        ("{{title}}", "Senior Engineer"),
        ("uid={{sn | lower}},ou=People", "uid=johnson,ou=People"),
        ("{{city | upper}} {{city | lower}} {{city}}", "MÜNCHEN münchen München"),
    ])
    func renders(_ text: String, _ expected: String) throws {
        let template = try ValueTemplate.parse(text)
        #expect(try template.render(person) == expected)
        // The byte renderer the engine uses (with its ASCII fast paths) gives the same text.
        var bytes: [UInt8] = Array("left over".utf8)
        try template.render(person, into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == expected)
    }

    @Test(arguments: [
        ("{{sn", "column 1: '{{' is never closed with '}}'"),
        ("x }}", "column 3: '}}' has no matching '{{'"),
        ("{{ }}", "column 4: expected a field name inside {{ }}"),
        ("{{sn | lowercase}}", "column 8: unknown pipe 'lowercase' (use lower, upper, trim, left(n), substring(start, length), replace(a, b) or default(x))"),
        ("{{sn | left}}", "column 12: left needs a length: left(n)"),
        ("{{sn | left(x)}}", "column 13: expected a number"),
        ("{{sn | substring(1)}}", "column 19: substring needs a start and a length: substring(start, length)"),
        ("{{sn | replace(\"\", \"x\")}}", "column 15: replace needs a non-empty string to find"),
        ("{{sn sn}}", "column 6: expected '|' or '}}', found 'sn'"),
    ])
    func rejects(_ text: String, _ message: String) {
        do {
            _ = try ValueTemplate.parse(text)
            Issue.record("\(text) parsed")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func binaryValuesFailTheRowNotTheProcess() throws {
        let entry = Entry(dn: "x", attributes: [("photo", [Value(Data([0xFF, 0xFE]))])])
        #expect(throws: TransformError("photo is binary, not text, so {{photo}} cannot use it")) {
            try ValueTemplate.parse("{{photo}}").render(entry)
        }
    }

    @Test func passwordsAreStrongAndDiffer() {
        let a = PasswordGenerator.make(), b = PasswordGenerator.make()
        #expect(a.count == 20 && a != b)
        #expect(a.contains { $0.isUppercase } && a.contains { $0.isLowercase } && a.contains { $0.isNumber })
        #expect(a.contains { "!#$%&*+-=?@^_".contains($0) })
    }
}

import Foundation

@Suite struct ServerFilterTests {
    @Test(arguments: [
        ("status == \"active\"", "(status=active)"),
        ("status != \"active\"", nil),
        ("title contains \"a*b(c)\\\\d\"", "(title=*a\\2ab\\28c\\29\\5cd*)"),
        ("sn startsWith \"Mü\"", "(sn=Mü*)"),
        ("status in [\"a\", \"b\"]", "(|(status=a)(status=b))"),
        ("exists(mail)", "(mail=*)"),
        ("!exists(mail)", nil),
        ("exists(mail) && status != \"x\"", "(mail=*)"),
        ("exists(mail) && status == \"x\"", "(&(mail=*)(status=x))"),
        ("exists(mail) || !exists(sn)", nil),
        ("exists(mail) || sn == \"J\"", "(|(mail=*)(sn=J))"),
        ("status == \"\"", nil),
    ] as [(String, String?)])
    func positiveTestsGoToTheServerNegationsDoNot(_ filter: String, _ expected: String?) throws {
        #expect(try FilterExpression.parse(filter).ldapSuperset == expected)
    }

    @Test func theSourceScopeAsksOnlyForWhatTheJobReads() throws {
        let spec = JobSpec(source: JobSource(connection: "s", filter: "status == \"active\" && !exists(leaver)", base: "ou=HR"),
                           destination: JobDestination(connection: "d", objectClass: ["person"], container: "ou=People", rdn: "uid"),
                           mappings: [FieldMapping(source: "id", destination: "employeeNumber", key: true),
                                      FieldMapping(destination: "cn", value: "{{givenName}} {{sn | upper}}"),
                                      FieldMapping(source: "login", destination: "uid")])
        let engine = try JobEngine(name: "j", spec: spec, destinationNeedsDN: true)
        #expect(engine.sourceScope == ReadScope(base: "ou=HR", attributes: ["id", "givenName", "sn", "login", "leaver", "status"],
                                                filter: "(status=active)"))
        #expect(engine.destinationScope == ReadScope(base: "ou=People", attributes: ["objectClass", "employeeNumber", "cn", "uid"]))
    }
}

