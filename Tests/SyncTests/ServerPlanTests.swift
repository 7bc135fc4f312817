import Directory
import Foundation
import Sync
import TestSupport
import Testing

/// A server destination is planned another way (the source is read meanwhile, and each page the
/// server sends is diffed as it comes). Both ways must come to the same change set; here the
/// same destination objects sit in an LDIF file and in a real slapd, and one job is planned
/// against each.
@Suite(.serialized) struct ServerPlanTests {
    static let corp = "dc=corp,dc=example"
    static let people = "ou=People,dc=corp,dc=example"

    /// uid, employeeNumber (nil: no key, so not managed), sn.
    static let objects: [(String, String?, String)] = [
        ("ajohnson", "1", "Johnson"), // unchanged
        ("bsmith", "2", "Smith"), // sn changes
        ("cold", "3", "Old"), // renamed to cnew
        ("d1", "4", "Twin"), ("d2", "4", "Twin"), // one key twice: the row fails, neither object is deleted
        ("e", "5", "E"), // the row has no login, so its DN cannot be made: it fails, the object stays
        ("gone", "6", "Gone"), // no row: deleted
        ("svc", nil, "Service"), // no key: never touched
        ("g", "8", "G"), // two rows with this key: the first one counts
        ("inactive", "11", "Inactive"), // its row is filtered out: deleted
    ]

    static let source = """
        id,login,given,sn,status
        1,ajohnson,Alice,Johnson,active
        2,bsmith,Bob,Smyth,active
        3,cnew,Cy,Old,active
        4,d,Dee,Twin,active
        5,,Eve,E,active
        7,new,Nia,New,active
        ,nokey,No,Key,active
        8,g,Gus,G,active
        8,g2,Gus,G,active
        10,,Fay,Fail,active
        11,inactive,In,Active,inactive

        """

    static func entry(_ object: (String, String?, String)) -> Entry {
        let (uid, number, sn) = object
        let given = ["ajohnson": "Alice", "bsmith": "Bob", "cold": "Cy", "g": "Gus", "inactive": "In", "e": "Eve"][uid] ?? uid
        var attributes: [(AttributeName, [Value])] = [("objectClass", ["inetOrgPerson"]), ("uid", [Value(uid)]),
                                                      ("cn", [Value("\(given) \(sn)")]), ("sn", [Value(sn)])]
        if let number { attributes.append(("employeeNumber", [Value(number)])) }
        return Entry(dn: "uid=\(uid),\(people)", attributes: attributes)
    }

    @Test func aServerAndAFileWithTheSameObjectsGiveTheSameChangeSet() throws {
        let server = try Slapd(suffixes: [Self.corp])
        try server.add(LDIFCodec.encode(Self.objects.map(Self.entry)).text)
        let spec = job(delete: true, filter: "status == \"active\"", container: Self.people)
        let engine = try JobEngine(name: "j", spec: spec, destinationNeedsDN: true)
        let directory = LDAPDirectory(LDAPSettings(url: server.url, bindDN: Slapd.syncDN(Self.corp), password: Slapd.syncPassword,
                                                   baseDN: Self.corp, pageSize: 2), what: "connection dst")
        let fromServer = try engine.plan(source: csv(Self.source), destination: directory)
        let fromFile = try engine.plan(source: csv(Self.source), destination: ldif(Self.objects.map(Self.entry)))

        for set in [fromServer, fromFile] {
            #expect(set.read == 10 && set.unchanged == 2 && set.skipped == 0 && set.managed == 9)
            #expect(set.failures == [
                ObjectFailure(object: "#4", reason: "its key '4' matches more than one destination object"),
                ObjectFailure(object: "#5", reason: "its rdn attribute uid is empty, so it has no DN"),
                ObjectFailure(object: "#7", reason: "its key employeeNumber is empty"),
                ObjectFailure(object: "#9", reason: "its key '8' appears more than once in the source"),
                ObjectFailure(object: "#10", reason: "its rdn attribute uid is empty, so it has no DN"),
            ])
            #expect(set.changes.map { "\($0.action) \($0.dn)" } == [
                "update uid=bsmith,\(Self.people)",
                "rename uid=cold,\(Self.people)",
                "create uid=new,\(Self.people)",
                "delete uid=gone,\(Self.people)",
                "delete uid=inactive,\(Self.people)",
            ])
            #expect(set.changes.first?.attributes.map(\.attribute) == ["cn", "sn"])
        }
    }

    @Test func aServerThatFailsMidReadFailsThePlanAndTheSourceThreadEnds() throws {
        let server = try Slapd(suffixes: [Self.corp])
        let engine = try JobEngine(name: "j", spec: job(container: Self.people), destinationNeedsDN: true)
        let wrong = LDAPDirectory(LDAPSettings(url: server.url, bindDN: Slapd.syncDN(Self.corp), password: "wrong",
                                               baseDN: Self.corp), what: "connection dst")
        #expect(throws: DirectoryError.self) { try engine.plan(source: csv(Self.source), destination: wrong) }
        // A bad source surfaces as the source's own error, after the destination was read.
        let good = LDAPDirectory(LDAPSettings(url: server.url, bindDN: Slapd.syncDN(Self.corp), password: Slapd.syncPassword,
                                              baseDN: Self.corp), what: "connection dst")
        let error = #expect(throws: DirectoryError.self) { try engine.plan(source: csv("id,login\n1,\"open\n"), destination: good) }
        #expect(error == .malformed(connection: "connection src: in.csv", line: 2, problem: "a quoted field is never closed"))
    }
}

extension Data {
    var text: String { String(decoding: self, as: UTF8.self) }
}
