import Foundation
import GitKit
import Manifests
import Planner
@testable import Reconciler
import Reports
import Scheduling
import StateStore
import TestSupport
import Testing

/// A wall clock the test moves by hand.
final class ManualClock: WallClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    init(_ start: Date) { current = start }

    func now() -> Date { lock.withLock { current } }

    func advance(by seconds: TimeInterval) { lock.withLock { current = current.addingTimeInterval(seconds) } }

    func set(_ date: Date) { lock.withLock { current = date } }

    /// The loop's sleep: polls the hand-moved time (tests that drive passes themselves never sleep).
    func sleep(until deadline: Date) async throws {
        while now() < deadline {
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }
}

func at(_ text: String) -> Date {
    guard let date = try? Date.ISO8601FormatStyle().parse(text) else { fatalError("bad time \(text)") }
    return date
}

/// Two collections, each copying a CSV into its own CSV file in the home, and the given schedules.
/// `workflow` (YAML) puts the job of beta under a workflow.
func loopFixture(rows: Int = 3, schedules: String, workflow: String? = nil) throws -> GitFixture {
    var csv = "id,name\n"
    for i in 1...rows { csv += "\(i),person \(i)\n" }
    func job(_ name: String, _ destination: String) -> String {
        """
        apiVersion: syncwright.dev/v1
        kind: Job
        metadata: { name: \(name) }
        spec:
          source: { connection: people }
          destination: { connection: \(destination) }
          mappings:
            - { source: id, destination: id, key: true }
            - { source: name, destination: name }

        """
    }
    return try GitFixture(files: [
        "connections.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: people }
            spec: { type: csv, repoPath: data/people.csv }
            ---
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: out-a }
            spec: { type: csv, path: out-a.csv }
            ---
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: out-b }
            spec: { type: csv, path: out-b.csv }

            """,
        "data/people.csv": csv,
        "jobs/copy-a.yaml": job("copy-a", "out-a"),
        "jobs/copy-b.yaml": job("copy-b", "out-b") + (workflow.map { "  workflow: \($0)\n" } ?? ""),
        "collections/alpha.yaml": Fixtures.collection("alpha", jobs: ["copy-a"]),
        "collections/beta.yaml": Fixtures.collection("beta", jobs: ["copy-b"]),
        "schedules/s.yaml": schedules,
    ])
}

func scheduleYAML(_ name: String, targets: [String], _ body: String) -> String {
    """
    apiVersion: syncwright.dev/v1
    kind: Schedule
    metadata: { name: \(name) }
    spec:
      targets: [\(targets.joined(separator: ", "))]
    \(body.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))

    """
}

/// Lines of a CSV file in the home, header included; 0 when it does not exist.
func csvLines(_ workspace: Workspace, _ name: String) -> Int {
    let path = (workspace.home.path as NSString).appendingPathComponent(name)
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
    return text.split(separator: "\n").count
}

/// A gate a wrapped run waits at (on its own thread), so that a test can hold a run open.
final class Gate: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var arrivals = 0
    private var awaited = 0

    func wait() {
        lock.withLock { arrivals += 1 }
        semaphore.wait()
    }

    /// Returns once one more run is waiting at the gate; it polls, so that it never blocks one
    /// of the few threads of the cooperative pool.
    func awaitEntered() async {
        lock.withLock { awaited += 1 }
        while lock.withLock({ arrivals < awaited }) { try? await Task.sleep(nanoseconds: 1_000_000) }
    }

    func open() { semaphore.signal() }
}

@Suite struct ReconcileLoopTests {
    let folder: TemporaryFolder

    init() throws { folder = try TemporaryFolder() }

    func loop(_ fixture: GitFixture, clock: ManualClock, run: CollectionRun? = nil) throws -> ReconcileLoop {
        let workspace = try makeWorkspace(fixture, folder)
        return ReconcileLoop(workspace: workspace, clock: clock, interval: 3_600, logger: quiet, run: run)
    }

    func passAndRun(_ loop: ReconcileLoop) async -> PassSummary {
        let (summary, runs) = await loop.pass()
        for run in runs { await run.work() }
        return summary
    }

    @Test func missedRunsAreCaughtUpOnceOrOnlyRecorded() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("hourly-a", targets: ["alpha"], "triggers: [ { every: 1h } ]")
            + "---\n" + scheduleYAML("hourly-b", targets: ["beta"], "triggers: [ { every: 1h } ]\nmissedRuns: skip"))
        let clock = ManualClock(at("2026-11-25T10:00:30Z"))
        let loop = try loop(fixture, clock: clock)
        let first = await passAndRun(loop)
        #expect(first.applied != nil && first.started.isEmpty, "nothing is due right after the first apply")
        #expect(try loop.workspace.store.nextRuns() == ["alpha": at("2026-11-25T11:00:00Z"), "beta": at("2026-11-25T11:00:00Z")])

        clock.set(at("2026-11-25T14:30:00Z")) // the reconciler was down from 10:00 to 14:30
        let second = await passAndRun(loop)
        #expect(second.started == ["alpha"])
        let reports = try loop.workspace.history(collection: nil, limit: 10)
        #expect(reports.count == 1, "one catch-up run, not four")
        let report = try #require(reports.first)
        #expect(report.collection == "alpha" && report.trigger == .schedule && report.schedule == "hourly-a")
        #expect(report.scheduledFor == at("2026-11-25T14:00:00Z"))
        #expect(report.notes == ["missed 4 runs, from 2026-11-25T11:00:00Z to 2026-11-25T14:00:00Z, caught up at 2026-11-25T14:30:00Z"])
        #expect(csvLines(loop.workspace, "out-a.csv") == 4)
        #expect(csvLines(loop.workspace, "out-b.csv") == 0, "skip runs nothing")
        let skipped = try #require(loop.workspace.store.fires(target: "beta").first)
        #expect(skipped.outcome == .skipped)
        #expect(skipped.note == "missed 4 runs, from 2026-11-25T11:00:00Z to 2026-11-25T14:00:00Z; missedRuns is skip, so nothing ran")
        #expect(try loop.workspace.store.nextRuns() == ["alpha": at("2026-11-25T15:00:00Z"), "beta": at("2026-11-25T15:00:00Z")])

        // On time again: beta runs too, and no note.
        clock.set(at("2026-11-25T15:00:01Z"))
        let third = await passAndRun(loop)
        #expect(third.started.sorted() == ["alpha", "beta"])
        let latest = try loop.workspace.history(collection: "beta", limit: 1)
        #expect(latest.first?.notes == nil && latest.first?.scheduledFor == at("2026-11-25T15:00:00Z"))
    }

    @Test func startingDeadlineNeverStartsAnOldFire() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("daily", targets: ["alpha"],
                                                              "triggers: [ { cron: '30 2 * * *' } ]\nstartingDeadline: 10m"))
        let clock = ManualClock(at("2026-11-25T01:00:00Z"))
        let loop = try loop(fixture, clock: clock)
        _ = await passAndRun(loop)
        clock.set(at("2026-11-25T02:45:00Z"))
        let late = await passAndRun(loop)
        #expect(late.started.isEmpty && late.skipped == 1)
        #expect(try loop.workspace.store.fires(target: "alpha").first?.note
                == "missed run of 2026-11-25T02:30:00Z more than the startingDeadline of 600 s ago, so not started")
        #expect(try loop.workspace.history(collection: nil, limit: 10).isEmpty)
    }

    @Test func aCollectionStillRunningIsNotStartedAgain() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("often", targets: ["alpha"], "triggers: [ { every: 1m } ]"))
        let clock = ManualClock(at("2026-11-25T10:00:30Z"))
        let gate = Gate()
        let box = WorkspaceBox()
        let loop = try loop(fixture, clock: clock) { collection, scheduled, control in
            gate.wait()
            return try box.workspace.run(collection: collection, scheduled: scheduled, control: control).report
        }
        box.workspace = loop.workspace
        _ = await loop.pass()
        clock.set(at("2026-11-25T10:01:00Z"))
        let (first, runs) = await loop.pass()
        #expect(first.started == ["alpha"])
        let held = Task { for run in runs { await run.work() } }
        await gate.awaitEntered()
        clock.set(at("2026-11-25T10:02:00Z"))
        let (second, none) = await loop.pass()
        #expect(second.started.isEmpty && none.isEmpty)
        #expect(second.skipped == 1)
        let skip = try #require(loop.workspace.store.fires(target: "alpha").first)
        #expect(skip.outcome == .skipped)
        #expect(skip.note == "skipped: alpha is still running (started for schedule often at 2026-11-25T10:01:00Z)")
        gate.open()
        await held.value
        clock.set(at("2026-11-25T10:03:00Z"))
        let (third, more) = await loop.pass()
        #expect(third.started == ["alpha"], "once the run ended, the next fire starts it again")
        let next = Task { for run in more { await run.work() } }
        await gate.awaitEntered()
        gate.open()
        await next.value
        #expect(try loop.workspace.history(collection: "alpha", limit: 10).count == 2)
    }

    @Test func twoSchedulesFiringInTheSameMinuteRunTheCollectionOnce() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("by-cron", targets: ["alpha"], "triggers: [ { cron: '*/5 * * * *' } ]")
            + "---\n" + scheduleYAML("by-interval", targets: ["alpha", "beta"], "triggers: [ { every: 5m } ]"))
        let clock = ManualClock(at("2026-11-25T10:01:00Z"))
        let loop = try loop(fixture, clock: clock)
        _ = await passAndRun(loop)
        clock.set(at("2026-11-25T10:05:00Z"))
        let pass = await passAndRun(loop)
        #expect(pass.started.sorted() == ["alpha", "beta"])
        #expect(pass.merged == 1)
        #expect(try loop.workspace.history(collection: "alpha", limit: 10).count == 1)
        #expect(Set(try loop.workspace.store.fires(target: "alpha").map(\.outcome)) == [.started, .merged])
        let again = await passAndRun(loop)
        #expect(again.started.isEmpty && again.due == 0, "a second pass at the same time runs nothing more")
        #expect(try loop.workspace.history(collection: nil, limit: 10).count == 2)
    }

    @Test func aScheduleFiringSeveralTimesAMinuteRunsEachTime() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("fast", targets: ["alpha"], "triggers: [ { every: 20s } ]")
            + "---\n" + scheduleYAML("by-cron", targets: ["alpha"], "triggers: [ { cron: '* * * * *' } ]"))
        let clock = ManualClock(at("2026-11-25T10:00:05Z"))
        let loop = try loop(fixture, clock: clock)
        _ = await passAndRun(loop)
        var started = 0
        var merged = 0
        for second in ["20", "40"] {
            clock.set(at("2026-11-25T10:00:\(second)Z"))
            let pass = await passAndRun(loop)
            started += pass.started.count
            merged += pass.merged
        }
        #expect(started == 2 && merged == 0, "every: 20s is not merged with its own earlier fire in the same minute")
        clock.set(at("2026-11-25T10:01:00Z"))
        let both = await passAndRun(loop)
        #expect(both.started == ["alpha"] && both.merged == 1, "two schedules at 10:01:00 still run alpha once")
        #expect(try loop.workspace.history(collection: "alpha", limit: 10).count == 3)
    }

    @Test func atMostMaxConcurrentRunsWorkAtOnce() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("both", targets: ["alpha", "beta"], "triggers: [ { every: 1m } ]"))
        var config = HomeConfig(remote: fixture.originURL)
        config.maxConcurrentRuns = 1
        let workspace = try Workspace(home: try Home.create(at: folder.sub("one-slot"), config: config, force: false), logger: quiet)
        let gate = Gate()
        let tracker = InFlight()
        let clock = ManualClock(at("2026-11-25T10:00:30Z"))
        let loop = ReconcileLoop(workspace: workspace, clock: clock, interval: 3_600, logger: quiet) { collection, scheduled, control in
            tracker.enter()
            defer { tracker.leave() }
            gate.wait()
            return try workspace.run(collection: collection, scheduled: scheduled, control: control).report
        }
        _ = await loop.pass()
        clock.set(at("2026-11-25T10:01:00Z"))
        let (pass, runs) = await loop.pass()
        #expect(pass.started.sorted() == ["alpha", "beta"], "both are started: the second waits for a slot")
        let working = Task { await withTaskGroup(of: Void.self) { group in for run in runs { group.addTask { await run.work() } } } }
        await gate.awaitEntered()
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(tracker.current == 1, "the second run waits while the first holds the only slot")
        gate.open()
        await gate.awaitEntered()
        gate.open()
        await working.value
        #expect(tracker.most == 1)
        #expect(try workspace.history(collection: nil, limit: 10).count == 2)
    }

    @Test func aRunPastItsTimeoutStopsAtASafePointAndKeepsWhatItWrote() async throws {
        let fixture = try loopFixture(rows: 3_000, schedules: scheduleYAML("slow", targets: ["alpha"],
                                                                          "triggers: [ { every: 1h } ]\ntimeout: 10s"))
        let clock = ManualClock(at("2026-11-25T10:59:00Z"))
        let box = WorkspaceBox()
        // Each safe point finds that 4 s have passed: the job starts at +4 s, its first 1,000
        // objects are written at +8 s, and at +12 s the 10 s limit has passed.
        let loop = try loop(fixture, clock: clock) { collection, scheduled, control in
            let slow = RunControl(clock: control.clock, deadline: control.deadline, safePoint: { clock.advance(by: 4) })
            return try box.workspace.run(collection: collection, scheduled: scheduled, control: slow).report
        }
        box.workspace = loop.workspace
        _ = await passAndRun(loop)
        clock.set(at("2026-11-25T11:00:00Z"))
        _ = await passAndRun(loop)
        let report = try #require(loop.workspace.history(collection: "alpha", limit: 1).first)
        #expect(report.status == .failed && report.reason == .timeout)
        #expect(report.jobs.first?.stats.created == 1_000)
        #expect(report.jobs.first?.error?.contains("timeout: the schedule's time limit ended at 2026-11-25T11:00:10.000Z") == true,
                "\(report.jobs.first?.error ?? "")")
        #expect(report.jobs.first?.error?.contains("stopped after 1000 of 3000 changes") == true)
        #expect(csvLines(loop.workspace, "out-a.csv") == 1_001, "the first chunk stays written")
    }

    @Test func stoppingTheLoopAbortsARunningCollectionWithReasonShutdown() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("s", targets: ["alpha"], "triggers: [ { every: 1m } ]"))
        let clock = ManualClock(at("2026-11-25T10:00:30Z"))
        let gate = Gate()
        let box = WorkspaceBox()
        let loop = try loop(fixture, clock: clock) { collection, scheduled, control in
            gate.wait()
            return try box.workspace.run(collection: collection, scheduled: scheduled, control: control).report
        }
        box.workspace = loop.workspace
        _ = await loop.pass()
        clock.set(at("2026-11-25T10:01:00Z"))
        let (_, runs) = await loop.pass()
        let held = Task { for run in runs { await run.work() } }
        await gate.awaitEntered()
        loop.stop()
        gate.open()
        await held.value
        let report = try #require(loop.workspace.history(collection: "alpha", limit: 1).first)
        #expect(report.status == .aborted && report.reason == .shutdown)
        #expect(report.jobs.map(\.status) == [.notRun])
        #expect(csvLines(loop.workspace, "out-a.csv") == 0)
        clock.set(at("2026-11-25T10:02:00Z"))
        let (after, none) = await loop.pass()
        #expect(after.started.isEmpty && none.isEmpty, "a stopping reconciler starts nothing")
    }

    @Test func atStartupFiresInTheFirstPassOnly() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("boot", targets: ["beta"], "triggers: [ { atStartup: true } ]"))
        let clock = ManualClock(at("2026-11-25T10:00:30Z"))
        let loop = try loop(fixture, clock: clock)
        let first = await passAndRun(loop)
        #expect(first.started == ["beta"])
        #expect(try loop.workspace.history(collection: "beta", limit: 1).first?.notes == ["at the reconciler's start"])
        clock.advance(by: 3_600)
        let second = await passAndRun(loop)
        #expect(second.started.isEmpty)
        #expect(try loop.workspace.store.nextRuns()["beta"] == nil, "atStartup alone has no next run")
    }

    @Test func applyRecomputesOnlyTheSchedulesThatChanged() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("a", targets: ["alpha"], "triggers: [ { every: 1h } ]")
            + "---\n" + scheduleYAML("b", targets: ["beta"], "triggers: [ { every: 1h } ]"))
        let clock = ManualClock(at("2026-11-25T10:00:30Z"))
        let loop = try loop(fixture, clock: clock)
        _ = await passAndRun(loop)
        clock.set(at("2026-11-25T11:00:00Z"))
        _ = await passAndRun(loop)
        let before = try loop.workspace.store.scheduleStates()
        try fixture.write(["schedules/s.yaml": scheduleYAML("a", targets: ["alpha"], "triggers: [ { every: 1h } ]")
            + "---\n" + scheduleYAML("b", targets: ["beta"], "triggers: [ { every: 30m } ]")])
        _ = try fixture.commit("b every 30 minutes")
        try loop.workspace.fetch()
        try loop.workspace.apply(ref: nil, at: at("2026-11-25T11:10:00Z"))
        let after = try loop.workspace.store.scheduleStates()
        #expect(after.first { $0.schedule == "a" } == before.first { $0.schedule == "a" }, "a keeps its state")
        let b = try #require(after.first { $0.schedule == "b" })
        #expect(b.nextFire == at("2026-11-25T11:30:00Z") && b.lastFire == nil)
        // Dropping a schedule drops its state; status then says never.
        try fixture.write(["schedules/s.yaml": scheduleYAML("a", targets: ["alpha"], "triggers: [ { every: 1h } ]")])
        _ = try fixture.commit("drop b")
        try loop.workspace.fetch()
        try loop.workspace.apply(ref: nil)
        #expect(try loop.workspace.store.scheduleStates().map(\.schedule) == ["a"])
        #expect(try loop.workspace.store.nextRuns()["beta"] == nil)
    }

    @Test func anInvalidRevisionAppliesNothingAndIsPublishedOnce() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("s", targets: ["alpha"], "triggers: [ { every: 1h } ]"))
        let clock = ManualClock(at("2026-11-25T10:00:30Z"))
        let loop = try loop(fixture, clock: clock)
        let first = await passAndRun(loop)
        let good = try #require(first.applied?.revision)
        try fixture.write(["schedules/s.yaml": scheduleYAML("s", targets: ["alpha"], "triggers: [ { every: soon } ]")])
        let bad = try fixture.commit("a broken schedule")
        clock.set(at("2026-11-25T11:00:40Z")) // a fetch is due (every hour), and so is the schedule
        let second = await passAndRun(loop)
        #expect(second.problem?.contains("revision \(bad.prefix(7)) is invalid (1 problems); nothing was applied") == true)
        #expect(second.started == ["alpha"], "the last good state keeps running")
        #expect(try loop.workspace.store.appliedRevision()?.revision == good)
        let pages = try fixture.git(["ls-tree", "-r", "--name-only", "reports", "rejected/"], in: fixture.originPath)
            .split(separator: "\n")
        #expect(pages.count == 2, "the page and its facts for the README: \(pages)")
        let page = try #require(pages.first { $0.hasSuffix(".md") }).description
        let text = try fixture.git(["show", "reports:\(page.trimmingCharacters(in: .whitespacesAndNewlines))"], in: fixture.originPath)
        #expect(text.contains("# Rejected \(bad.prefix(7)): nothing was applied"))
        #expect(text.contains("spec.triggers[0].every: 'soon' is not an interval"))
        #expect(text.contains("| Still running | `\(good)` |"))
        clock.set(at("2026-11-25T12:00:41Z"))
        #expect(await passAndRun(loop).fetched)
        let again = try fixture.git(["ls-tree", "-r", "--name-only", "reports", "rejected/"], in: fixture.originPath)
        #expect(again.split(separator: "\n").count == 2, "the same bad revision is reported once (a page and its facts)")
    }
}

/// Lets a wrapped run reach the loop's workspace, made after the closure.
/// How many wrapped runs work at once, and the most seen.
final class InFlight: @unchecked Sendable {
    private let lock = NSLock()
    private var now = 0
    private var peak = 0
    func enter() { lock.withLock { now += 1; peak = max(peak, now) } }
    func leave() { lock.withLock { now -= 1 } }
    var current: Int { lock.withLock { now } }
    var most: Int { lock.withLock { peak } }
}

final class WorkspaceBox: @unchecked Sendable {
    var workspace: Workspace!
}
