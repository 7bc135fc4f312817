import Directory
import Foundation
import Manifests
import Sync
import TestSupport
import Testing

/// The data-safety fixes end to end against a real slapd, checked with ldapsearch: what a user
/// would look at after a run.
@Suite(.serialized) struct DataSafetyServerTests {
    static let corp = "dc=corp,dc=example"
    static let people = "ou=People,dc=corp,dc=example"

    static func mapping(_ source: String?, _ destination: String, value: String? = nil, key: Bool = false,
                        delimiter: String? = nil) -> FieldMapping {
        FieldMapping(source: source, destination: destination, value: value, generate: nil, key: key, newOnly: false,
                     delimiter: delimiter)
    }

    static func spec(_ mappings: [FieldMapping], container: String = people, rdn: String = "cn") -> JobSpec {
        JobSpec(source: JobSource(connection: "src", filter: nil, base: nil),
                destination: JobDestination(connection: "dst", objectClass: ["inetOrgPerson"], container: container, rdn: rdn),
                mappings: mappings, create: true, delete: false, workflow: nil, allowEmptySource: false,
                deleteThreshold: .standard)
    }

    static func directory(_ server: Slapd) -> LDAPDirectory {
        LDAPDirectory(LDAPSettings(url: server.url, bindDN: Slapd.syncDN(corp), password: Slapd.syncPassword, baseDN: corp),
                      what: "connection dst")
    }

    static let people4 = """
        id,name,sn,phones,boss
        1,x=y,Eq,555;555,
        2,#1 hash,Hash,777,x=y
        3,"Smith, Jr",Comma,888,
        4,a+b <c>,Plus,999,

        """

    static var mappings: [FieldMapping] {
        [mapping("id", "employeeNumber", key: true), mapping("name", "cn"), mapping("sn", "sn"),
         mapping("phones", "telephoneNumber", delimiter: ";"),
         mapping(nil, "manager", value: "cn={{boss}},\(people)")]
    }

    @Test func specialNamesAreNotRenamedOnARerunAndStaleValuesGo() throws {
        let server = try Slapd(suffixes: [Self.corp])
        let engine = try JobEngine(name: "people", spec: Self.spec(Self.mappings), destinationNeedsDN: true)
        let first = try engine.plan(source: csv(Self.people4), destination: Self.directory(server))
        #expect(first.count(.create) == 4)
        let outcome = engine.apply(first, to: Self.directory(server))
        #expect(outcome.error == nil && outcome.statistics.created == 4 && outcome.statistics.failed == 0)
        // The server spells these names its own way (cn=x\3Dy); a rerun sees them as the same.
        let rerun = try engine.plan(source: csv(Self.people4), destination: Self.directory(server))
        #expect(rerun.changes.isEmpty, "\(rerun.changes.map { "\($0.action) \($0.dn)" })")
        #expect(rerun.unchanged == 4)
        // An empty boss leaves manager out instead of writing cn=,ou=People.
        let eq = try server.search(Self.people, "(employeeNumber=1)", ["manager", "telephoneNumber"])
        #expect(!eq.contains("manager:"))
        #expect(eq.contains("telephoneNumber: 555"))
        let hash = try server.search(Self.people, "(employeeNumber=2)", ["manager"])
        #expect(hash.contains("manager: cn=x\\3Dy,\(Self.people)") || hash.contains("manager: cn=x=y,\(Self.people)"))

        // Someone adds a second phone by hand; the source still says 555 (twice). It goes.
        let modify = server.folder.sub("modify.ldif")
        try "dn: cn=x\\=y,\(Self.people)\nchangetype: modify\nadd: telephoneNumber\ntelephoneNumber: 666\n"
            .write(toFile: modify, atomically: true, encoding: .utf8)
        let added = try runProcess("/usr/bin/ldapmodify", ["-x", "-H", server.url, "-D", Slapd.rootDN(Self.corp),
                                                            "-w", Slapd.rootPassword, "-f", modify])
        try #require(added.status == 0, "\(added.stderr)")
        let stale = try engine.plan(source: csv(Self.people4), destination: Self.directory(server))
        #expect(stale.changes.count == 1)
        _ = engine.apply(stale, to: Self.directory(server))
        let after = try server.search(Self.people, "(employeeNumber=1)", ["telephoneNumber"])
        #expect(after.contains("telephoneNumber: 555") && !after.contains("666"))
    }

    @Test func aMisspeltColumnWritesNothing() throws {
        let server = try Slapd(suffixes: [Self.corp])
        let good = try JobEngine(name: "people", spec: Self.spec(Self.mappings), destinationNeedsDN: true)
        _ = good.apply(try good.plan(source: csv(Self.people4), destination: Self.directory(server)), to: Self.directory(server))
        let before = try server.search(Self.people)
        var typo = Self.mappings
        typo[2] = Self.mapping("snn", "sn")
        let bad = try JobEngine(name: "people", spec: Self.spec(typo), destinationNeedsDN: true)
        #expect { try bad.plan(source: csv(Self.people4), destination: Self.directory(server)) } throws: {
            "\($0)".contains("spec.mappings[2].source names 'snn', which source connection src does not have (did you mean 'sn'?)")
        }
        #expect(try server.search(Self.people) == before)
    }

    /// An LDAP source's fields are its server's schema: an attribute no entry has yet is fine,
    /// one the schema does not know is a misspelling.
    @Test func anLDAPSourceIsCheckedAgainstTheServersSchema() throws {
        let server = try Slapd(suffixes: [Self.corp])
        try server.add("dn: cn=p1,\(Self.people)\nobjectClass: inetOrgPerson\ncn: p1\nsn: P\nemployeeNumber: 1\n")
        func spec(_ extra: FieldMapping) -> JobSpec {
            Self.spec([Self.mapping("employeeNumber", "employeeNumber", key: true), Self.mapping("cn", "cn"), extra],
                      container: "dc=out")
        }
        let source = Self.directory(server)
        let fine = try JobEngine(name: "out", spec: spec(Self.mapping("mobile", "mobile")), destinationNeedsDN: true)
        #expect(try fine.plan(source: source, destination: ldif([])).count(.create) == 1)
        let typo = try JobEngine(name: "out", spec: spec(Self.mapping("mobil", "mobile")), destinationNeedsDN: true)
        #expect { try typo.plan(source: Self.directory(server), destination: ldif([])) } throws: {
            "\($0)".contains("spec.mappings[2].source names 'mobil', which source connection src does not have (did you mean 'mobile'?)")
        }
    }

    /// A one-member change to a large group sends that member only (a delete and an add in one
    /// modify), so what another writer added between the plan and the write stays.
    @Test func aOneMemberChangeSendsOneMemberAndKeepsWhatOthersAdded() throws {
        let server = try Slapd(suffixes: [Self.corp])
        try server.add("dn: ou=Groups,\(Self.corp)\nobjectClass: organizationalUnit\nou: Groups\n")
        func source(_ range: Range<Int>) -> LDIFDirectory {
            let group = Entry(dn: "cn=staff,dc=src", attributes: [("cn", ["staff"]),
                                                                  ("member", range.map { Value("uid=u\($0),ou=People,dc=src") })])
            return LDIFDirectory(.contents(LDIFCodec.encode([group]), label: "src.ldif"), what: "connection src", missingIsEmpty: false)
        }
        let spec = JobSpec(source: JobSource(connection: "src", filter: nil, base: nil),
                           destination: JobDestination(connection: "dst", objectClass: ["groupOfNames"],
                                                       container: "ou=Groups,\(Self.corp)", rdn: "cn"),
                           mappings: [Self.mapping("cn", "cn", key: true),
                                      Self.mapping(nil, "member", value: "{{member | replace(\"dc=src\", \"\(Self.corp)\")}}")],
                           create: true, delete: false, workflow: nil, allowEmptySource: false, deleteThreshold: .standard)
        let engine = try JobEngine(name: "groups", spec: spec, destinationNeedsDN: true)
        #expect(engine.apply(try engine.plan(source: source(0..<1_000), destination: Self.directory(server)),
                             to: Self.directory(server)).error == nil)

        let set = try engine.plan(source: source(1..<1_001), destination: Self.directory(server))
        let dn = "cn=staff,ou=Groups,\(Self.corp)"
        #expect(set.changes.flatMap(\.operations) == [.modify(dn: dn, [
            Modification(.delete, "member", [Value("uid=u0,ou=People,\(Self.corp)")]),
            Modification(.add, "member", [Value("uid=u1000,ou=People,\(Self.corp)")]),
        ])])
        // Another writer adds a member after the plan; a replace of the whole list would drop it.
        try server.add("dn: \(dn)\nchangetype: modify\nadd: member\nmember: uid=outsider,ou=People,\(Self.corp)\n")
        #expect(engine.apply(set, to: Self.directory(server)).error == nil)
        let found = try server.search(dn, "(objectClass=*)", ["member"], scope: "base")
        #expect(found.components(separatedBy: "\nmember: ").count - 1 == 1_001)
        #expect(found.contains("member: uid=outsider,ou=People,\(Self.corp)\n"))
        #expect(found.contains("member: uid=u1000,ou=People,\(Self.corp)\n"))
        #expect(!found.contains("member: uid=u0,ou=People,\(Self.corp)\n"))

        // 2,500 new members (and the outsider, whom the source does not list, gone) go in
        // modifies of at most 1,000 values each.
        let grown = try engine.plan(source: source(1..<3_501), destination: Self.directory(server))
        let modifies = grown.changes.flatMap(\.operations)
        #expect(modifies.count == 3)
        for case .modify(_, let modifications) in modifies {
            #expect(modifications.reduce(0) { $0 + $1.values.count } <= 1_000)
        }
        #expect(engine.apply(grown, to: Self.directory(server)).error == nil)
        let all = try server.search(dn, "(objectClass=*)", ["member"], scope: "base")
        #expect(all.components(separatedBy: "\nmember: ").count - 1 == 3_500)
        #expect(!all.contains("uid=outsider"))
    }

    @Test func aGroupTemplateKeepsAThousandMembersOnTheServer() throws {
        let server = try Slapd(suffixes: [Self.corp])
        try server.add("dn: ou=Groups,\(Self.corp)\nobjectClass: organizationalUnit\nou: Groups\n")
        let members = (0..<1_000).map { Value("uid=u\($0),ou=People,dc=src") }
        let group = Entry(dn: "cn=staff,dc=src", attributes: [("cn", ["staff"]), ("member", members)])
        let source = LDIFDirectory(.contents(LDIFCodec.encode([group]), label: "src.ldif"), what: "connection src",
                                   missingIsEmpty: false)
        let spec = JobSpec(source: JobSource(connection: "src", filter: nil, base: nil),
                           destination: JobDestination(connection: "dst", objectClass: ["groupOfNames"],
                                                       container: "ou=Groups,\(Self.corp)", rdn: "cn"),
                           mappings: [Self.mapping("cn", "cn", key: true),
                                      Self.mapping(nil, "member", value: "{{member | replace(\"dc=src\", \"\(Self.corp)\")}}")],
                           create: true, delete: false, workflow: nil, allowEmptySource: false, deleteThreshold: .standard)
        let engine = try JobEngine(name: "groups", spec: spec, destinationNeedsDN: true)
        let outcome = engine.apply(try engine.plan(source: source, destination: Self.directory(server)), to: Self.directory(server))
        #expect(outcome.error == nil && outcome.statistics.created == 1)
        let found = try server.search("cn=staff,ou=Groups,\(Self.corp)", "(objectClass=*)", ["member"], scope: "base")
        #expect(found.components(separatedBy: "\nmember: ").count - 1 == 1_000)
        #expect(found.contains("member: uid=u999,ou=People,\(Self.corp)"))
    }
}
