import Directory
import Foundation
import Manifests
import Sync
import Testing

func job(create: Bool = true, delete: Bool = false, filter: String? = nil, rdn: Bool = true,
         threshold: DeleteThreshold = .standard, allowEmpty: Bool = false, extra: [FieldMapping] = [],
         container: String = "ou=People,dc=corp") -> JobSpec {
    let m = { (s: String?, d: String, v: String?, key: Bool, newOnly: Bool, g: String?) in
        FieldMapping(source: s, destination: d, value: v, generate: g, key: key, newOnly: newOnly, delimiter: nil)
    }
    return JobSpec(
        source: JobSource(connection: "src", filter: filter, base: nil),
        destination: JobDestination(connection: "dst", objectClass: ["inetOrgPerson"],
                                    container: rdn ? container : nil, rdn: rdn ? "uid" : nil),
        mappings: [
            m("id", "employeeNumber", nil, true, true, nil),
            m("login", "uid", nil, false, false, nil),
            m(nil, "cn", "{{given}} {{sn}}", false, false, nil),
            m("sn", "sn", nil, false, false, nil),
            m(nil, "userPassword", nil, false, true, "password"),
        ] + extra,
        create: create, delete: delete, workflow: nil, allowEmptySource: allowEmpty, deleteThreshold: threshold)
}

func csv(_ text: String) -> CSVDirectory {
    CSVDirectory(.contents(Data(text.utf8), label: "in.csv"), what: "connection src", missingIsEmpty: false)
}

func ldif(_ entries: [Entry]) -> LDIFDirectory {
    LDIFDirectory(.contents(LDIFCodec.encode(entries), label: "out.ldif"), what: "connection dst", missingIsEmpty: false)
}

let existing = Entry(dn: "uid=ajohnson,ou=People,dc=corp", attributes: [
    ("objectClass", ["inetOrgPerson"]), ("employeeNumber", ["1"]), ("uid", ["ajohnson"]),
    ("cn", ["Alice Johnson"]), ("sn", ["Johnson"]), ("userPassword", ["old-secret"]),
])

@Suite struct ChangeSetTests {
    @Test func createsWithDNObjectClassAndAGeneratedPassword() throws {
        let engine = try JobEngine(name: "j", spec: job(), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,given,sn\n2,bsmith,Bob,\"Smith, Jr\"\n"), destination: ldif([]))
        #expect(set.read == 1 && set.changes.count == 1)
        let change = try #require(set.changes.first)
        #expect(change.action == .create)
        #expect(change.dn == "uid=bsmith,ou=People,dc=corp")
        guard case .add(let entry) = change.operations.first else { Issue.record("not an add"); return }
        #expect(entry["objectClass"] == ["inetOrgPerson"])
        #expect(entry["cn"] == ["Bob Smith, Jr"])
        #expect(entry["userPassword"].first?.text?.count == 20)
        #expect(engine.logLines(for: change) == ["+ uid=bsmith,ou=People,dc=corp"])
    }

    @Test func unchangedWhenEverythingMatchesAndNewOnlyIsNeverRewritten() throws {
        let engine = try JobEngine(name: "j", spec: job(), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,given,sn\n1,ajohnson,Alice,Johnson\n"), destination: ldif([existing]))
        #expect(set.changes.isEmpty)
        #expect(set.unchanged == 1)
    }

    @Test func updatesOnlyTheAttributeThatDiffersAndMasksSecrets() throws {
        let engine = try JobEngine(name: "j", spec: job(), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,given,sn\n1,ajohnson,Alicia,Johnson\n"), destination: ldif([existing]))
        let change = try #require(set.changes.first)
        #expect(change.action == .update)
        #expect(change.operations == [.modify(dn: existing.dn, [Modification(.replace, "cn", ["Alicia Johnson"])])])
        #expect(engine.logLines(for: change) == ["~ uid=ajohnson,ou=People,dc=corp cn: Alice Johnson → Alicia Johnson"])
        #expect(engine.show("userPassword", ["x"]) == "••••••")
    }

    @Test func aLoginChangeWithTheSameKeyIsARename() throws {
        let engine = try JobEngine(name: "j", spec: job(), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,given,sn\n1,ajones,Alice,Johnson\n"), destination: ldif([existing]))
        let change = try #require(set.changes.first)
        #expect(change.action == .rename)
        #expect(change.newDN == "uid=ajones,ou=People,dc=corp")
        #expect(change.operations == [
            .rename(dn: existing.dn, newRDN: "uid=ajones", newSuperior: nil),
            .modify(dn: "uid=ajones,ou=People,dc=corp", [Modification(.replace, "uid", ["ajones"])]),
        ])
        #expect(engine.logLines(for: change) == [
            "> uid=ajohnson,ou=People,dc=corp → uid=ajones,ou=People,dc=corp",
            "~ uid=ajones,ou=People,dc=corp uid: ajohnson → ajones",
        ])
    }

    @Test func deleteSemantics() throws {
        let other = Entry(dn: "uid=x,ou=People,dc=corp", attributes: [("employeeNumber", ["9"]), ("uid", ["x"])])
        let unmanaged = Entry(dn: "uid=svc,ou=People,dc=corp", attributes: [("uid", ["svc"])]) // no key: never touched
        let source = "id,login,given,sn\n1,ajohnson,Alice,Johnson\n"
        let keep = try JobEngine(name: "j", spec: job(delete: false), destinationNeedsDN: true)
        #expect(try keep.plan(source: csv(source), destination: ldif([existing, other, unmanaged])).changes.isEmpty)
        let prune = try JobEngine(name: "j", spec: job(delete: true), destinationNeedsDN: true)
        let set = try prune.plan(source: csv(source), destination: ldif([existing, other, unmanaged]))
        #expect(set.changes.map(\.operations) == [[.delete(dn: "uid=x,ou=People,dc=corp")]])
        #expect(set.managed == 2)
        #expect(set.guardViolation == nil)
    }

    @Test func createFalseSkips() throws {
        let engine = try JobEngine(name: "j", spec: job(create: false), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,given,sn\n5,new,N,N\n"), destination: ldif([]))
        #expect(set.changes.isEmpty && set.skipped == 1)
    }

    @Test func theFilterDecidesWhatIsRead() throws {
        let engine = try JobEngine(name: "j", spec: job(filter: "status == \"active\""), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,given,sn,status\n1,a,A,A,active\n2,b,B,B,inactive\n"),
                                  destination: ldif([]))
        #expect(set.read == 1 && set.changes.map(\.dn) == ["uid=a,ou=People,dc=corp"])
    }

    @Test func badRowsFailAloneAndTheJobGoesOn() throws {
        let engine = try JobEngine(name: "j", spec: job(), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,given,sn\n,nokey,A,A\n3,,A,A\n4,dup,A,A\n4,dup2,A,A\n6,ok,A,A\n"),
                                  destination: ldif([]))
        #expect(set.failures == [
            ObjectFailure(object: "#1", reason: "its key employeeNumber is empty"),
            ObjectFailure(object: "#2", reason: "its rdn attribute uid is empty, so it has no DN"),
            ObjectFailure(object: "#4", reason: "its key '4' appears more than once in the source"),
        ])
        #expect(set.changes.map(\.dn) == ["uid=dup,ou=People,dc=corp", "uid=ok,ou=People,dc=corp"])
    }

    @Test func anEmptySourceDeletesNothingAndFails() throws {
        let engine = try JobEngine(name: "j", spec: job(delete: true), destinationNeedsDN: true)
        let set = try engine.plan(source: csv("id,login,given,sn\n"), destination: ldif([existing]))
        #expect(set.guardViolation == "the source returned no entries, so nothing was changed (set allowEmptySource: true if that is expected)")
        let allowed = try JobEngine(name: "j", spec: job(delete: true, allowEmpty: true), destinationNeedsDN: true)
        #expect(try allowed.plan(source: csv("id,login,given,sn\n"), destination: ldif([existing])).guardViolation == nil)
    }

    @Test func theDeleteThresholdStopsAMassDelete() throws {
        let many = (1...5).map { Entry(dn: "uid=u\($0),ou=People,dc=corp", attributes: [("employeeNumber", [Value("\($0 + 10)")])]) }
        let source = "id,login,given,sn\n1,ajohnson,Alice,Johnson\n"
        let byCount = try JobEngine(name: "j", spec: job(delete: true, threshold: DeleteThreshold(count: 3)), destinationNeedsDN: true)
        #expect(try byCount.plan(source: csv(source), destination: ldif([existing] + many)).guardViolation
                == "would delete 5, threshold 3; nothing was changed (raise deleteThreshold if that is expected)")
        let byPercent = try JobEngine(name: "j", spec: job(delete: true, threshold: DeleteThreshold(percent: 50)), destinationNeedsDN: true)
        #expect(try byPercent.plan(source: csv(source), destination: ldif([existing] + many)).guardViolation
                == "would delete 5 of 6 (83%), threshold 50%; nothing was changed (raise deleteThreshold if that is expected)")
    }

    @Test func aGuardedJobWritesNothing() throws {
        let folder = try TestFolder()
        let path = folder.path + "/dst.ldif"
        try LDIFCodec.encode([existing]).write(to: URL(fileURLWithPath: path))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let engine = try JobEngine(name: "j", spec: job(delete: true), destinationNeedsDN: true)
        let destination = LDIFDirectory(.path(path), what: "connection dst", missingIsEmpty: true)
        let set = try engine.plan(source: csv("id,login,given,sn\n"), destination: destination)
        let outcome = engine.apply(set, to: destination)
        #expect(outcome.error != nil && outcome.statistics.deleted == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    /// The source is read ahead on a second thread, a few pages at a time: many pages must come
    /// through whole and in order, and a fault far into the file must fail the plan with its line.
    @Test func aLargeSourceReadAheadKeepsOrderAndReportsAFaultWithItsLine() throws {
        let rows = 30_000 // more than 7 pages of 4,096
        var text = "id,login,given,sn\n"
        for i in 1...rows { text += "\(i),u\(i),G,S\n" }
        let engine = try JobEngine(name: "j", spec: job(), destinationNeedsDN: true)
        let set = try engine.plan(source: csv(text), destination: ldif([existing]))
        #expect(set.read == rows && set.failures.isEmpty)
        #expect(set.changes.count == rows) // 29,999 creates, and uid ajohnson → u1 renames employee 1
        #expect(set.changes.first?.action == .rename)
        #expect(set.changes.dropFirst().map(\.dn) == (2...rows).map { "uid=u\($0),ou=People,dc=corp" })

        let broken = text + "\"open,u,G,S\n" + (1...5_000).map { "\(rows + $0),v\($0),G,S\n" }.joined()
        #expect(throws: DirectoryError.malformed(connection: "connection src: in.csv", line: rows + 2, problem: "a quoted field is never closed")) {
            try engine.plan(source: csv(broken), destination: ldif([existing]))
        }
    }

    @Test func csvDestinationsNeedNoDN() throws {
        let engine = try JobEngine(name: "j", spec: job(rdn: false), destinationNeedsDN: false)
        let set = try engine.plan(source: csv("id,login,given,sn\n1,a,A,A\n"),
                                  destination: CSVDirectory(.contents(Data(), label: "o.csv"), what: "d", missingIsEmpty: true))
        #expect(set.changes.map(\.action) == [.create])
        let needsDN = try JobEngine(name: "j", spec: job(rdn: false), destinationNeedsDN: true)
        #expect(try needsDN.plan(source: csv("id,login,given,sn\n1,a,A,A\n"), destination: ldif([])).failures.map(\.reason)
                == ["the job gives no container and rdn, so a new destination entry would have no DN"])
    }
}

/// A temp folder (Sync tests do not need the git fixtures).
final class TestFolder {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "sync-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A stored LDIF record that reads exactly as the job would write it is unchanged without being
/// parsed; any other spelling of the same values is parsed and compared value by value. Both
/// ways must come to the same plan.
@Suite struct StoredRecordPlanTests {
    /// The job without a generated password, so that its records can read exactly as written.
    func spec() -> JobSpec {
        var spec = job(delete: true)
        spec.mappings.removeLast()
        return spec
    }

    let source = "id,login,given,sn\n1,ajohnson,Alice,Johnson\n2,bsmith,Bob,Müller\n3,cchi,Chi,Nguyen\n"

    /// The same three objects, as the job writes them, and by hand: names in other letter case,
    /// another attribute order, folded lines, comments, CRLF, base64 where it is not needed, and
    /// a fourth object the source no longer has.
    let canonical = """
        version: 1

        dn: uid=ajohnson,ou=People,dc=corp
        objectClass: inetOrgPerson
        employeeNumber: 1
        uid: ajohnson
        cn: Alice Johnson
        sn: Johnson

        dn: uid=bsmith,ou=People,dc=corp
        objectClass: inetOrgPerson
        employeeNumber: 2
        uid: bsmith
        cn:: Qm9iIE3DvGxsZXI=
        sn:: TcO8bGxlcg==

        dn: uid=cchi,ou=People,dc=corp
        objectClass: inetOrgPerson
        employeeNumber: 3
        uid: cchi
        cn: Chi Nguyen
        sn: Nguyen

        dn: uid=gone,ou=People,dc=corp
        objectClass: inetOrgPerson
        employeeNumber: 4
        uid: gone

        """
    let byHand = "version: 1\n\n"
        + "dn: uid=ajohnson,ou=People,dc=corp\nOBJECTCLASS: inetOrgPerson\nemployeenumber: 1\nsn: Johnson\nuid: ajohnson\ncn: Alice Johnson\n\n"
        + "dn: uid=bsmith,ou=People,dc=corp\r\nobjectClass: inetOrgPerson\r\nemployeeNumber:: Mg==\r\nuid: bsm\r\n ith\r\n# a note\r\ncn:: Qm9iIE3DvGxsZXI=\r\nsn:: TcO8bGxlcg==\r\n\r\n"
        + "dn: uid=cchi,ou=People,dc=corp\nobjectClass: inetOrgPerson\nemployeeNum\n ber: 3\nuid: cchi\ncn: Chi Nguyen\nsn: Nguyen\n\n"
        + "dn: uid=gone,ou=People,dc=corp\nobjectClass: inetOrgPerson\nemployeeNumber: 4\nuid: gone\n"

    func plan(_ text: String, source: String) throws -> ChangeSet {
        let engine = try JobEngine(name: "j", spec: spec(), destinationNeedsDN: true)
        let destination = LDIFDirectory(.contents(Data(text.utf8), label: "out.ldif"), what: "connection dst",
                                        missingIsEmpty: false)
        return try engine.plan(source: csv(source), destination: destination)
    }

    @Test func aRecordAsWrittenAndTheSameValuesByHandPlanAlike() throws {
        // `canonical` is byte for byte what the writer makes of it, so its records take the fast way.
        #expect(LDIFCodec.encode(try LDIFCodec.parse(Data(canonical.utf8), what: "x")) == Data(canonical.utf8))
        for text in [canonical, byHand] {
            let set = try plan(text, source: source)
            #expect(set.unchanged == 3)
            #expect(set.changes.map(\.action) == [.delete])
            #expect(set.changes.map(\.dn) == ["uid=gone,ou=People,dc=corp"])
        }
        // One value changed: the same update either way, naming the old and the new value.
        let changed = source.replacingOccurrences(of: "3,cchi,Chi,Nguyen", with: "3,cchi,Chi,Ng")
        for text in [canonical, byHand] {
            let set = try plan(text, source: changed)
            let update = try #require(set.changes.first { $0.action == .update })
            #expect(update.dn == "uid=cchi,ou=People,dc=corp")
            #expect(update.attributes.map(\.attribute) == ["cn", "sn"])
            #expect(update.attributes.map { $0.old.map(\.description) } == [["Chi Nguyen"], ["Nguyen"]])
            #expect(update.attributes.map { $0.new.map(\.description) } == [["Chi Ng"], ["Ng"]])
            #expect(set.unchanged == 2)
        }
    }
}

extension StoredRecordPlanTests {
    /// The source is read while the destination is; a destination that fails must stop that
    /// reading too, and the plan must fail with the destination's error, not hang.
    @Test func aDestinationThatFailsStopsTheSourceAlreadyBeingRead() throws {
        var rows = "id,login,given,sn\n"
        for i in 0..<50_000 { rows += "\(i),user\(i),Given,Sn\n" }
        let twice = canonical + "\ndn: UID=ajohnson, ou=People, dc=corp\nuid: ajohnson\n"
        #expect(throws: DirectoryError.duplicate(file: "connection dst: out.ldif", dn: "UID=ajohnson, ou=People, dc=corp")) {
            try plan(twice, source: rows)
        }
        let broken = canonical.replacingOccurrences(of: "sn:: TcO8bGxlcg==", with: "sn:: !!!")
        #expect(throws: DirectoryError.malformed(connection: "connection dst: out.ldif", line: 15, problem: "the base64 value of sn is not valid")) {
            try plan(broken, source: rows)
        }
    }
}

extension StoredRecordPlanTests {
    /// A row's match is looked for right after the previous row's first; rows in another order
    /// than the destination's (or with gaps) must find the same matches by hash.
    @Test func rowsInAnyOrderFindTheSameMatches() throws {
        var destination = "version: 1\n"
        for i in 0..<3_000 where i % 7 != 3 {
            destination += "\ndn: uid=u\(i),ou=People,dc=corp\nobjectClass: inetOrgPerson\nemployeeNumber: \(i)\nuid: u\(i)\ncn: G S\(i)\nsn: S\(i)\n"
        }
        func rows(_ order: [Int]) -> String {
            "id,login,given,sn\n" + order.map { "\($0),u\($0),G,\($0 % 5 == 0 ? "T" : "S")\($0)\n" }.joined()
        }
        func summary(_ set: ChangeSet) -> [String] {
            set.changes.map { "\($0.action) \($0.dn) \($0.attributes.map(\.attribute))" }.sorted()
        }
        let inOrder = try plan(destination, source: rows(Array(0..<3_000)))
        let reversed = try plan(destination, source: rows(Array((0..<3_000).reversed())))
        let shuffled = try plan(destination, source: rows(Array(0..<3_000).shuffled()))
        // 2,571 objects (every seventh is missing); rows whose id is a multiple of 5 change sn.
        #expect(inOrder.unchanged == 2_057)
        #expect(inOrder.changes.filter { $0.action == .update }.count == 514)
        for other in [reversed, shuffled] {
            #expect(summary(other) == summary(inOrder))
            #expect(other.unchanged == inOrder.unchanged)
        }
        #expect(inOrder.changes.filter { $0.action == .create }.count == 429)
    }
}
