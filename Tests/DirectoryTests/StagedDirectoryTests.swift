import Directory
import Foundation
import TestSupport
import Testing

/// A preview's view of a server: the server's entries with staged changes laid over them, and
/// nothing written (checked with ldapsearch).
@Suite struct StagedDirectoryTests {
    static let corp = "dc=corp,dc=example"
    static let people = "ou=People,dc=corp,dc=example"

    func read(_ directory: Directory, _ scope: ReadScope) throws -> [String: [String: [String]]] {
        var out: [String: [String: [String]]] = [:]
        try directory.read(scope, pageSize: 2) { page in
            for entry in page {
                var attributes: [String: [String]] = [:]
                for index in 0..<entry.nameCount {
                    attributes[entry.name(at: index).name.lowercased()] = entry.values(at: index).map { String(decoding: $0, as: UTF8.self) }.sorted()
                }
                out[entry.dn] = attributes
            }
        }
        return out
    }

    @Test func stagedChangesAreReadBackOverTheServersEntriesAndNeverWritten() throws {
        let server = try Slapd(suffixes: [Self.corp])
        try server.add(["ann", "bob", "cat"].map { uid in
            "dn: uid=\(uid),\(Self.people)\nobjectClass: inetOrgPerson\nuid: \(uid)\ncn: \(uid)\nsn: S\n" + (uid == "bob" ? "" : "mail: \(uid)@corp.example\n")
        }.joined(separator: "\n"))
        try server.add("dn: ou=Groups,\(Self.corp)\nobjectClass: organizationalUnit\nou: Groups\n")
        let before = try server.search(Self.corp)
        let staged = StagedDirectory(over: LDAPDirectory(
            LDAPSettings(url: server.url, bindDN: Slapd.syncDN(Self.corp), password: Slapd.syncPassword, baseDN: Self.corp),
            what: "connection corp"))
        #expect(staged.traits.stagesChanges && staged.traits.readsFromServer)
        func dn(_ uid: String) -> String { "uid=\(uid),\(Self.people)" }

        try staged.apply(.modify(dn: dn("bob"), [Modification(.add, "mail", ["bob@corp.example"])]))
        try staged.apply(.modify(dn: dn("ann"), [Modification(.replace, "sn", ["Smith"])]))
        try staged.apply(.modify(dn: dn("ann"), [Modification(.replace, "cn", ["Ann Smith"])]))
        try staged.apply(.delete(dn: dn("cat")))
        try staged.apply(.add(Entry(dn: dn("dan"), attributes: [("objectClass", ["inetOrgPerson"]), ("uid", ["dan"]), ("cn", ["dan"]),
                                                                  ("sn", ["D"]), ("mail", ["dan@corp.example"])])))
        try staged.apply(.rename(dn: "UID=dan,\(Self.people)", newRDN: "uid=daniel", newSuperior: nil))
        #expect(throws: DirectoryError.self) { try staged.apply(.rename(dn: dn("nobody"), newRDN: "uid=x", newSuperior: nil)) }
        #expect(throws: DirectoryError.self) { try staged.apply(.modify(dn: dn("cat"), [Modification(.replace, "sn", ["X"])])) }

        // A filtered read: bob had no mail on the server (its filter left him out), and has one now.
        let withMail = try read(staged, ReadScope(base: Self.people, attributes: ["mail", "sn"], filter: "(mail=*)"))
        #expect(Set(withMail.keys) == [dn("ann"), dn("bob"), dn("daniel")], "\(withMail.keys)")
        #expect(withMail[dn("ann")] == ["mail": ["ann@corp.example"], "sn": ["Smith"]], "only the attributes asked for")
        #expect(withMail[dn("bob")]?["mail"] == ["bob@corp.example"])
        let all = try read(staged, ReadScope(base: Self.people))
        #expect(Set(all.keys) == [Self.people, dn("ann"), dn("bob"), dn("daniel")])
        #expect(all[dn("ann")]?["cn"] == ["Ann Smith"])
        // Outside the base asked for, nothing staged shows.
        #expect(Set(try read(staged, ReadScope(base: "ou=Groups,\(Self.corp)")).keys) == ["ou=Groups,\(Self.corp)"])

        #expect(throws: DirectoryError.self) { try staged.commit() }
        #expect(try server.search(Self.corp) == before, "a staged change reached the server")
    }
}
