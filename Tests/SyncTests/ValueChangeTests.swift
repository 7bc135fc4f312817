import Directory
import Foundation
@testable import Sync
import Testing

/// How an attribute's values go from old to new: value by value for multi-valued attributes.
@Suite struct ValueChangeTests {
    func change(_ old: [Value], _ new: [Value], asDNs: Bool = false) -> [Modification] {
        JobEngine.modifications(of: "member", from: old, to: new, asDNs: asDNs)
    }

    @Test func singleValuesAreReplacedAndNoValuesDeleted() {
        #expect(change(["a"], ["b"]) == [Modification(.replace, "member", ["b"])])
        #expect(change([], ["a"]) == [Modification(.replace, "member", ["a"])])
        #expect(change(["a", "b"], []) == [Modification(.delete, "member", [])])
    }

    @Test func severalValuesChangeOneByOneDeletesFirst() {
        #expect(change(["a", "b", "c"], ["b", "c", "d"]) == [Modification(.delete, "member", ["a"]),
                                                           Modification(.add, "member", ["d"])])
        #expect(change(["a", "b"], ["a", "b", "c"]) == [Modification(.add, "member", ["c"])])
        #expect(change(["a", "b", "c"], ["c"]) == [Modification(.delete, "member", ["a", "b"])])
        // Another letter case is another value here; deleting first lets a server that ignores case take it.
        #expect(change(["A", "b"], ["a", "b"]) == [Modification(.delete, "member", ["A"]), Modification(.add, "member", ["a"])])
    }

    @Test func dnsSpelledOtherwiseAreTheSameValue() {
        #expect(change(["cn=x\\3Dy,dc=c", "cn=z,dc=c"], ["cn=x=y,dc=c", "cn=w,dc=c"], asDNs: true)
            == [Modification(.delete, "member", ["cn=z,dc=c"]), Modification(.add, "member", ["cn=w,dc=c"])])
    }
}

@Suite struct ModifyChunkTests {
    func values(_ prefix: String, _ count: Int) -> [Value] { (0..<count).map { Value("\(prefix)\($0)") } }

    @Test func noRequestCarriesMoreThanTheLimitAndOrderIsKept() {
        let mods = [Modification(.replace, "cn", ["x"]), Modification(.delete, "member", values("old", 3)),
                    Modification(.add, "member", values("new", 7))]
        let requests = JobEngine.chunked(mods, limit: 4)
        #expect(requests.allSatisfy { $0.reduce(0) { $0 + max(1, $1.values.count) } <= 4 })
        #expect(requests.flatMap { $0 }.flatMap(\.values) == mods.flatMap(\.values), "every value once, in order")
        #expect(requests.first?.first == Modification(.replace, "cn", ["x"]))
        #expect(requests.count == 3, "x + 3 deletes, then 4 adds, then 3: each request filled")
    }

    @Test func smallChangesStayInOneRequest() {
        let mods = [Modification(.delete, "member", ["a"]), Modification(.add, "member", ["b"]), Modification(.delete, "mail", [])]
        #expect(JobEngine.chunked(mods, limit: 1_000) == [mods])
        #expect(JobEngine.chunked([], limit: 1_000).isEmpty)
    }

    @Test func anEmptyAttributeGetsItsValuesAdded() {
        #expect(JobEngine.modifications(of: "member", from: [], to: ["a", "b"], asDNs: false) == [Modification(.add, "member", ["a", "b"])])
        #expect(JobEngine.modifications(of: "mail", from: [], to: ["a"], asDNs: false) == [Modification(.replace, "mail", ["a"])])
    }
}

/// Where references lead: DN values are names, however spelled; a value two objects hold names none.
@Suite struct ReferenceTargetsTests {
    @Test func dnValuesMatchAsNamesAndRepeatsAreAmbiguous() {
        var targets = ReferenceTargets(source: "job users (by source DN)", valuesAreDNs: true, foldsCase: false)
        targets.add("uid=a,ou=People,dc=corp", dn: "uid=a,ou=People,dc=partner")
        targets.add("uid=b,ou=People,dc=corp", dn: "uid=b,ou=People,dc=partner")
        targets.add("uid=b , ou=People,dc=corp", dn: "uid=b2,ou=People,dc=partner") // the same name, another object
        #expect(targets.lookup("uid=a,ou=People,dc=corp") == .found("uid=a,ou=People,dc=partner"))
        #expect(targets.lookup("UID=a, ou=People,dc=corp") == .found("uid=a,ou=People,dc=partner"))
        #expect(targets.lookup("uid=b,ou=People,dc=corp") == .ambiguous)
        #expect(targets.lookup("uid=c,ou=People,dc=corp") == .missing)
    }

    @Test func attributeValuesFallBackToCaseWhenThatNamesOneObject() {
        var targets = ReferenceTargets(source: "attribute mail", valuesAreDNs: false, foldsCase: true)
        targets.add("Ann@x", dn: "uid=ann")
        targets.add("bob@x", dn: "uid=bob")
        targets.add("BOB@x", dn: "uid=bob2")
        #expect(targets.lookup("ann@x") == .found("uid=ann"))
        #expect(targets.lookup("bob@x") == .found("uid=bob"))
        #expect(targets.lookup("Bob@x") == .ambiguous)
    }
}
