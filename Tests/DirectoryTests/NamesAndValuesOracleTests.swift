import Directory
import Foundation
import Testing
import TestSupport

/// DNs and LDIF values against independent implementations: python-ldap (`ldap.dn.str2dn`,
/// `ldif.LDIFParser`), and a real slapd through `ldapadd` and `ldapsearch`.
@Suite struct NamesAndValuesOracleTests {
    /// Spellings of names; pairs are equal when python-ldap parses them to the same RDNs.
    static let spellings = [
        "cn=x=y,dc=corp", "cn=x\\=y,dc=corp", "cn=x\\3Dy,dc=corp", "cn=x\\3dy,dc=corp",
        "cn=a b,dc=corp", "cn=a\\20b,dc=corp", "cn=a\\ b,dc=corp", "CN=a b, DC=corp", "cn = a b , dc = corp",
        "cn=\\#1,dc=corp", "cn=\\231,dc=corp", "cn=a#1,dc=corp", "cn=a\\231,dc=corp",
        "cn=Smith\\, Jr,dc=corp", "cn=Smith\\2C Jr,dc=corp", "cn=Smith\\2c Jr,dc=corp",
        "cn=M\\C3\\BCller,dc=corp", "cn=Müller,dc=corp", "cn=\\ lead,dc=corp", "cn=\\20lead,dc=corp",
        "cn=trail\\ ,dc=corp", "cn=trail\\20,dc=corp", "cn=tab\\09,dc=corp", "uid=b+cn=a,dc=corp", "cn=a+uid=b,dc=corp",
        "cn=q\\\"x,dc=corp", "cn=q\\22x,dc=corp", "cn=l\\<g\\>,dc=corp", "cn=l\\3Cg\\3E,dc=corp",
    ]

    @Test func normalFormsAgreeWithPythonLDAP() throws {
        let folder = try TemporaryFolder("dn-oracle")
        let script = folder.sub("dn.py")
        try """
            import json, sys, ldap.dn
            out = []
            for dn in json.load(open(sys.argv[1])):
                rdns = ldap.dn.str2dn(dn)
                out.append([sorted([t.lower(), v] for t, v, _ in rdn) for rdn in rdns])
            print(json.dumps(out))
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let input = folder.sub("dns.json")
        try JSONSerialization.data(withJSONObject: Self.spellings).write(to: URL(fileURLWithPath: input))
        let result = try runProcess("/usr/bin/python3", [script, input])
        try #require(result.status == 0, "python-ldap (Debian python3-ldap) failed: \(result.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [NSArray])
        for i in Self.spellings.indices {
            for j in Self.spellings.indices where j > i {
                let theirs = parsed[i].isEqual(parsed[j])
                let ours = DistinguishedName.normalize(Self.spellings[i]) == DistinguishedName.normalize(Self.spellings[j])
                #expect(ours == theirs, "\(Self.spellings[i]) vs \(Self.spellings[j]): python-ldap says \(theirs ? "equal" : "different")")
            }
        }
    }

    @Test func escapedValuesParseBackToThemselves() throws {
        let values = ["x=y", "Smith, Jr", "#1", " lead", "trail ", "tab\t", "\tlead", "q\"x", "a+b", "l<g>;", "back\\slash", "Müller"]
        let folder = try TemporaryFolder("dn-escape")
        let script = folder.sub("escape.py")
        try """
            import json, sys, ldap.dn
            print(json.dumps([ldap.dn.str2dn(dn)[0][0][1] for dn in json.load(open(sys.argv[1]))]))
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let dns = values.map { DistinguishedName.make(rdnAttribute: "cn", value: $0, container: "dc=corp") }
        #expect(dns[5] == "cn=tab\\09,dc=corp")
        let input = folder.sub("dns.json")
        try JSONSerialization.data(withJSONObject: dns).write(to: URL(fileURLWithPath: input))
        let result = try runProcess("/usr/bin/python3", [script, input])
        try #require(result.status == 0, "\(result.stderr)")
        let back = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String])
        #expect(back == values)
    }

    @Test func collidingSpellingsNameBothObjects() throws {
        let folder = try TemporaryFolder("dn-collide")
        let directory = LDIFDirectory(.path(folder.sub("t.ldif")), what: "connection t", missingIsEmpty: true)
        try directory.apply(.add(Entry(dn: "cn=a  b,dc=corp", attributes: [("cn", ["a  b"])])))
        #expect { try directory.apply(.add(Entry(dn: "cn=a b,dc=corp", attributes: [("cn", ["a b"])]))) } throws: {
            "\($0)" == "cn=a b,dc=corp is the same name as cn=a  b,dc=corp, which already exists (DNs compare without regard to escapes, runs of spaces and the case of attribute types)"
        }
    }

    @Test func aBaseSpeltWithHexEscapesFindsItsEntries() throws {
        let entries = [Entry(dn: "uid=a,ou=Sales #1,dc=corp", attributes: [("uid", ["a"])]),
                       Entry(dn: "uid=b,ou=Other,dc=corp", attributes: [("uid", ["b"])])]
        let directory = LDIFDirectory(.contents(LDIFCodec.encode(entries), label: "t.ldif"), what: "t", missingIsEmpty: false)
        for base in ["ou=Sales #1,dc=corp", "ou=Sales\\20\\231,dc=corp", "OU=Sales\\20#1, DC=corp"] {
            var found: [String] = []
            try directory.read(base: base, pageSize: 10) { found += $0.map(\.dn) }
            #expect(found == ["uid=a,ou=Sales #1,dc=corp"], "\(base)")
        }
    }

    /// Values with whitespace at either end are written in base64; ldapadd then keeps them exactly.
    @Test func ldifValuesWithEdgeWhitespaceSurviveLdapadd() throws {
        let server = try Slapd(suffixes: ["dc=corp,dc=example"])
        let descriptions: [Value] = ["\tlead tab", "trail tab\t", " lead space", "trail space ", "\t", "in\tside"]
        let entry = Entry(dn: "cn=ws,ou=People,dc=corp,dc=example", attributes: [
            ("objectClass", ["inetOrgPerson"]), ("cn", ["ws"]), ("sn", ["S"]), ("description", descriptions),
        ])
        let text = String(decoding: LDIFCodec.encode([entry]), as: UTF8.self)
        #expect(text.contains("description:: CWxlYWQgdGFi"))
        #expect(text.contains("description: in\tside"))
        try server.add(text.replacingOccurrences(of: "version: 1\n", with: ""))
        let found = try server.search("cn=ws,ou=People,dc=corp,dc=example", "(objectClass=*)", ["description"], scope: "base")
        var read: [Entry] = []
        try LDIFDirectory(.contents(Data(found.utf8), label: "ldapsearch"), what: "ldapsearch", missingIsEmpty: false)
            .read(base: nil, pageSize: 10) { read += $0 }
        #expect(Set(read.first?["description"] ?? []) == Set(descriptions))
    }
}
