import Foundation
import TestSupport
import Testing

/// CSV → corp (LDAP) → partner (LDAP): two suffixes of one throwaway slapd as two "domains".
/// The server's size limit (2) is below every read, so each read goes through paging.
struct LDAPWorld {
    static let corp = "ou=People,dc=corp,dc=example"
    static let partner = "ou=People,dc=partner,dc=example"
    static let hr = """
        id,login,given,sn,title,phones,status
        1,ajohnson,Alice,Johnson,Engineer,+49 1|+49 2,active
        2,bsmith,Bob "B",\"Smith, Jr + \\ Co\",Lead,,active
        3,dmuller,Dörte,Müller,Analyst,,active
        4,eold,Evan,Old,Retired,,inactive

        """

    let server: Slapd
    let secrets: TemporaryFolder
    let home: Home

    init(threshold: Int = 1) throws {
        server = try Slapd(sizeLimit: 2)
        secrets = try TemporaryFolder()
        try Slapd.syncPassword.write(toFile: secrets.sub("corp"), atomically: true, encoding: .utf8)
        try Slapd.syncPassword.write(toFile: secrets.sub("partner"), atomically: true, encoding: .utf8)
        let fixture = try GitFixture(files: [
            "connections.yaml": Self.connections(
                ("corp", server.url, "dc=corp,dc=example", secrets.sub("corp"), "pageSize: 2"),
                ("partner", server.url, "dc=partner,dc=example", secrets.sub("partner"), "pageSize: 2\n  maxOutstanding: 4")),
            "data/hr.csv": Self.hr,
            "jobs.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: hr-to-corp }
                spec:
                  source: { connection: hr, filter: 'status == "active"' }
                  destination: { connection: corp, objectClass: [inetOrgPerson], container: "\(Self.corp)", rdn: uid }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }
                    - { destination: cn, value: "{{given}} {{sn}}" }
                    - { source: sn, destination: sn }
                    - { source: title, destination: title }
                    - { source: phones, destination: telephoneNumber, delimiter: "|" }
                    - { destination: userPassword, generate: password }
                  delete: true
                  deleteThreshold: { count: \(threshold) }
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: corp-to-partner }
                spec:
                  source: { connection: corp, base: "\(Self.corp)", filter: 'exists(employeeNumber)' }
                  destination: { connection: partner, objectClass: [inetOrgPerson], container: "\(Self.partner)", rdn: cn }
                  mappings:
                    - { source: employeeNumber, destination: employeeNumber, key: true }
                    - { source: cn, destination: cn }
                    - { source: sn, destination: sn }
                    - { source: title, destination: title }
                ---
                apiVersion: syncwright.dev/v1
                kind: JobCollection
                metadata: { name: domains }
                spec: { jobs: [ { job: hr-to-corp }, { job: corp-to-partner } ] }

                """,
        ])
        home = try Home(fixture)
    }

    /// The `hr` CSV connection, then one ldap connection per (name, url, suffix, password file,
    /// extra spec lines), binding as the suffix's service account.
    static func connections(_ ldap: (String, String, String, String, String)...) -> String {
        var out = """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: hr }
            spec: { type: csv, repoPath: data/hr.csv }

            """
        for (name, url, suffix, passwordFile, extra) in ldap {
            out += """
                ---
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: \(name) }
                spec:
                  type: ldap
                  url: \(url)
                  baseDN: \(suffix)
                  bindDN: \(Slapd.syncDN(suffix))
                  passwordFrom: { file: \(passwordFile) }
                  \(extra)

                """
        }
        return out
    }

    /// One entry as ldapsearch prints it, with the attributes sorted (values in server order).
    func entry(_ dn: String, _ attributes: [String]) throws -> [String] {
        try server.search(dn, "(objectClass=*)", attributes, scope: "base").split(separator: "\n").map(String.init)
    }

    func change(_ csv: String, _ message: String) throws {
        try home.fixture.write(["data/hr.csv": csv])
        try home.fixture.commit(message)
        #expect(try syncwright(["apply"] + home.args).status == 0)
    }
}

@Suite(.serialized) struct LDAPRunTests {
    @Test func csvToLDAPToLDAPCreatesExactEntriesThenNothing() throws {
        let world = try LDAPWorld()
        let (first, report) = try world.home.run("domains")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(stats(report, 0) == ["read": 3, "created": 3, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0, "failed": 0, "unresolved": 0])
        #expect(stats(report, 1) == ["read": 3, "created": 3, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0, "failed": 0, "unresolved": 0])
        let alice = try world.entry("uid=ajohnson,\(LDAPWorld.corp)", ["objectClass", "employeeNumber", "uid", "cn", "sn", "title", "telephoneNumber"])
        #expect(alice == ["dn: uid=ajohnson,\(LDAPWorld.corp)", "objectClass: inetOrgPerson", "employeeNumber: 1", "uid: ajohnson",
                          "cn: Alice Johnson", "sn: Johnson", "title: Engineer", "telephoneNumber: +49 1", "telephoneNumber: +49 2"])
        #expect(try world.entry("uid=ajohnson,\(LDAPWorld.corp)", ["userPassword"]).count == 2) // generated, and stored
        #expect(try world.server.dns(LDAPWorld.corp) == ["uid=ajohnson", "uid=bsmith", "uid=dmuller"].map { "\($0),\(LDAPWorld.corp)" })
        // The partner's RDN is the cn: ",", "+", "\"", "\\" and non-ASCII are escaped in the DN (RFC 4514).
        let partnerDNs = try world.server.dns(LDAPWorld.partner)
        #expect(partnerDNs.count == 3)
        // (OpenLDAP answers with hex escapes.)
        #expect(partnerDNs.contains(#"cn=Bob \22B\22 Smith\2C Jr \2B \5C Co,ou=People,dc=partner,dc=example"#), "\(partnerDNs)")
        #expect(try world.server.search(LDAPWorld.partner, #"(cn=Bob "B" Smith, Jr + \5c Co)"#, ["sn"]).contains(#"sn: Smith, Jr + \ Co"#))
        #expect(try world.server.search(LDAPWorld.partner, "(employeeNumber=3)", ["cn"]).contains("cn:: " + Data("Dörte Müller".utf8).base64EncodedString()))

        let (again, second) = try world.home.run("domains")
        #expect(again.status == 0)
        #expect(stats(second, 0)["unchanged"] == 3 && stats(second, 0)["updated"] == 0)
        #expect(stats(second, 1)["unchanged"] == 3 && stats(second, 1)["updated"] == 0 && stats(second, 1)["created"] == 0)
    }

    @Test func anAttributeChangeIsOneModifyAndALoginChangeARename() throws {
        let world = try LDAPWorld()
        _ = try world.home.run("domains")
        try world.change(LDAPWorld.hr.replacingOccurrences(of: "Engineer", with: "Principal Engineer")
            .replacingOccurrences(of: "1,ajohnson", with: "1,ajones"), "promotion and a new login")
        let (result, report) = try world.home.run("domains")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(stats(report, 0) == ["read": 3, "created": 0, "updated": 1, "deleted": 0, "unchanged": 2, "skipped": 0, "failed": 0, "unresolved": 0])
        let runID = try #require(report["runId"] as? String)
        let log = try runProcess("/usr/bin/sqlite3", [world.home.folder.sub("home/state.sqlite"),
                                                      "SELECT log FROM jobRuns WHERE runId = '\(runID)' AND job = 'hr-to-corp'"])
        #expect(log.stdout == """
            > uid=ajohnson,\(LDAPWorld.corp) → uid=ajones,\(LDAPWorld.corp)
            ~ uid=ajones,\(LDAPWorld.corp) uid: ajohnson → ajones
            ~ uid=ajones,\(LDAPWorld.corp) title: Engineer → Principal Engineer

            """)
        let dns = try world.server.dns(LDAPWorld.corp)
        #expect(dns.contains("uid=ajones,\(LDAPWorld.corp)") && !dns.contains("uid=ajohnson,\(LDAPWorld.corp)"))
        #expect(try world.entry("uid=ajones,\(LDAPWorld.corp)", ["uid", "title"])
                == ["dn: uid=ajones,\(LDAPWorld.corp)", "uid: ajones", "title: Principal Engineer"])
        // The partner copy follows with one modify.
        #expect(stats(report, 1)["updated"] == 1 && stats(report, 1)["unchanged"] == 2)
    }

    @Test func deletesRespectTheGuard() throws {
        let world = try LDAPWorld(threshold: 1)
        _ = try world.home.run("domains")
        let twoGone = LDAPWorld.hr.split(separator: "\n").filter { !$0.hasPrefix("1,") && !$0.hasPrefix("3,") }.joined(separator: "\n") + "\n"
        try world.change(twoGone, "two leavers")
        let (result, report) = try world.home.run("domains")
        #expect(result.status == 1)
        #expect(jobField(report, 0, "error") == "would delete 2, threshold 1; nothing was changed (raise deleteThreshold if that is expected)")
        #expect(try world.server.dns(LDAPWorld.corp).count == 3) // nothing deleted
        // Within the threshold, the delete happens.
        let oneGone = LDAPWorld.hr.split(separator: "\n").filter { !$0.hasPrefix("3,") }.joined(separator: "\n") + "\n"
        try world.change(oneGone, "one leaver")
        let (_, after) = try world.home.run("domains")
        #expect(stats(after, 0)["deleted"] == 1)
        #expect(!(try world.server.dns(LDAPWorld.corp).contains("uid=dmuller,\(LDAPWorld.corp)")))
    }

    @Test func aWrongPasswordFailsTheJobWithTheServersAnswer() throws {
        let world = try LDAPWorld()
        try "wrong-password-123".write(toFile: world.secrets.sub("corp"), atomically: true, encoding: .utf8)
        let (result, report) = try world.home.run("domains")
        #expect(result.status == 1)
        #expect(report["status"] as? String == "aborted")
        #expect(jobField(report, 0, "error") == "connection corp: binding as cn=sync,dc=corp,dc=example to \(world.server.url) failed: "
            + "invalidCredentials (49): Invalid credentials")
        let everything = result.stdout + result.stderr + (try syncwright(["history", "--format", "json"] + world.home.args).stdout)
        #expect(!everything.contains("wrong-password-123") && !everything.contains(Slapd.syncPassword))
    }

    @Test func skippingTLSVerificationWorksButIsWarnedAboutInEveryReport() throws {
        let certificates = try TemporaryFolder()
        let server = try Slapd(suffixes: ["dc=corp,dc=example"], tls: try Slapd.makeCertificates(in: certificates.path))
        let secret = try TemporaryFolder()
        try Slapd.syncPassword.write(toFile: secret.sub("pw"), atomically: true, encoding: .utf8)
        let fixture = try GitFixture(files: [
            "all.yaml": LDAPWorld.connections(("corp", try #require(server.ldapsURL), "dc=corp,dc=example", secret.sub("pw"),
                                               "insecureSkipVerify: true")) + """
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: users }
                spec:
                  source: { connection: hr }
                  destination: { connection: corp, objectClass: [inetOrgPerson], container: "\(LDAPWorld.corp)", rdn: uid }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }
                    - { source: sn, destination: sn }
                    - { source: sn, destination: cn }
                ---
                apiVersion: syncwright.dev/v1
                kind: JobCollection
                metadata: { name: users }
                spec: { jobs: [ { job: users } ] }

                """,
            "data/hr.csv": "id,login,sn\n1,ajohnson,Johnson\n",
        ])
        let home = try Home(fixture)
        let text = try syncwright(["run", "users"] + home.args)
        #expect(text.status == 0, "\(text.stderr)")
        let warning = "connection corp: TLS certificate verification is off (insecureSkipVerify), so the server's identity is not checked"
        #expect(text.stdout.contains("warning: \(warning)"))
        let (_, report) = try home.run("users")
        #expect(report["warnings"] as? [String] == [warning])
        let runID = try #require(report["runId"] as? String)
        #expect(try ReportsBranch(fixture: fixture).show("runs/users/\(runID)/summary.md").contains("## Warnings\n\n- \(warning)\n"))
        #expect(try server.dns(LDAPWorld.corp) == ["uid=ajohnson,\(LDAPWorld.corp)"])
    }
}

