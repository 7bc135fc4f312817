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
        #expect(change([], ["a", "b"]) == [Modification(.replace, "member", ["a", "b"])])
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
