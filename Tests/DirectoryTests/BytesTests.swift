import Directory
import Foundation
import Testing

@Suite struct BytesTests {
    func parts(_ text: String, _ separator: String) -> [String] {
        var out: [String] = []
        Array(text.utf8).withUnsafeBytes { raw in
            Bytes.forEachPart(of: raw, separatedBy: Array(separator.utf8)) { out.append(String(decoding: raw[$0], as: UTF8.self)) }
        }
        return out
    }

    @Test func partsAreTrimmedAndEmptyOnesLeftOut() {
        #expect(parts("a; b ;;c ", ";") == ["a", "b", "c"])
        #expect(parts(" 555 || 666||", "||") == ["555", "666"])
        #expect(parts("", ";") == [])
        #expect(parts("  ", ";") == [])
        #expect(parts(" whole ", "") == ["whole"])
        #expect(parts("a;", ";;") == ["a;"], "a separator cut short at the end is no separator")
    }

    @Test func matchesNeverReadsPastTheEnd() {
        Array("uid=a,dc=x".utf8).withUnsafeBytes { raw in
            #expect(Bytes.matches(raw, at: 0, Array("uid".utf8)))
            #expect(Bytes.matches(raw, at: 6, Array("dc=x".utf8)))
            #expect(!Bytes.matches(raw, at: 7, Array("dc=x".utf8)))
            #expect(!Bytes.matches(raw, at: -1, Array("u".utf8)))
            #expect(Bytes.matches(raw, at: 10, [UInt8]()), "the empty needle is at the end too")
        }
        [UInt8]().withUnsafeBytes { empty in
            #expect(Bytes.matches(empty, at: 0, [UInt8]()) && !Bytes.matches(empty, at: 0, [0x41]))
            #expect(Bytes.equal(empty, empty))
        }
    }

    /// The byte check agrees with building the DN and comparing strings, whenever it says yes.
    @Test(arguments: [("ada", "ou=People,dc=x", true), ("a,b", "ou=People,dc=x", false), (" ada", "ou=People,dc=x", false),
                      ("ada", "", true), ("#ada", "ou=People,dc=x", false)])
    func aDNSpelledAsMadeIsRecognisedOnBytes(value: String, container: String, fast: Bool) {
        let made = DistinguishedName.make(rdnAttribute: "uid", value: value, container: container)
        #expect(DistinguishedName.isSpelled(made, rdnAttribute: Array("uid".utf8), value: Array(value.utf8)[...],
                                            container: Array(container.utf8)) == fast)
        #expect(!DistinguishedName.isSpelled(made + "x", rdnAttribute: Array("uid".utf8), value: Array(value.utf8)[...],
                                             container: Array(container.utf8)))
        #expect(!DistinguishedName.isSpelled("cn=" + value + (container.isEmpty ? "" : "," + container), rdnAttribute: Array("uid".utf8),
                                             value: Array(value.utf8)[...], container: Array(container.utf8)))
    }
}
