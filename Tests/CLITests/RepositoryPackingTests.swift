import Foundation
import TestSupport
import Testing

/// The home's clone is packed when the reconciler idles: libgit2 writes every object loose, and
/// each report adds some. Checked with the git CLI (count-objects, fsck, log).
@Suite struct RepositoryPackingTests {
    @Test func anIdleReconcilerPacksItsCloneAndLosesNothing() throws {
        let fixture = try examplesFixture()
        // 3,000 more files, received loose by the origin, so that the clone starts with as many
        // loose objects. (git estimates them from one of the 256 object folders, objects/17: with
        // few objects it would find none there and see no work.)
        _ = try runChecked("/usr/bin/git", ["--git-dir", fixture.originPath, "config", "receive.unpackLimit", "100000"])
        var files: [String: String] = [:]
        for index in 0..<3_000 { files["notes/\(index).txt"] = "note \(index)\n" }
        try fixture.write(files)
        try fixture.commit("many notes")
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder)
        let clone = home.file("repo.git")
        func git(_ arguments: [String]) throws -> String { try runChecked("/usr/bin/git", ["--git-dir", clone] + arguments) }
        func counts() throws -> [String: Int] {
            var out: [String: Int] = [:]
            for line in try git(["count-objects", "-v"]).split(separator: "\n") {
                let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, let value = Int(parts[1]) { out[parts[0]] = value }
            }
            return out
        }
        // A low threshold, in the clone's own git config, as a user would tune it.
        _ = try git(["config", "gc.auto", "100"])
        let reportsBefore = try git(["rev-parse", "refs/heads/reports"])
        let before = try counts()
        #expect(before["count"] ?? 0 > 3_000, "the clone starts with loose objects: \(before)")

        let daemon = try OperationsEndpointTests.Daemon(home: home, folder: folder, interval: "1h")
        // The start-up run is published, then the loop idles and packs.
        #expect(try daemon.eventually(30) {
            try daemon.value("syncwright_reports_waiting") == 0 && (try counts()["count"] ?? 9_999) < 100
        }, "\(daemon.output())")
        #expect(daemon.stop() == 0)
        let after = try counts()
        #expect(after["in-pack"] ?? 0 > 0, "\(after)")

        // Nothing is lost: the clone is whole, the reports branch grew, and the reconciler reads it.
        _ = try git(["fsck", "--no-dangling"])
        #expect(try git(["rev-parse", "refs/heads/reports"]) != reportsBefore)
        #expect(try git(["log", "--format=%s", "refs/heads/reports"]).contains("run nightly-directory-sync"))
        let once = try home.run(["reconcile", "--once"])
        #expect(once.status == 0, "\(once.stderr)")
        // The applied revision is pinned by a ref, so gc never prunes it even if the branch is
        // force-pushed away from it.
        let head = try fixture.git(["rev-parse", "main"])
        #expect(try git(["rev-parse", "refs/syncwright/applied"]) == head)
    }
}
