import Directory
import Foundation
import Testing
import TestSupport

/// A destination file keeps its mode and owner, a read-only one is refused, one that holds
/// passwords is made private, and temp files of killed writers are cleaned up.
@Suite struct FileSafetyTests {
    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    func write(_ path: String, secrets: Bool = false, uid: String = "a") throws {
        let ldif = LDIFDirectory(.path(path), what: "connection corp", missingIsEmpty: true)
        if secrets { ldif.willHoldSecrets() }
        try ldif.apply(.add(Entry(dn: "uid=\(uid),dc=corp", attributes: [("uid", [Value(uid)]), ("userPassword", ["s3cret"])])))
        try ldif.commit()
    }

    @Test func aReplacedFileKeepsItsMode() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("corp.ldif")
        try "version: 1\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        try write(path)
        #expect(try mode(path) == 0o600)
        chmod(path, 0o640)
        try write(path, uid: "b")
        #expect(try mode(path) == 0o640)
    }

    @Test func aNewFileHoldingSecretsIsPrivate() throws {
        let folder = try TemporaryFolder()
        try write(folder.sub("secret.ldif"), secrets: true)
        #expect(try mode(folder.sub("secret.ldif")) == 0o600)
        try write(folder.sub("plain.ldif"))
        #expect(try mode(folder.sub("plain.ldif")) == 0o644)
    }

    @Test func aReadOnlyFileIsRefusedAndLeftAsItWas() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("frozen.ldif")
        try "version: 1\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o444)
        #expect { try write(path) } throws: {
            "\($0)".contains("\(path) is not writable (mode 444), so it was left as it was")
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "version: 1\n")
        #expect(try mode(path) == 0o444)
    }

    @Test func tempFilesOfAKilledWriterAreRemovedAndLiveOnesKept() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("out.ldif")
        // A real process, killed with SIGKILL: its pid now names no process.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["60"]
        try child.run()
        let dead = child.processIdentifier
        kill(dead, SIGKILL)
        child.waitUntilExit()
        let stale = folder.sub(".out.ldif.tmp-\(dead)-12345")
        let live = folder.sub(".out.ldif.tmp-1-67890") // pid 1 always runs
        let other = folder.sub(".other.ldif.tmp-\(dead)-1")
        for file in [stale, live, other] { try "partial".write(toFile: file, atomically: false, encoding: .utf8) }
        try write(path)
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: live))
        #expect(FileManager.default.fileExists(atPath: other))
    }
}
