import Foundation
@testable import Directory
import Testing

/// How changes are written to Active Directory (`ActiveDirectory.steps`), and how binary keys
/// are compared and shown. The real server's side is in CLITests' TwoDomainTests.
@Suite struct ActiveDirectoryWriteTests {
    let dn = "CN=Erin Caterpillar,OU=Hires,DC=partner,DC=test"

    @Test func passwordsAreQuotedUTF16LittleEndian() throws {
        // Foundation's encoder is the oracle.
        let expected = try #require("\"Pässw0rd-€\"".data(using: .utf16LittleEndian))
        #expect(ActiveDirectory.encodedPassword(Value("Pässw0rd-€")).bytes == expected)
        // Already encoded: kept.
        #expect(ActiveDirectory.encodedPassword(Value(expected)).bytes == expected)
    }

    @Test func anEnabledAccountIsCreatedDisabledThenGivenItsPasswordThenEnabled() throws {
        let entry = Entry(dn: dn, attributes: [("objectClass", ["user"]), ("sAMAccountName", ["erin"]),
                                               ("unicodePwd", ["Str0ng-Passw0rd!"]), ("userAccountControl", ["512"])])
        let steps = try ActiveDirectory.steps(for: [.add(entry)])
        #expect(steps.count == 2)
        guard steps.count == 2, case .add(let created) = steps[0].change else { return }
        #expect(created["userAccountControl"] == ["514"] && created["unicodePwd"].isEmpty && created["sAMAccountName"] == ["erin"])
        #expect(steps[0].afterCreate == nil)
        // Then one request, applied in order and all or nothing: the password, then enabled.
        let password = try #require("\"Str0ng-Passw0rd!\"".data(using: .utf16LittleEndian))
        #expect(steps[1].change == .modify(dn: dn, [Modification(.replace, "unicodePwd", [Value(password)]),
                                                    Modification(.replace, "userAccountControl", ["512"])]))
        #expect(steps[1].afterCreate == "created disabled, but its password was not set, nor was it enabled, so it stays disabled")
    }

    @Test func aDisabledAccountOrOneWithNothingToOrderIsOneOrTwoSteps() throws {
        let disabled = Entry(dn: dn, attributes: [("unicodePwd", ["Str0ng-Passw0rd!"]), ("userAccountControl", ["66050"])])
        let steps = try ActiveDirectory.steps(for: [.add(disabled)])
        #expect(steps.count == 2)
        if case .add(let created)? = steps.first?.change { #expect(created["userAccountControl"] == ["66050"]) }
        #expect(steps.last?.change == .modify(dn: dn, [Modification(.replace, "unicodePwd", [ActiveDirectory.encodedPassword("Str0ng-Passw0rd!")])]),
                "no enabling: the account is to stay disabled")
        #expect(steps.last?.afterCreate == "created disabled, but its password was not set, so it stays disabled")
        let enabledOnly = Entry(dn: dn, attributes: [("userAccountControl", ["512"])])
        #expect(try ActiveDirectory.steps(for: [.add(enabledOnly)]).last?.afterCreate
                == "created disabled, but could not be enabled, so it stays disabled")
        let plain = Entry(dn: dn, attributes: [("sAMAccountName", ["erin"]), ("title", ["Engineer"])])
        #expect(try ActiveDirectory.steps(for: [.add(plain)]).map(\.change) == [.add(plain)])
    }

    @Test func theNamingAttributeIsRenamedNotModified() throws {
        let renamed = "CN=Erin Smith,OU=Hires,DC=partner,DC=test"
        // After a rename, setting cn to the name it now has sends nothing more.
        let afterRename = try ActiveDirectory.steps(for: [
            .rename(dn: dn, newRDN: "CN=Erin Smith", newSuperior: nil),
            .modify(dn: renamed, [Modification(.replace, "cn", ["Erin Smith"]), Modification(.replace, "title", ["Lead"])]),
        ]).map(\.change)
        #expect(afterRename == [.rename(dn: dn, newRDN: "CN=Erin Smith", newSuperior: nil),
                                .modify(dn: renamed, [Modification(.replace, "title", ["Lead"])])])
        // A cn change alone becomes a rename (escaped), and what follows goes to the new DN.
        let alone = try ActiveDirectory.steps(for: [
            .modify(dn: dn, [Modification(.replace, "CN", ["Smith, Erin"]), Modification(.replace, "title", ["Lead"])]),
        ]).map(\.change)
        #expect(alone == [.rename(dn: dn, newRDN: "CN=Smith\\, Erin", newSuperior: nil),
                          .modify(dn: "CN=Smith\\, Erin,OU=Hires,DC=partner,DC=test", [Modification(.replace, "title", ["Lead"])])])
    }

    @Test func aSAMAccountNameLongerThan20CharactersIsRefusedBeforeItIsSent() throws {
        let fits = Entry(dn: dn, attributes: [("sAMAccountName", [Value(String(repeating: "é", count: 20))])])
        #expect(try ActiveDirectory.steps(for: [.add(fits)]).count == 1, "20 characters (40 bytes) fit")
        let long = Entry(dn: dn, attributes: [("sAMAccountName", [Value(String(repeating: "x", count: 21))])])
        #expect(throws: DirectoryError.self) { try ActiveDirectory.steps(for: [.add(long)]) }
        #expect(throws: DirectoryError.self) {
            try ActiveDirectory.steps(for: [.modify(dn: dn, [Modification(.replace, "samaccountname", [Value(String(repeating: "x", count: 21))])])])
        }
    }

    @Test func binaryKeysCompareAsBytesAndShowAsGUIDs() {
        // Two GUIDs that differ only in bytes that are not UTF-8: a lossy decoding (U+FFFD for
        // each) made them one key.
        let a: [UInt8] = [0xFF, 0xFE, 0x10, 0x20, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B]
        var b = a
        b[0] = 0xFE
        #expect(String(decoding: a, as: UTF8.self) == String(decoding: b, as: UTF8.self))
        #expect(Value.key(a) != Value.key(b))
        #expect(Value.key(a) == Value.key(Array(a)[...]))
        // Text keys are as they were; a text that starts with U+0001 cannot pass for a binary key.
        #expect(Value.key(Array("alice".utf8)) == "alice")
        #expect(Value.key([0x01] + Array(Data([0xFF]).base64EncodedString().utf8)) != Value.key([0xFF]))
        // python3 -c "import uuid; print(list(uuid.UUID('6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5').bytes_le))"
        let guid: [UInt8] = [62, 45, 28, 111, 91, 74, 109, 76, 142, 127, 144, 161, 178, 195, 212, 229]
        #expect(Value.show(guid[...]) == "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5")
        #expect(Value.showKey(Value.key(guid)) == "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5")
        #expect(Value.show(guid[...], guid: false) == "base64:" + Data(guid).base64EncodedString())
        #expect(Value.showKey("alice") == "alice")
    }
}
