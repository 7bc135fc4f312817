import Foundation
@testable import Directory
import Testing

/// File directories apply value-level modifications as sets, as a server does.
@Suite struct ModificationTests {
    @Test func addsAndDeletesWorkOnTheSetOfValues() {
        var entry = Entry(dn: "cn=g", attributes: [("member", ["a", "b", "c"])])
        entry.apply(Modification(.delete, "member", ["a", "zz"]))
        entry.apply(Modification(.add, "member", ["b", "d", "e", "d"]))
        #expect(entry["member"] == ["b", "c", "d", "e"], "kept in order, each value once")
        entry.apply(Modification(.delete, "member", []))
        #expect(entry["member"].isEmpty)
        entry.apply(Modification(.replace, "member", ["x"]))
        #expect(entry["member"] == ["x"])
    }
}

/// A directory holds each value of an attribute once: repeated values are left out, the first of
/// each kept in order, however many values there are (a few are compared, many go through a set).
@Suite struct RepeatedValueTests {
    @Test(arguments: [5, 40, 20_000])
    func repeatedValuesAreLeftOutInOrder(_ count: Int) {
        let values = (0..<count).map { Value("v\($0 % (count / 2 + 1))") } // the second half repeats the first
        let entry = Entry(dn: "cn=g", attributes: [("cn", ["g"]), ("member", values), ("description", ["a", "b", "a"])])
        let unique = entry.withoutRepeatedValues()
        var seen = Set<Value>()
        #expect(unique["member"] == values.filter { seen.insert($0).inserted })
        #expect(unique["description"] == ["a", "b"])
        #expect(unique["cn"] == ["g"])
        let distinct = Entry(dn: "cn=g", attributes: [("member", (0..<count).map { Value("v\($0)") })])
        #expect(distinct.withoutRepeatedValues() == distinct)
    }
}
