import Foundation
import TestSupport
import Testing

/// A run killed while it writes its destination is never unaccounted for: it was recorded as
/// started before its first write, and the next command reports it as `interrupted` and
/// publishes it.
@Suite struct InterruptedRunTests {
    /// Runs collection `c`, and kills it with SIGKILL at the dangerous moment: while its
    /// destination `out/corp.ldif` is being written (its temp file exists).
    static func killMidWrite(home: String, folder: TemporaryFolder) throws -> Process {
        let process = try launchSyncwright(["run", "c", "--home", home])
        let deadline = Date().addingTimeInterval(120)
        var writing = false
        while Date() < deadline, process.isRunning {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.sub("out"))) ?? []
            if names.contains(where: { $0.hasPrefix(".corp.ldif.tmp-") }) { writing = true; break }
            usleep(2_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try #require(writing, "the run ended before it was seen writing")
        return process
    }

    @Test func aRunKilledMidWriteIsReportedAsInterrupted() throws {
        let folder = try TemporaryFolder("interrupted")
        let out = folder.sub("out/corp.ldif")
        let fixture = try DestinationLockTests.repository(prefix: "a", rows: 150_000, out: out)
        let home = try TestHome(fixture, in: folder).path

        let process = try Self.killMidWrite(home: home, folder: folder)

        // Any next command finds it; history reads it.
        let history = try syncwright(["history", "--format", "json", "--home", home])
        #expect(history.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [String: Any])
        let runs = try #require(json["runs"] as? [[String: Any]])
        #expect(runs.count == 1)
        let run = try #require(runs.first)
        #expect(run["status"] as? String == "interrupted")
        let jobs = try #require(run["jobs"] as? [[String: Any]])
        #expect(jobs.first?["name"] as? String == "load-a")
        #expect((jobs.first?["error"] as? String)?.hasPrefix("interrupted: the process (pid \(process.processIdentifier)) ended") == true)

        // The next writing command publishes it, then the collection runs again in full.
        let again = try syncwright(["run", "c", "--home", home])
        #expect(again.status == 0, "\(again.stderr)")
        let id = try #require(run["runId"] as? String)
        let tree = try runProcess("/usr/bin/git", ["--git-dir", fixture.originPath, "ls-tree", "-r", "--name-only", "reports"])
        #expect(tree.stdout.contains("runs/c/\(id)/summary.md"))
        let summary = try runProcess("/usr/bin/git", ["--git-dir", fixture.originPath, "show", "reports:runs/c/\(id)/summary.md"])
        #expect(summary.stdout.contains("interrupted"))
        #expect(try String(contentsOfFile: out, encoding: .utf8).components(separatedBy: "\ndn: ").count - 1 == 150_000)
    }
}

extension InterruptedRunTests {
    /// An interrupted run is notified like any other: the job that was cut off failed.
    @Test func anInterruptedRunIsNotified() throws {
        let folder = try TemporaryFolder("interrupted-notify")
        let out = folder.sub("out/corp.ldif")
        let hook = try WebhookReceiver()
        let fixture = try DestinationLockTests.repository(prefix: "a", rows: 150_000, out: out)
        try fixture.write([
            "channels.yaml": """
                apiVersion: syncwright.dev/v1
                kind: NotificationChannel
                metadata: { name: hook }
                spec: { type: webhook, urlFrom: { env: HOOK_URL }, format: json }

                """,
            "collection.yaml": Fixtures.collection("c", jobs: ["load-a"]) + """
                  notifications:
                    when: [jobFails]
                    channels: [hook]

                """,
        ])
        try fixture.commit("notify on failures")
        let home = try TestHome(fixture, in: folder).path

        _ = try Self.killMidWrite(home: home, folder: folder)

        // The next reconcile finds it, records it with its notification, and sends that.
        let once = try syncwright(["reconcile", "--once", "--home", home], env: ["HOOK_URL": hook.url])
        #expect(once.status == 0, "\(once.stderr)")
        let posts = try hook.posts()
        let bodies = posts.compactMap { $0["body"] as? [String: Any] ?? (($0["body"] as? String).flatMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }) }
        let interrupted = bodies.first { $0["status"] as? String == "interrupted" }
        #expect(interrupted != nil, "\(posts)")
        #expect((interrupted?["triggers"] as? [String]) == ["jobFails"], "\(String(describing: interrupted))")
    }
}

/// A destination that a job writes passwords to is created readable by its owner only.
@Suite struct DestinationModeTests {
    @Test func aNewDestinationHoldingPasswordsIsPrivate() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder("modes")
        let home = try TestHome(fixture, in: folder).arguments
        #expect(try syncwright(["run", "nightly-directory-sync"] + home).status == 0)
        func mode(_ file: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: folder.sub("h/directories/\(file)"))[.posixPermissions] as? Int) ?? -1
        }
        #expect(try mode("corp.ldif") == 0o600, "hr-users-to-corp generates userPassword")
        #expect(try mode("partner.ldif") == 0o644)
    }
}
