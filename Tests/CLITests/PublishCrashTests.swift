import Foundation
import TestSupport
import Testing

/// Publishing is exactly-once: a publisher killed after its push reached the remote, before its
/// outbox knew, never publishes those reports again.
@Suite struct PublishCrashTests {
    func git(_ origin: String, _ arguments: [String]) throws -> String {
        let result = try runProcess("/usr/bin/git", ["--git-dir", origin] + arguments)
        guard result.status == 0 else { throw ProcessFailure(description: "git \(arguments): \(result.stderr)") }
        return result.stdout
    }

    @Test func aPublisherKilledAfterItsPushPublishesNothingTwice() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder("publish-crash")
        let home = try TestHome(fixture, in: folder, name: "home").arguments
        // Killed with SIGKILL right after the push reached the origin (a fault-injection point).
        let killed = try syncwright(["run", "nightly-directory-sync"] + home, env: ["SYNCWRIGHT_FAILPOINT": "after-push"])
        #expect(killed.status != 0)
        let history = try syncwright(["history", "--format", "json"] + home)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [String: Any])
        let first = try #require((json["runs"] as? [[String: Any]])?.first?["runId"] as? String)
        let afterCrash = try git(fixture.originPath, ["log", "--format=%s", "reports"]).split(separator: "\n")
        #expect(afterCrash.filter { $0.contains(first) }.count == 1)

        // The next command publishes its own run, and what was pushed before the crash not again.
        let next = try syncwright(["run", "nightly-directory-sync"] + home)
        #expect(next.status == 0, "\(next.stderr)")
        let subjects = try git(fixture.originPath, ["log", "--format=%s", "reports"]).split(separator: "\n")
        #expect(subjects.filter { $0.contains(first) }.count == 1)
        #expect(Set(subjects).count == subjects.count, "a report was published twice: \(subjects)")
        #expect(subjects.count > afterCrash.count)
        let status = try syncwright(["status", "--format", "json"] + home)
        #expect(status.stdout.contains("\"unpublishedReports\" : 0"), "\(status.stdout)")
    }
}
