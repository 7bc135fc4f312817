import Foundation
import TestSupport
import Testing

/// `flavor: activeDirectory` against a real Samba AD domain controller (one per test process).
@Suite(.serialized) struct ActiveDirectoryTests {
    /// A repository whose collection `users` reads the domain's users (`sAMAccountName`, keyed
    /// by it) into the LDIF file `out`, through the connection `ad` (`connection` is its spec
    /// after `type: ldap`).
    static func fixture(_ dc: SambaDC, connection: String, out: String, folder: TemporaryFolder) throws -> GitFixture {
        let password = folder.sub("ad-password")
        try SambaDC.adminPassword.write(toFile: password, atomically: true, encoding: .utf8)
        let fixture = try GitFixture()
        try fixture.write([
            "connections.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: ad }
                spec:
                  type: ldap
                  baseDN: \(dc.baseDN)
                  bindDN: \(dc.adminDN)
                  passwordFrom: { file: \(password) }
                \(connection)
                ---
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: out }
                spec: { type: ldif, path: \(out) }

                """,
            "job.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: users }
                spec:
                  source: { connection: ad, base: "CN=Users,\(dc.baseDN)", filter: 'objectClass == "user"' }
                  destination: { connection: out, objectClass: [inetOrgPerson], container: "ou=People,dc=copy", rdn: uid }
                  mappings:
                    - { source: sAMAccountName, destination: uid, key: true }
                    - { source: sAMAccountName, destination: cn }
                    - { source: sAMAccountName, destination: sn }

                """,
            "collection.yaml": Fixtures.collection("users", jobs: ["users"]),
        ])
        try fixture.commit("ad users")
        return fixture
    }

    @Test func usersAreReadOverLDAPSWithTheDCsCertificateVerified() throws {
        let dc = try SambaDC.corp.get()
        let folder = try TemporaryFolder("ad-read")
        let out = folder.sub("users.ldif")
        let fixture = try Self.fixture(dc, connection: """
              url: \(dc.ldapsURL)
              caFile: \(dc.tls.caFile)
              flavor: activeDirectory
            """, out: out, folder: folder)
        let home = try Home(fixture)
        let (result, report) = try home.run("users")
        #expect(result.status == 0 && report["status"] as? String == "succeeded", "\(result.stdout)\(result.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        // The oracle: ldapsearch, as the DC's Administrator, for the same users.
        let names = try dc.search("CN=Users,\(dc.baseDN)", "(objectClass=user)", ["sAMAccountName"]).split(separator: "\n")
            .filter { $0.hasPrefix("sAMAccountName: ") }.map { String($0.dropFirst(16)) }
        #expect(names.contains("Administrator") && names.count >= 2, "\(names)")
        for name in names { #expect(text.contains("dn: uid=\(name),ou=People,dc=copy"), "\(name) is missing: \(text)") }
        #expect(stats(report, 0)["created"] == names.count, "\(report)")
    }

    @Test func aPlainBindIsRefusedWithAnErrorThatSaysToUseTLS() throws {
        let dc = try SambaDC.corp.get()
        let folder = try TemporaryFolder("ad-plain")
        let fixture = try Self.fixture(dc, connection: "  url: \(dc.ldapURL)\n", out: folder.sub("users.ldif"), folder: folder)
        let home = try Home(fixture)
        let (result, report) = try home.run("users")
        // The job failed, and its onFailure (abort, by default) stopped the run.
        #expect(result.status != 0 && report["status"] as? String == "aborted", "\(report["status"] ?? "none"): \(result.stderr)")
        let error = jobField(report, 0, "error") ?? ""
        #expect(error.contains("binding as \(dc.adminDN) to \(dc.ldapURL) failed: strongerAuthRequired"), "\(error)")
        #expect(error.hasSuffix("the server wants transport encryption for this bind: use an ldaps:// URL, or startTLS: true"),
                "\(error)")
        #expect(!error.contains(SambaDC.adminPassword))
        #expect(!FileManager.default.fileExists(atPath: folder.sub("users.ldif")), "nothing was written")
    }

    /// The flavor refuses an ldap:// URL without StartTLS before anything runs, at its line.
    @Test func theActiveDirectoryFlavorWantsTransportEncryption() throws {
        let folder = try TemporaryFolder("ad-flavor")
        let config = folder.sub("config")
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        try """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: ad }
            spec:
              type: ldap
              url: ldap://dc1.corp.example
              baseDN: DC=corp,DC=example
              flavor: activeDirectory

            """.write(toFile: (config as NSString).appendingPathComponent("ad.yaml"), atomically: true, encoding: .utf8)
        let refused = try syncwright(["validate", "--path", config])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("ad.yaml:6:8: spec.url: Active Directory refuses plain binds without transport encryption: "
            + "use an ldaps:// URL, or startTLS: true"), "\(refused.stderr)\(refused.stdout)")
        let text = try String(contentsOfFile: (config as NSString).appendingPathComponent("ad.yaml"), encoding: .utf8)
        try (text + "  startTLS: true\n").write(toFile: (config as NSString).appendingPathComponent("ad.yaml"), atomically: true,
                                                 encoding: .utf8)
        let accepted = try syncwright(["validate", "--path", config])
        #expect(accepted.status == 0, "\(accepted.stderr)")
    }
}
