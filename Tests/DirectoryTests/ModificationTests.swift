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
