import Foundation
import TestSupport
import Testing

/// Two jobs writing one file destination at once: each holds the destination's lock from its
/// read to its commit, so neither loses the other's records. Real processes, from two homes.
@Suite struct DestinationLockTests {
    /// A config repository whose one job writes `rows` users with ids `prefix1…` into `out`.
    static func repository(prefix: String, rows: Int, out: String) throws -> GitFixture {
        var csv = "id,login\n"
        for i in 1...rows { csv += "\(prefix)\(i),\(prefix)user\(i)\n" }
        return try Fixtures.csvToLDIF(csv: csv, out: out, job: "load-\(prefix)")
    }

    func start(_ arguments: [String]) throws -> (Process, Pipe) {
        let errors = Pipe()
        return (try launchSyncwright(arguments, errors: errors), errors)
    }

    func records(_ path: String) throws -> Int {
        try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\ndn: ").count - 1
    }

    @Test func twoHomesWritingOneFileAtOnceKeepBothSides() throws {
        let folder = try TemporaryFolder("lock")
        let out = folder.sub("shared/out.ldif")
        let rows = 20_000
        for (prefix, home) in [("a", "ha"), ("b", "hb")] {
            let fixture = try Self.repository(prefix: prefix, rows: rows, out: out)
            _ = try TestHome(fixture, in: folder, name: home)
        }
        let a = try start(["run", "c", "--home", folder.sub("ha")])
        let b = try start(["run", "c", "--home", folder.sub("hb")])
        for (process, errors) in [a, b] {
            process.waitUntilExit()
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationStatus == 0, "\(text)")
        }
        #expect(try records(out) == 2 * rows)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.contains("dn: uid=auser\(rows),ou=People,dc=corp") && text.contains("dn: uid=buser\(rows),ou=People,dc=corp"))
    }

    @Test func aJobThatCannotGetTheLockFailsClearlyAndWritesNothing() throws {
        let folder = try TemporaryFolder("lock-wait")
        let out = folder.sub("out.ldif")
        let fixture = try Self.repository(prefix: "a", rows: 3, out: out)
        let home = folder.sub("h")
        #expect(try syncwright(["init", fixture.originURL, "--home", home]).status == 0)
        let config = (home as NSString).appendingPathComponent("config.yaml")
        try (try String(contentsOfFile: config, encoding: .utf8) + "destinationLockTimeout: 1s\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        #expect(try syncwright(["apply", "--home", home]).status == 0)
        // Another holder of the lock: this test process, on the lock file beside out.ldif.
        let fd = open(folder.sub(".out.ldif.lock"), O_RDWR | O_CREAT, 0o600)
        try #require(fd >= 0 && flock(fd, LOCK_EX) == 0)
        let blocked = try syncwright(["run", "c", "--home", home])
        flock(fd, LOCK_UN)
        close(fd)
        #expect(blocked.status == 1)
        #expect(blocked.stdout.contains("\(out) is being written by another job; waited 1 s for it, so nothing was written"),
                "\(blocked.stdout)\(blocked.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let free = try syncwright(["run", "c", "--home", home])
        #expect(free.status == 0, "\(free.stderr)")
        #expect(try records(out) == 3)
    }
}
