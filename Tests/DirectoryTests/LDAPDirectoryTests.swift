import Directory
import Foundation
import TestSupport
import Testing

@Suite(.serialized) struct LDAPDirectoryTests {
    static let corp = "dc=corp,dc=example"
    static let people = "ou=People,dc=corp,dc=example"

    func settings(_ server: Slapd, password: String = Slapd.syncPassword, pageSize: Int = 500) -> LDAPSettings {
        LDAPSettings(url: server.url, bindDN: Slapd.syncDN(Self.corp), password: password, baseDN: Self.corp, pageSize: pageSize)
    }

    func person(_ uid: String, _ extra: [(AttributeName, [Value])] = []) -> Entry {
        Entry(dn: "uid=\(uid),\(Self.people)", attributes: [
            ("objectClass", ["inetOrgPerson"]), ("uid", [Value(uid)]), ("cn", [Value("User \(uid)")]), ("sn", ["User"]),
        ] + extra)
    }

    @Test func pagedReadsGetPastTheServersSizeLimit() throws {
        let server = try Slapd(suffixes: [Self.corp], sizeLimit: 5)
        try server.add((1...12).map { "dn: uid=u\($0),\(Self.people)\nobjectClass: inetOrgPerson\nuid: u\($0)\ncn: U\nsn: U\n" }
            .joined(separator: "\n"))
        // The oracle: the service account's plain search is cut at the size limit.
        let plain = try runProcess("/usr/bin/ldapsearch", ["-x", "-H", server.url, "-D", Slapd.syncDN(Self.corp), "-w", Slapd.syncPassword,
                                                            "-b", Self.people, "-LLL", "(uid=*)", "1.1"])
        #expect(plain.status == 4) // sizeLimitExceeded
        let directory = LDAPDirectory(settings(server, pageSize: 3), what: "connection corp")
        var pages: [Int] = []
        var uids: [String] = []
        try directory.read(ReadScope(base: Self.people, attributes: ["uid"], filter: "(uid=*)"), pageSize: 100) { page in
            pages.append(page.count)
            uids += page.compactMap { $0["uid"].first?.text }
        }
        #expect(uids.sorted() == (1...12).map { "u\($0)" }.sorted())
        #expect(pages.allSatisfy { $0 <= 3 })
    }

    /// A kept read is handed over once more without a search (the server is stopped by then),
    /// and a write through the directory forgets it.
    @Test func aKeptReadIsReadOnceMoreFromMemoryAndAWriteForgetsIt() throws {
        let server = try Slapd(suffixes: [Self.corp])
        let directory = LDAPDirectory(settings(server), what: "connection corp")
        try directory.apply(objects: (0..<5).map { [.add(person("k\($0)"))] }) { _, error in #expect(error == nil) }
        let scope = ReadScope(base: Self.people, attributes: ["uid"], filter: "(uid=*)")
        func uids() throws -> [String] {
            var out: [String] = []
            try directory.read(scope, pageSize: 2) { page in out += page.compactMap { $0["uid"].first?.text } }
            return out.sorted()
        }
        directory.keepNextRead(of: scope)
        let first = try uids()
        #expect(first == (0..<5).map { "k\($0)" })
        // Another scope is searched as usual, and leaves the kept read alone.
        var other = 0
        try directory.read(ReadScope(base: Self.people, attributes: ["cn"]), pageSize: 100) { other += $0.count }
        #expect(other == 6) // the five, and ou=People
        // A write forgets what was kept: the next read searches, and sees it.
        try directory.apply(.add(person("k5")))
        #expect(try uids().count == 6)
        // Kept again, then the server goes away: the read after the kept one needs no server,
        // and the one after that does.
        directory.keepNextRead(of: scope)
        #expect(try uids().count == 6)
        server.stop()
        #expect(try uids().count == 6)
        #expect(throws: DirectoryError.self) { _ = try uids() }
    }

    @Test func pipelinedWritesLandAndEachFailureNamesItsObject() throws {
        let server = try Slapd(suffixes: [Self.corp])
        let directory = LDAPDirectory(settings(server), what: "connection corp")
        // 100 adds, more than maxOutstanding, and one that collides with another in the same batch.
        var objects: [[DirectoryChange]] = (0..<100).map { [.add(person("p\($0)"))] }
        objects.append([.add(person("p7"))])
        var failures: [Int: String] = [:]
        var answered = 0
        try directory.apply(objects: objects) { index, error in
            answered += 1
            if let error { failures[index] = "\(error)" }
        }
        #expect(answered == 101)
        #expect(failures.keys.sorted() == [100])
        #expect(failures[100]?.hasPrefix("entryAlreadyExists (68)") == true)
        #expect(try server.dns(Self.people).count == 100)

        // Modify (minimal), rename, and delete, as one batch.
        try directory.apply(objects: [
            [.modify(dn: "uid=p1,\(Self.people)", [Modification(.replace, "cn", ["Renée \"Q\" Müller"]),
                                                     Modification(.add, "mail", ["p1@corp.example"])])],
            [.rename(dn: "uid=p2,\(Self.people)", newRDN: "uid=p2-new", newSuperior: nil),
             .modify(dn: "uid=p2-new,\(Self.people)", [Modification(.replace, "uid", ["p2-new"])])],
            [.delete(dn: "uid=p3,\(Self.people)")],
            [.delete(dn: "uid=nobody,\(Self.people)")],
        ]) { index, error in if let error { failures[1000 + index] = "\(error)" } }
        #expect(failures[1003]?.hasPrefix("noSuchObject (32)") == true)
        #expect(failures.count == 2)
        let p1 = try server.search("uid=p1,\(Self.people)", "(objectClass=*)", ["cn", "mail"], scope: "base")
        #expect(p1.contains("cn:: " + Data("Renée \"Q\" Müller".utf8).base64EncodedString()))
        #expect(p1.contains("mail: p1@corp.example"))
        let dns = try server.dns(Self.people)
        #expect(dns.contains("uid=p2-new,\(Self.people)") && !dns.contains("uid=p2,\(Self.people)"))
        #expect(!dns.contains("uid=p3,\(Self.people)"))
    }

    @Test func aDNWithSpecialCharactersRoundTrips() throws {
        let server = try Slapd(suffixes: [Self.corp])
        let directory = LDAPDirectory(settings(server), what: "connection corp")
        let value = "Smith, \"Jr\" + Müller\\x"
        let dn = DistinguishedName.make(rdnAttribute: "cn", value: value, container: Self.people)
        var failure: String?
        try directory.apply(objects: [[.add(Entry(dn: dn, attributes: [("objectClass", ["inetOrgPerson"]), ("cn", [Value(value)]), ("sn", ["S"])]))]]) {
            _, error in failure = error.map { "\($0)" }
        }
        #expect(failure == nil)
        var read: [Entry] = []
        try directory.read(ReadScope(base: Self.people, filter: "(cn=\(LDAPFilter.escape(value)))"), pageSize: 10) { read += $0 }
        #expect(read.count == 1)
        #expect(read.first?["cn"].first?.text == value)
        #expect(read.first.map { DistinguishedName.normalize($0.dn) } == DistinguishedName.normalize(dn))
    }

    @Test func aWrongPasswordFailsWithTheServersAnswerAndNoPassword() throws {
        let server = try Slapd(suffixes: [Self.corp])
        let directory = LDAPDirectory(settings(server, password: "not-the-password"), what: "connection corp")
        let error = #expect(throws: DirectoryError.self) { try directory.read(base: nil, pageSize: 10) { _ in } }
        #expect(error?.description == "connection corp: binding as \(Slapd.syncDN(Self.corp)) to \(server.url) failed: invalidCredentials (49): Invalid credentials")
        #expect(error?.description.contains("not-the-password") == false)
    }

    @Test func tlsTrustsOnlyTheGivenCA() throws {
        let certificates = try TemporaryFolder()
        let tls = try Slapd.makeCertificates(in: certificates.path)
        let other = try TemporaryFolder()
        let untrusted = try Slapd.makeCertificates(in: other.path, name: "Other CA")
        let server = try Slapd(suffixes: [Self.corp], tls: tls)
        func read(_ url: String, startTLS: Bool, caFile: String?, insecure: Bool = false) -> String? {
            let directory = LDAPDirectory(LDAPSettings(url: url, startTLS: startTLS, caFile: caFile, insecureSkipVerify: insecure,
                                                       bindDN: Slapd.syncDN(Self.corp), password: Slapd.syncPassword,
                                                       baseDN: Self.corp), what: "connection corp")
            do {
                try directory.read(base: Self.people, pageSize: 10) { _ in }
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(read(server.url, startTLS: true, caFile: tls.caFile) == nil)
        #expect(read(try #require(server.ldapsURL), startTLS: false, caFile: tls.caFile) == nil)
        let refused = read(server.url, startTLS: true, caFile: untrusted.caFile)
        #expect(refused?.hasPrefix("connection corp: StartTLS with \(server.url) failed: connectError (-11)") == true, "\(refused ?? "")")
        let refusedLDAPS = read(try #require(server.ldapsURL), startTLS: false, caFile: untrusted.caFile)
        #expect(refusedLDAPS?.contains("failed: serverDown (-1)") == true, "\(refusedLDAPS ?? "")")
        // Spelled out, anything goes.
        #expect(read(try #require(server.ldapsURL), startTLS: false, caFile: nil, insecure: true) == nil)
    }
}

/// Ranged retrieval, against a fake that caps values per answer as Active Directory does.
@Suite struct RangedRetrievalTests {
    static let group = "cn=big,ou=Groups,dc=corp,dc=example"

    @Test func aGroupLargerThanOneAnswerIsReadWholeInOrder() throws {
        let members = (0..<2_500).map { "uid=u\($0),ou=People,dc=corp,dc=example" }
        let fake = try RangedLDAP(entries: [
            Self.group: ["objectClass": ["groupOfNames"], "cn": ["big"], "member": members],
            "cn=small,ou=Groups,dc=corp,dc=example": ["objectClass": ["groupOfNames"], "cn": ["small"], "member": Array(members.prefix(3))],
        ], cap: 1_000)
        let directory = LDAPDirectory(LDAPSettings(url: fake.url, baseDN: "dc=corp,dc=example"), what: "connection ad")
        var read: [String: [String]] = [:]
        try directory.read(ReadScope(base: "ou=Groups,dc=corp,dc=example", attributes: ["cn", "member"]), pageSize: 100) { page in
            for entry in page { read[entry.dn] = entry["member"].map(\.description) }
        }
        #expect(read[Self.group] == members)
        #expect(read["cn=small,ou=Groups,dc=corp,dc=example"] == Array(members.prefix(3)))
        // The oracle is the fake's own log: the first answer, then two more ranges.
        #expect(try fake.searches() == [["cn", "member"], ["member;range=1000-*"], ["member;range=2000-*"]])
    }

    @Test func rangeNamesAreParsed() {
        #expect(LDAPDirectory.range(of: "member;range=0-1499").map { "\($0.name) \($0.high.map(String.init) ?? "*")" } == "member 1499")
        #expect(LDAPDirectory.range(of: "member;Range=1500-*").map { "\($0.name) \($0.high.map(String.init) ?? "*")" } == "member *")
        #expect(LDAPDirectory.range(of: "member") == nil)
        #expect(LDAPDirectory.range(of: "member;range=x-1") == nil)
    }
}
