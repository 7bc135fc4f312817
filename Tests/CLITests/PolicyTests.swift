import Foundation
import TestSupport
import Testing

/// Policies at plan time, end to end: the ready-made ones refuse what they say, at the field at
/// fault; a `warn` rule shows in every plan format; a changed policy is checked over what is
/// already applied; a bad policy is an error that changes nothing.
@Suite struct PolicyTests {
    static let header = "apiVersion: syncwright.dev/v1\n"
    static let ready = (packageRoot as NSString).appendingPathComponent("policies")

    static func readyMade(_ file: String) throws -> String {
        try String(contentsOfFile: (ready as NSString).appendingPathComponent(file), encoding: .utf8)
    }

    /// A folder with one ready-made policy and the manifests given, checked with `validate --path`.
    func validate(_ policy: String, _ files: [String: String]) throws -> ProcessResult {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.sub("repo/policies"), withIntermediateDirectories: true)
        try Self.readyMade(policy).write(toFile: folder.sub("repo/policies/\(policy)"), atomically: true, encoding: .utf8)
        for (path, text) in files {
            let full = folder.sub("repo/\(path)")
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        return try syncwright(["validate", "--path", folder.sub("repo")])
    }

    static let connections = header + """
        kind: Connection
        metadata: { name: src }
        spec: { type: csv, path: /tmp/in.csv }
        ---
        apiVersion: syncwright.dev/v1
        kind: Connection
        metadata: { name: dst }
        spec: { type: ldif, path: /tmp/out.ldif }

        """

    static func job(_ extra: String) -> String {
        header + """
            kind: Job
            metadata: { name: j }
            spec:
              source: { connection: src }
              destination: { connection: dst }
              mappings:
                - { source: id, destination: uid, key: true }
            \(extra)
            """
    }

    @Test func deletesNeedReview() throws {
        let passes = try validate("protect-deletes.yaml", ["c.yaml": Self.connections, "jobs/j.yaml": Self.job("""
              delete: true
              workflow: { approvers: [ops@corp.example] }

            """)])
        #expect(passes.status == 0, "\(passes.stderr)")
        let fails = try validate("protect-deletes.yaml", ["c.yaml": Self.connections, "jobs/j.yaml": Self.job("  delete: true\n")])
        #expect(fails.status == 1)
        #expect(fails.stderr.contains("jobs/j.yaml:9:11: spec.delete: policy protect-deletes, rule deletes-need-review: "
                                      + "a job that deletes must be under workflow"), "\(fails.stderr)")
        // A job that leaves delete at its default (false) passes.
        #expect(try validate("protect-deletes.yaml", ["c.yaml": Self.connections, "jobs/j.yaml": Self.job("")]).status == 0)
    }

    @Test func certificatesAreVerified() throws {
        let channel = Self.header + """
            kind: NotificationChannel
            metadata: { name: hook }
            spec:
              type: webhook
              urlFrom: { env: HOOK }
              format: json

            """
        #expect(try validate("verified-tls.yaml", ["c.yaml": Self.connections, "n.yaml": channel]).status == 0)
        let fails = try validate("verified-tls.yaml", ["c.yaml": Self.connections,
                                                       "n.yaml": channel + "  insecureSkipVerify: true\n"])
        #expect(fails.status == 1)
        #expect(fails.stderr.contains("n.yaml:8:23: spec.insecureSkipVerify: policy verified-tls, rule no-insecure-skip-verify: "
                                      + "insecureSkipVerify turns certificate checks off"), "\(fails.stderr)")
    }

    @Test func ldapGoesOverTLS() throws {
        func ldap(_ url: String, _ extra: String = "") -> String {
            Self.header + """
                kind: Connection
                metadata: { name: corp }
                spec:
                  type: ldap
                  url: \(url)
                  baseDN: dc=corp,dc=example\(extra)

                """
        }
        #expect(try validate("ldap-over-tls.yaml", ["l.yaml": ldap("ldaps://dc1.corp.example")]).status == 0)
        #expect(try validate("ldap-over-tls.yaml", ["l.yaml": ldap("ldap://dc1.corp.example", "\n  startTLS: true")]).status == 0)
        let fails = try validate("ldap-over-tls.yaml", ["l.yaml": ldap("ldap://dc1.corp.example")])
        #expect(fails.status == 1)
        #expect(fails.stderr.contains("l.yaml:5:9: spec.type: policy ldap-over-tls, rule ldaps-or-starttls: "
                                      + "an ldap connection must use an ldaps:// url or startTLS"), "\(fails.stderr)")
        // Other connections are not ldap: the rule holds for them.
        #expect(try validate("ldap-over-tls.yaml", ["c.yaml": Self.connections]).status == 0)
    }

    static let warnPolicy = header + """
        kind: Policy
        metadata: { name: house }
        spec:
          rules:
            - name: small-pages
              match: { kinds: [Connection], names: "corp-*" }
              expression: 'spec.pageSize <= 500'
              message: keep pages at 500 or fewer
              enforcement: warn
            - name: described
              match: { kinds: [Connection] }
              expression: 'exists(metadata.description)'

        """

    static func ldap(_ name: String, pageSize: Int) -> String {
        header + """
            kind: Connection
            metadata: { name: \(name), description: a directory }
            spec: { type: ldap, url: "ldaps://dc1.example", baseDN: "dc=example", pageSize: \(pageSize) }

            """
    }

    @Test func aWarningShowsInEveryPlanFormatAndOnTheApplyPage() throws {
        let fixture = try GitFixture(files: ["policies/house.yaml": Self.warnPolicy, "c/corp.yaml": Self.ldap("corp-a", pageSize: 500)])
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder)
        try fixture.write(["c/corp.yaml": Self.ldap("corp-a", pageSize: 1000), "c/other.yaml": Self.ldap("other", pageSize: 2000)])
        try fixture.commit("bigger pages")
        let text = try syncwright(["plan"] + home.arguments)
        #expect(text.status == 2, "a warning does not refuse: \(text.stderr)")
        #expect(text.stdout.contains("Policies: 2 rules checked: 1 held, 1 warned about 1 object."), "\(text.stdout)")
        #expect(text.stdout.contains("⚠ c/corp.yaml:4:81: spec.pageSize: policy house, rule small-pages: keep pages at 500 or fewer"),
                "\(text.stdout)")
        #expect(!text.stdout.contains("c/other.yaml:"), "names: corp-* leaves `other` alone")

        let markdown = try syncwright(["plan", "--format", "markdown"] + home.arguments)
        #expect(markdown.stdout.contains("| ⚠️ | `house` | `small-pages` | warn | 1 | 1 |"), "\(markdown.stdout)")
        #expect(markdown.stdout.contains("| ✅ | `house` | `described` | deny | 2 | 0 |"))
        #expect(markdown.stdout.contains("- ⚠️ `c/corp.yaml:4:81` Connection `corp-a`, `spec.pageSize`: policy house, rule small-pages"))

        let json = try syncwright(["plan", "--format", "json"] + home.arguments)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let policies = try #require(document["policies"] as? [String: Any])
        let findings = try #require(policies["findings"] as? [[String: Any]])
        #expect(findings.count == 1)
        #expect(findings.first?["rule"] as? String == "small-pages" && findings.first?["enforcement"] as? String == "warn")
        #expect(findings.first?["line"] as? Int == 4 && findings.first?["column"] as? Int == 81)
        #expect((policies["rules"] as? [[String: Any]])?.map { $0["violations"] as? Int } == [1, 0])

        // validate says so on stderr, and the manifests are still valid.
        let validated = try syncwright(["validate", "--path", fixture.workTree])
        #expect(validated.status == 0)
        #expect(validated.stderr.contains("warning: c/corp.yaml:4:81: spec.pageSize: policy house, rule small-pages:"), "\(validated.stderr)")

        // Applied anyway; the apply page on the reports branch carries the warning.
        let applied = try syncwright(["apply"] + home.arguments)
        #expect(applied.status == 0, "\(applied.stderr)")
        let pages = try fixture.git(["ls-tree", "-r", "--name-only", "reports"], in: fixture.originPath)
        let head = try fixture.git(["rev-parse", "--short=7", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let page = try #require(pages.split(separator: "\n").first { $0.hasPrefix("applies/") && $0.contains(head) }, "\(pages)")
        let shown = try fixture.git(["show", "reports:\(page)"], in: fixture.originPath)
        #expect(shown.contains("| ⚠️ | `house` | `small-pages` | warn | 1 | 1 |"), "\(shown)")
    }

    @Test func aChangedPolicyIsCheckedOverWhatIsAppliedAndRefusedWithNothingStored() throws {
        let fixture = try GitFixture(files: ["policies/house.yaml": Self.warnPolicy, "c/corp.yaml": Self.ldap("corp-a", pageSize: 1000)])
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder)
        // Only the policy changes, to deny: the applied connection in an unchanged file breaks it.
        try fixture.write(["policies/house.yaml": Self.warnPolicy.replacingOccurrences(of: "enforcement: warn", with: "enforcement: deny")])
        try fixture.commit("pages are a rule now")
        let plan = try syncwright(["plan"] + home.arguments)
        #expect(plan.status == 1)
        #expect(plan.stderr.contains("c/corp.yaml:4:81: spec.pageSize: policy house, rule small-pages: keep pages at 500 or fewer"),
                "\(plan.stderr)")
        let before = try syncwright(["status", "--format", "json"] + home.arguments).stdout
        #expect(try syncwright(["apply"] + home.arguments).status == 1)
        #expect(try syncwright(["status", "--format", "json"] + home.arguments).stdout == before, "nothing was applied")

        // A later change to the connection alone, under the applied (warn) policy, plans.
        try fixture.write(["policies/house.yaml": Self.warnPolicy, "c/corp.yaml": Self.ldap("corp-a", pageSize: 400)])
        try fixture.commit("back")
        #expect(try syncwright(["plan"] + home.arguments).status == 2)
    }

    @Test(arguments: [
        ("    - name: r\n      expression: 'spec.delete == false'\n", "policies/p.yaml:6:7: spec.rules[0].match: required field is missing: which objects the rule checks"),
        ("    - name: r\n      match: { kinds: [Jobs] }\n      expression: 'x == \"1\"'\n", "policies/p.yaml:7:24: spec.rules[0].match.kinds[0]: 'Jobs' is not a kind"),
        ("    - name: r\n      match: { kinds: [Job] }\n      expression: 'spec.deleteThreshold.percent < \"five\"'\n",
         "spec.rules[0].expression: column 32: < compares numbers: write a number after it"),
        ("    - name: r\n      match: { kinds: [Job] }\n      expression: 'x == \"1\"'\n      enforcement: block\n",
         "spec.rules[0].enforcement: 'block' is not one of deny, warn"),
        ("    - name: r\n      match: { kinds: [Job] }\n      expression: 'x == \"1\"'\n    - name: r\n      match: { kinds: [Job] }\n      expression: 'y == \"1\"'\n",
         "spec.rules[1].name: another rule of this policy is named 'r'"),
    ])
    func aBadPolicyIsAnErrorAtItsField(rules: String, expected: String) throws {
        let fixture = try GitFixture(files: ["c.yaml": Self.connections])
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder)
        try fixture.write(["policies/p.yaml": Self.header + "kind: Policy\nmetadata: { name: p }\nspec:\n  rules:\n" + rules])
        try fixture.commit("a policy")
        let before = try syncwright(["status", "--format", "json"] + home.arguments).stdout
        let applied = try syncwright(["apply"] + home.arguments)
        #expect(applied.status == 1)
        #expect(applied.stderr.contains(expected), "\(applied.stderr)")
        #expect(try syncwright(["status", "--format", "json"] + home.arguments).stdout == before)
    }
}
