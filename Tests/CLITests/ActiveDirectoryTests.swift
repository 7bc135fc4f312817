import Foundation
import TestSupport
import Testing

/// `flavor: activeDirectory` against a real Samba AD domain controller (one per test process).
@Suite(.serialized) struct ActiveDirectoryTests {
    /// A repository whose collection `users` reads the domain's users (`sAMAccountName`, keyed
    /// by it) into the LDIF file `out`, through the connection `ad` (`connection` is its spec
    /// after `type: ldap`).
    static func fixture(_ dc: SambaDC, connection: String, out: String, folder: TemporaryFolder) throws -> GitFixture {
        let fixture = try GitFixture()
        try fixture.write([
            "connections.yaml": """
                \(try adConnection(dc, folder: folder, spec: connection))
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

    /// The connection `ad` to `dc`, as its Administrator (the password in a file of `folder`),
    /// with `spec` (indented lines: url, TLS, flavor) added to its spec.
    static func adConnection(_ dc: SambaDC, folder: TemporaryFolder, spec: String) throws -> String {
        let password = folder.sub("ad-password")
        try SambaDC.adminPassword.write(toFile: password, atomically: true, encoding: .utf8)
        return """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: ad }
            spec:
              type: ldap
              baseDN: \(dc.baseDN)
              bindDN: \(dc.adminDN)
              passwordFrom: { file: \(password) }
            \(spec)
            """
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

    /// objectGUID as a key, into a CSV file (its text form, python's uuid the oracle) and an LDIF
    /// file (base64, as ldapsearch prints it); a rerun matches every row by it and writes nothing.
    @Test func objectGUIDKeysGoToFilesAsTextAndAsBase64() throws {
        let dc = try SambaDC.corp.get()
        let folder = try TemporaryFolder("ad-guid")
        let fixture = try GitFixture()
        let users = "CN=Users,\(dc.baseDN)"
        let connection = try Self.adConnection(dc, folder: folder, spec: """
              flavor: activeDirectory
              url: \(dc.ldapsURL)
              caFile: \(dc.tls.caFile)
            """)
        try fixture.write([
            "connections.yaml": """
                \(connection)
                ---
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: sheet }
                spec: { type: csv, path: \(folder.sub("users.csv")) }
                ---
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: ldif }
                spec: { type: ldif, path: \(folder.sub("users.ldif")) }

                """,
            "jobs.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: to-csv }
                spec:
                  source: { connection: ad, base: "\(users)", filter: 'objectClass == "user"' }
                  destination: { connection: sheet }
                  mappings:
                    - { source: objectGUID, destination: guid, key: true }
                    - { source: sAMAccountName, destination: account }
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: to-ldif }
                spec:
                  source: { connection: ad, base: "\(users)", filter: 'objectClass == "user"' }
                  destination: { connection: ldif, objectClass: [extensibleObject], container: "ou=copy", rdn: uid }
                  mappings:
                    - { source: objectGUID, destination: objectGUID, key: true }
                    - { source: sAMAccountName, destination: uid }
                ---
                apiVersion: syncwright.dev/v1
                kind: JobCollection
                metadata: { name: guids }
                spec: { jobs: [ { job: to-csv }, { job: to-ldif } ] }

                """,
        ])
        try fixture.commit("guids")
        let home = try Home(fixture)
        let (result, report) = try home.run("guids")
        #expect(result.status == 0 && report["status"] as? String == "succeeded", "\(result.stdout)\(result.stderr)")
        // The oracle: ldapsearch's base64 of each user's objectGUID, and python's uuid of it.
        var expected: [String: String] = [:]
        for (_, values) in try dc.entries(users, "(objectClass=user)", ["sAMAccountName", "objectGUID"]) {
            if let name = values["samaccountname"]?.first, let guid = values["objectguid"]?.first { expected[name] = guid }
        }
        #expect(expected.count >= 2 && stats(report, 0)["created"] == expected.count, "\(expected) \(report)")
        let script = "import base64, sys, uuid\nfor a in sys.argv[1:]: print(uuid.UUID(bytes_le=base64.b64decode(a)))"
        let names = expected.keys.sorted()
        let texts = try runProcess("/usr/bin/python3", ["-c", script] + names.map { String(expected[$0]!.dropFirst(7)) })
            .stdout.split(separator: "\n").map(String.init)
        let csv = try String(contentsOfFile: folder.sub("users.csv"), encoding: .utf8)
        for (name, text) in zip(names, texts) { #expect(csv.contains("\(text),\(name)"), "\(name) \(text): \(csv)") }
        let ldif = try String(contentsOfFile: folder.sub("users.ldif"), encoding: .utf8).replacingOccurrences(of: "\n ", with: "")
        for name in names { #expect(ldif.contains("objectGUID:: \(expected[name]!.dropFirst(7))"), "\(name): \(ldif)") }
        // A rerun finds every row by its GUID, in both files.
        let (again, rerun) = try home.run("guids")
        #expect(again.status == 0, "\(again.stderr)")
        for job in 0..<2 {
            #expect(stats(rerun, job)["unchanged"] == expected.count && stats(rerun, job)["created"] == 0
                    && stats(rerun, job)["updated"] == 0 && stats(rerun, job)["deleted"] == 0, "\(rerun)")
        }
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
