import Foundation
import TestSupport
import Testing

/// A config repository with one collection copying a CSV into the home, on the given schedule.
func scheduledFixture(schedule: String) throws -> GitFixture {
    try GitFixture(files: [
        "connections.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: people }
            spec: { type: csv, repoPath: data/people.csv }
            ---
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: out }
            spec: { type: csv, path: out.csv }

            """,
        "data/people.csv": "id,name\n1,Ada\n2,Grace\n3,Edsger\n",
        "jobs/copy.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata: { name: copy }
            spec:
              source: { connection: people }
              destination: { connection: out }
              mappings:
                - { source: id, destination: id, key: true }
                - { source: name, destination: name }

            """,
        "collections/c.yaml": Fixtures.collection("c", jobs: ["copy"]),
        "collections/idle.yaml": Fixtures.collection("idle", jobs: ["copy"]),
        "schedules/s.yaml": schedule,
    ])
}

/// A started `syncwright` process whose output goes to files (so a long run cannot fill a pipe).
final class Background {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String

    init(_ arguments: [String], folder: TemporaryFolder) throws {
        stdoutPath = folder.sub("bg.out")
        stderrPath = folder.sub("bg.err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { _, new in new }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits for the process to end, at most `seconds`; its exit status, or nil if it did not end.
    func wait(seconds: Double) -> Int32? {
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }
}

@Suite struct ScheduleTests {
    @Test func theReconcilerRunsSchedulesAppliesChangesAndStopsCleanly() throws {
        let fixture = try scheduledFixture(schedule: """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: every-3s }
            spec:
              targets: [c]
              triggers: [ { every: 3s } ]

            """)
        let folder = try TemporaryFolder()
        let home = ["--home", folder.sub("home")]
        #expect(try syncwright(["init", fixture.originURL] + home).status == 0)
        let apply = try syncwright(["apply"] + home)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("+ Schedule every-3s  (schedules/s.yaml)"))
        #expect(apply.stdout.contains("    next: "), "the plan shows the next fire times: \(apply.stdout)")

        let reconciler = try Background(["reconcile", "--interval", "1s"] + home, folder: folder)
        defer { if reconciler.process.isRunning { kill(reconciler.process.processIdentifier, SIGKILL) } }
        Thread.sleep(forTimeInterval: 1.5)

        // A second writer on the same home is refused at once, naming the holder; readers still work.
        let second = try syncwright(["reconcile", "--once"] + home)
        #expect(second.status == 1)
        #expect(second.stderr.contains("is in use by syncwright reconcile (pid \(reconciler.process.processIdentifier))"),
                "\(second.stderr)")
        // `run` is not refused: it hands the run to the reconciler ("sync now") and follows it.
        let manual = try syncwright(["run", "c"] + home)
        #expect(manual.status == 0 && manual.stderr.contains("Handed the run to the reconciler"), "\(manual.stderr)")
        #expect(manual.stdout.contains(" of c: succeeded (manual"), "\(manual.stdout)")
        #expect(try syncwright(["status"] + home).status == 0)
        #expect(try syncwright(["history"] + home).status == 0)

        Thread.sleep(forTimeInterval: 3)
        try fixture.write(["data/people.csv": "id,name\n1,Ada\n2,Grace\n3,Edsger\n4,Barbara\n"])
        let change = try fixture.commit("Barbara joins")
        Thread.sleep(forTimeInterval: 7.5)

        kill(reconciler.process.processIdentifier, SIGTERM)
        #expect(reconciler.wait(seconds: 15) == 0, "SIGTERM ends the reconciler with 0: \(reconciler.stderr)")
        let log = reconciler.stderr
        #expect(log.contains("pass"), "one log line per pass: \(log)")
        #expect(log.contains("applied=\(change.prefix(7))"), "the pushed change was applied without a restart: \(log)")

        // The origin's reports branch, read with git: scheduled runs, before and after the change.
        let names = try fixture.git(["ls-tree", "-r", "--name-only", "reports", "runs/c/"], in: fixture.originPath)
        let reports = names.split(separator: "\n").filter { $0.hasSuffix("/report.json") }
        #expect(reports.count >= 2, "at least two scheduled runs published: \(names)")
        var revisions: Set<String> = []
        var readAfterChange = 0
        for path in reports {
            let text = try fixture.git(["show", "reports:\(path)"], in: fixture.originPath)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            if json["trigger"] as? String == "manual" { continue } // the handed-over run
            #expect(json["trigger"] as? String == "schedule")
            #expect(json["schedule"] as? String == "every-3s")
            #expect(json["status"] as? String == "succeeded" || json["status"] as? String == "aborted")
            let revision = json["revision"] as? String ?? ""
            revisions.insert(revision)
            if revision == change, let job = (json["jobs"] as? [[String: Any]])?.first,
               let stats = job["stats"] as? [String: Int] { readAfterChange = max(readAfterChange, stats["read"] ?? 0) }
        }
        #expect(revisions.contains(change), "a run used the pushed revision")
        #expect(readAfterChange == 4)
        #expect(try String(contentsOfFile: folder.sub("home/out.csv"), encoding: .utf8).contains("4,Barbara"))

        let status = try syncwright(["status", "--format", "json"] + home)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        let collections = try #require(document["collections"] as? [[String: Any]])
        let c = try #require(collections.first { $0["name"] as? String == "c" })
        #expect(c["nextRun"] is String && (c["timesRun"] as? Int ?? 0) >= 2 && c["lastOutcome"] is String)
        let idle = try #require(collections.first { $0["name"] as? String == "idle" })
        #expect(idle["nextRun"] is NSNull, "no schedule: nextRun is null")
        #expect((document["requests"] as? [Any])?.isEmpty == true)
        #expect(try syncwright(["status", "--format", "json"] + home).stdout.contains("\"unpublishedReports\" : 0"))
    }

    @Test func aKilledReconcilerLeavesNoLockBehind() throws {
        let fixture = try scheduledFixture(schedule: """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: never }
            spec:
              targets: [c]
              triggers: [ { once: "2020-01-01T00:00" } ]

            """)
        let folder = try TemporaryFolder()
        let home = ["--home", folder.sub("home")]
        #expect(try syncwright(["init", fixture.originURL] + home).status == 0)
        let reconciler = try Background(["reconcile", "--interval", "1h"] + home, folder: folder)
        Thread.sleep(forTimeInterval: 1)
        #expect(try syncwright(["apply"] + home).status == 1)
        kill(reconciler.process.processIdentifier, SIGKILL)
        #expect(reconciler.wait(seconds: 10) != nil)
        let once = try syncwright(["reconcile", "--once"] + home)
        #expect(once.status == 0, "\(once.stderr)")
        let status = try syncwright(["status"] + home)
        #expect(status.stdout.contains("never"), "a once trigger in the past never fires: \(status.stdout)")
    }

    @Test func planShowsTheNextThreeFireTimesInTheZoneAndInUTC() throws {
        let fixture = try scheduledFixture(schedule: """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: berlin }
            spec:
              targets: [c]
              timezone: Europe/Berlin
              triggers: [ { every: 1d, from: "2031-06-01T08:00" } ]

            """)
        let folder = try TemporaryFolder()
        let home = ["--home", folder.sub("home")]
        #expect(try syncwright(["init", fixture.originURL] + home).status == 0)
        let plan = try syncwright(["plan"] + home)
        #expect(plan.stdout.contains("+ Schedule berlin  (schedules/s.yaml)\n    next: 2031-06-01 08:00 "), "\(plan.stdout)")
        #expect(plan.stdout.contains("(2031-06-01T06:00:00Z), 2031-06-02 08:00 "))
        #expect(plan.stdout.contains("(2031-06-03T06:00:00Z)\n"))
        let json = try syncwright(["plan", "--format", "json"] + home)
        #expect(json.stdout.contains("\"utc\" : \"2031-06-02T06:00:00Z\""), "\(json.stdout)")
        let markdown = try syncwright(["plan", "--format", "markdown"] + home)
        #expect(markdown.stdout.contains("| `berlin` | 2031-06-01 08:00 "))
    }

    @Test func sigtermDuringARunRecordsItAbortedWithReasonShutdownAndPublishesIt() throws {
        let fixture = try scheduledFixture(schedule: """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: boot }
            spec:
              targets: [c]
              triggers: [ { atStartup: true } ]

            """)
        var csv = "id,name\n"
        for i in 1...200_000 { csv += "\(i),person \(i)\n" }
        try fixture.write(["data/people.csv": csv])
        try fixture.commit("a large source")
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder, name: "home").arguments
        let reconciler = try Background(["reconcile", "--interval", "1h"] + home, folder: folder)
        defer { if reconciler.process.isRunning { kill(reconciler.process.processIdentifier, SIGKILL) } }
        let started = Date()
        while !reconciler.stderr.contains("run started") && Date().timeIntervalSince(started) < 30 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        Thread.sleep(forTimeInterval: 0.3) // the startup run is reading 200,000 rows
        kill(reconciler.process.processIdentifier, SIGTERM)
        #expect(reconciler.wait(seconds: 60) == 0, "\(reconciler.stderr)")
        let names = try fixture.git(["ls-tree", "-r", "--name-only", "reports", "runs/c/"], in: fixture.originPath)
        let path = try #require(names.split(separator: "\n").first { $0.hasSuffix("/report.json") })
        let text = try fixture.git(["show", "reports:\(path)"], in: fixture.originPath)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(json["status"] as? String == "aborted", "\(text)")
        #expect(json["reason"] as? String == "shutdown")
        let job = try #require((json["jobs"] as? [[String: Any]])?.first)
        #expect((job["error"] as? String)?.contains("shutdown: the reconciler was told to stop") == true, "\(job)")
        let summary = try fixture.git(["show", "reports:\(path.replacingOccurrences(of: "report.json", with: "summary.md"))"],
                                      in: fixture.originPath)
        #expect(summary.contains("| Stopped | shutdown |"))
    }
}
