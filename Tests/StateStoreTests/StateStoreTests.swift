import Foundation
import Manifests
import Reports
import StateStore
import TestSupport
import Testing

// The contract every state store backend keeps (see `StateStore`'s documentation). Each test
// runs against every backend in `Backend.all`: SQLite, and PostgreSQL on a throwaway server.

/// A state store backend under test, opened fresh in a temporary folder.
struct Backend: CustomTestStringConvertible, Sendable {
    let name: String
    let open: @Sendable (TemporaryFolder) throws -> any StateStore
    /// Runs SQL on the store's database with the backend's own client (sqlite3, psql), as
    /// another program would: to write rows the code would never write.
    let sql: @Sendable (_ location: String, _ sql: String) throws -> Void
    var testDescription: String { name }

    static let sqlite = Backend(name: "SQLite", open: { folder in try SQLiteStateStore(path: folder.sub("state.sqlite")) },
                                sql: { path, sql in
        let result = try runProcess("/usr/bin/sqlite3", [path, sql])
        guard result.status == 0 else { throw ProcessFailure(description: result.stderr) }
    })
    /// A fresh database on the test process's throwaway server.
    static let postgres = Backend(name: "PostgreSQL", open: { _ in
        try PostgresStateStore(url: try PostgresServer.shared.get().createDatabase())
    }, sql: { url, sql in try PostgresServer.shared.get().psql(sql, database: url) })
    static let all = [sqlite, postgres]
}

func rec(_ kind: Kind, _ name: String, file: String, spec: String = "{}", refs: [Reference.Target] = []) -> ObjectRecord {
    ObjectRecord(key: ObjectKey(kind, name), file: file, spec: spec, raw: spec + " ", hash: Canonical.hash(spec), references: refs)
}

func at(_ seconds: TimeInterval) -> Date { Date(timeIntervalSince1970: seconds) }

func page(_ name: String) -> Publication { Publication(message: name, files: [ReportFile(path: "\(name).md", text: name)]) }

func revision(_ name: String, at time: TimeInterval, created: Int = 0) -> AppliedRevision {
    AppliedRevision(revision: name, appliedAt: at(time), created: created, updated: 0, deleted: 0)
}

func report(_ id: String, collection: String = "c", status: RunStatus = .succeeded, startedAt time: TimeInterval = 1_000,
            jobs: [RunReport.Job] = []) -> RunReport {
    RunReport(runId: id, collection: collection, trigger: .manual, revision: "abc", status: status, startedAt: at(time),
              finishedAt: at(time + 5), jobs: jobs)
}

func request(_ id: String, status: ApprovalRequest.Status = .pending, at time: TimeInterval = 100) -> ApprovalRequest {
    ApprovalRequest(id: id, job: "j", collection: "c", status: status, runId: "run-\(id)", revision: "abc", jobHash: "h",
                    trigger: .manual, requestedBy: "ada", requestedAt: at(time), expiresAt: at(time + 3_600),
                    approvers: ["ada@example.org"],
                    preview: .init(read: 1, create: 1, update: 0, rename: 0, delete: 0, unchanged: 0, skipped: 0, failed: 0,
                                   changes: ["+ uid=a"], moreChanges: 0, error: nil))
}

@Suite struct AppliedObjectsContractTests {
    @Test(arguments: Backend.all) func aFullApplyReplacesEverythingAndRecordsTheRevision(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        #expect(try store.appliedRevision() == nil)
        let a = rec(.job, "a", file: "a.yaml", refs: [.object(ObjectKey(.connection, "src"))])
        let c = rec(.connection, "src", file: "c.yaml", refs: [.file("data/in.csv")])
        try store.apply(RevisionUpdate(desired: DesiredState(objects: [a.key: a, c.key: c], scope: .full), deleted: [],
                                       revision: revision("r1", at: 1_000, created: 2), page: page("apply-r1")))
        #expect(try store.appliedRevision() == revision("r1", at: 1_000, created: 2))
        let stored = try store.allRecords()
        #expect(stored[a.key]?.spec == a.spec && stored[a.key]?.raw == a.raw && stored[a.key]?.hash == a.hash)
        #expect(stored.count == 2)
        #expect(try store.unpublished().map(\.subject) == ["r1"], "the apply's page is queued with it")
        #expect(try store.unpublished().first?.page() == page("apply-r1"))

        let b = rec(.job, "b", file: "b.yaml")
        try store.apply(RevisionUpdate(desired: DesiredState(objects: [b.key: b], scope: .full), deleted: [],
                                       revision: revision("r2", at: 2_000)))
        #expect(Array(try store.allRecords().keys) == [b.key])
        #expect(try store.appliedRevision()?.revision == "r2")
        #expect(try store.catalog.referrers(of: [.object(ObjectKey(.connection, "src"))]).isEmpty,
                "a full apply drops the old references too")
    }

    @Test(arguments: Backend.all) func aScopedApplyUpsertsAndDeletesOnlyWhatItNames(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        let a = rec(.job, "a", file: "a.yaml", refs: [.object(ObjectKey(.connection, "src"))])
        let b = rec(.job, "b", file: "b.yaml", refs: [.object(ObjectKey(.connection, "src"))])
        let keep = rec(.job, "keep", file: "keep.yaml")
        try store.apply(RevisionUpdate(desired: DesiredState(objects: [a.key: a, b.key: b, keep.key: keep], scope: .full),
                                       deleted: [], revision: revision("r1", at: 1)))
        let a2 = rec(.job, "a", file: "moved.yaml", spec: #"{"x":1}"#, refs: [.object(ObjectKey(.connection, "other"))])
        try store.apply(RevisionUpdate(desired: DesiredState(objects: [a2.key: a2], scope: .changed(["a.yaml", "moved.yaml", "b.yaml"])),
                                       deleted: [b.key], revision: revision("r2", at: 2)))
        let stored = try store.allRecords()
        #expect(Set(stored.keys) == [a.key, keep.key])
        #expect(stored[a.key]?.file == "moved.yaml" && stored[a.key]?.spec == #"{"x":1}"#)
        // The references were replaced, not added to.
        let catalog = store.catalog
        #expect(try catalog.referrers(of: [.object(ObjectKey(.connection, "src"))]).isEmpty)
        #expect(try catalog.referrers(of: [.object(ObjectKey(.connection, "other"))]) == [a.key: "moved.yaml"])
        #expect(try catalog.file(of: a.key) == "moved.yaml")
        #expect(try catalog.keys(inFiles: ["moved.yaml", "nothing.yaml"]) == [a.key])
        #expect(try catalog.raw(a.key)?.json == a2.raw)
        #expect(try store.records(for: [a.key, b.key], inFiles: ["keep.yaml"]).keys.sorted() == [a.key, keep.key])
        #expect(try store.hash(of: a.key) == a2.hash && store.hash(of: b.key) == nil)
        #expect(try store.hashes(of: .job) == ["a": a2.hash, "keep": keep.hash])
    }

    @Test(arguments: Backend.all) func appliedManifestsAreDecodedAndSortedByName(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        let parsed = ManifestParser.parse(file: "s.yaml", contents: Data("""
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: zulu }
            spec: { targets: [c], triggers: [{ every: 1h }] }
            ---
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: alpha }
            spec: { targets: [c], triggers: [{ every: 2h }] }
            """.utf8))
        try #require(parsed.problems.isEmpty, "\(parsed.problems)")
        let records = parsed.manifests.map { manifest in
            let json = Canonical.json(metadata: manifest.metadata, spec: manifest.spec)
            return ObjectRecord(key: manifest.key, file: "s.yaml", spec: json, raw: json, hash: Canonical.hash(json), references: [])
        }
        try store.apply(RevisionUpdate(desired: DesiredState(objects: Dictionary(uniqueKeysWithValues: records.map { ($0.key, $0) }),
                                                             scope: .full), deleted: [], revision: revision("r", at: 1)))
        #expect(try store.manifests(of: .schedule).map(\.metadata.name) == ["alpha", "zulu"])
        #expect(try store.manifest(ObjectKey(.schedule, "alpha"))?.file == "s.yaml")
        #expect(try store.manifest(ObjectKey(.schedule, "nope")) == nil)
    }
}

@Suite struct RunLedgerContractTests {
    @Test(arguments: Backend.all) func aRecordedRunKeepsItsReportLogsPageAndRequestsTogether(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        try store.begin(RunInProgress(id: "run-1", collection: "c", trigger: .schedule, revision: "abc", startedAt: at(1_000), pid: 42,
                                      job: "first"))
        let first = RunReport.Job(name: "first", status: .succeeded, stats: .init(read: 3), durationMs: 7)
        try store.progress(run: "run-1", job: "second", finishedJobs: [first])
        let open = try store.runsInProgress()
        #expect(open == [RunInProgress(id: "run-1", collection: "c", trigger: .schedule, revision: "abc", startedAt: at(1_000),
                                       pid: 42, job: "second", finishedJobs: [first])])

        let second = RunReport.Job(name: "second", status: .failed, stats: .init(), durationMs: 1, error: "boom")
        let run = report("run-1", status: .partial, jobs: [first, second])
        try store.record(run, logs: ["first": "+ uid=a\n+ uid=b", "second": "! uid=c: boom"], page: page("run-1"),
                         requests: [Publishable(request("req-1"), page: page("req-1"))])
        #expect(try store.runsInProgress().isEmpty, "recording the run ends it, in the same transaction")
        #expect(try store.runReport(id: "run-1") == run)
        #expect(try store.jobLog(run: "run-1", job: "first") == "+ uid=a\n+ uid=b")
        #expect(try store.jobLog(run: "run-1", job: "nope") == nil)
        #expect(try store.request("req-1") == request("req-1"))
        #expect(try store.unpublished().map(\.kind) == [.request, .run], "the request's page and the run's, in one go")
        #expect(try store.collectionCounters() == ["c": RunCounters(timesRun: 1, lastRun: at(1_000), lastOutcome: .partial)])
    }

    @Test(arguments: Backend.all) func reportsComeNewestFirstAndByAUniquePrefix(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        for (id, collection, time) in [("20261101-aa", "c", 1.0), ("20261102-bb", "d", 2.0), ("20261103-bc", "c", 3.0)] {
            try store.record(report(id, collection: collection, startedAt: time), logs: [:], page: nil, requests: [])
        }
        #expect(try store.runReports().map(\.runId) == ["20261103-bc", "20261102-bb", "20261101-aa"])
        #expect(try store.runReports(collection: "c", limit: 1).map(\.runId) == ["20261103-bc"])
        #expect(try store.runReport(id: "20261101")?.runId == "20261101-aa")
        #expect(try store.runReport(id: "2026110") == nil, "a prefix of several runs names none")
        #expect(try store.runReport(id: "20261102_") == nil, "`_` is no wildcard")
        #expect(try store.collectionCounters()["c"] == RunCounters(timesRun: 2, lastRun: at(3), lastOutcome: .succeeded))
    }

    /// A write that fails stores nothing of itself: not the run, not its page, not its requests.
    @Test(arguments: Backend.all) func aFailedRecordStoresNothing(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        try store.record(report("run-1"), logs: [:], page: page("run-1"), requests: [])
        #expect(throws: StateError.self) {
            try store.record(report("run-1", status: .failed), logs: [:], page: page("again"),
                             requests: [Publishable(request("req-9"), page: page("req-9"))])
        }
        #expect(try store.runReport(id: "run-1")?.status == .succeeded)
        #expect(try store.request("req-9") == nil)
        #expect(try store.unpublished().map(\.subject) == ["run-1"])
    }

    @Test(arguments: Backend.all) func aRunInProgressThatRecordedNothingIsForgotten(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        try store.begin(RunInProgress(id: "r", collection: "c", trigger: .manual, revision: "abc", startedAt: at(1), pid: 1))
        try store.forgetRunInProgress("r")
        #expect(try store.runsInProgress().isEmpty)
    }
}

@Suite struct ReportOutboxContractTests {
    @Test(arguments: Backend.all) func publishedReportsLeaveTheQueueAndFailedAttemptsAreCounted(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        try store.enqueue(page("one"), kind: .rejected, subject: "bad1", at: at(1))
        try store.enqueue(page("two"), kind: .rejected, subject: "bad2", at: at(2))
        #expect(try store.hasReport(kind: .rejected, subject: "bad1") && !store.hasReport(kind: .run, subject: "bad1"))
        let queued = try store.unpublished()
        #expect(queued.map(\.subject) == ["bad1", "bad2"] && queued.allSatisfy { $0.attempts == 0 })
        try store.markAttempt(queued.map(\.id), error: "remote unreachable")
        try store.markAttempt([queued[0].id], error: "still unreachable")
        let retried = try store.unpublished()
        #expect(retried.map(\.attempts) == [2, 1] && retried[0].lastError == "still unreachable")
        try store.markPublished([queued[0].id: "c0ffee"], at: at(3))
        #expect(try store.unpublished().map(\.subject) == ["bad2"])
        #expect(try store.publishedCommit(of: "bad1") == "c0ffee" && store.publishedCommit(of: "bad2") == nil)
        #expect(try store.unpublished(limit: 0).isEmpty)
    }
}

@Suite struct ScheduleLedgerContractTests {
    func state(_ schedule: String, _ target: String, next: TimeInterval?) -> ScheduleTargetState {
        ScheduleTargetState(schedule: schedule, target: target, hash: "h-\(schedule)", nextFire: next.map(at))
    }

    @Test(arguments: Backend.all) func fireTimesAreStoredReplacedAndMovedByFires(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        try store.updateSchedules(ScheduleStateUpdate(replacing: [], states: [
            state("nightly", "a", next: 300), state("nightly", "b", next: 100), state("hourly", "a", next: 200),
            state("never", "a", next: nil),
        ]))
        #expect(try store.scheduleStates().map { "\($0.schedule)/\($0.target)" } == ["hourly/a", "never/a", "nightly/a", "nightly/b"])
        #expect(try store.dueSchedules(at: at(200)).map { "\($0.schedule)/\($0.target)" } == ["nightly/b", "hourly/a"])
        #expect(try store.nextFireTime() == at(100))
        #expect(try store.nextRuns() == ["a": at(200), "b": at(100)])

        try store.recordFires([
            FireRecord(schedule: "nightly", target: "b", fireTime: at(100), handledAt: at(101), outcome: .started, runId: "run-1",
                       note: nil, nextFire: at(1_000)),
            FireRecord(schedule: "hourly", target: "a", fireTime: at(150), handledAt: at(151), outcome: .skipped, runId: nil,
                       note: "at startup", nextFire: nil, timed: false),
        ])
        let states = try store.scheduleStates()
        let nightlyB = try #require(states.first { $0.schedule == "nightly" && $0.target == "b" })
        #expect(nightlyB.nextFire == at(1_000) && nightlyB.lastFire == at(100) && nightlyB.lastOutcome == .started)
        let hourly = try #require(states.first { $0.schedule == "hourly" })
        #expect(hourly.nextFire == at(200), "a fire that is not timed leaves the next fire time alone")
        #expect(hourly.lastOutcome == .skipped && hourly.lastNote == "at startup")
        #expect(try store.fires().map(\.schedule) == ["hourly", "nightly"])
        #expect(try store.fires(target: "b", limit: 10).map(\.runId) == ["run-1"])

        // Several fires of one target in one call count in order: the timed one moves the next
        // fire time, the last one (not timed) is the one shown.
        try store.recordFires([
            FireRecord(schedule: "nightly", target: "a", fireTime: at(300), handledAt: at(301), outcome: .merged, runId: nil,
                       note: "running", nextFire: at(400)),
            FireRecord(schedule: "nightly", target: "a", fireTime: at(302), handledAt: at(302), outcome: .started, runId: "run-2",
                       note: nil, nextFire: nil, timed: false),
        ])
        let nightlyA = try #require(try store.scheduleStates().first { $0.schedule == "nightly" && $0.target == "a" })
        #expect(nightlyA.nextFire == at(400) && nightlyA.lastFire == at(302) && nightlyA.lastOutcome == .started && nightlyA.lastNote == nil)
        #expect(try store.fires(target: "a", limit: 2).map(\.outcome) == [.started, .merged], "newest first")

        try store.updateSchedules(ScheduleStateUpdate(replacing: ["nightly"], states: [state("nightly", "c", next: 50)]))
        #expect(try store.scheduleStates().filter { $0.schedule == "nightly" }.map(\.target) == ["c"])
    }
}

@Suite struct WorkflowLedgerContractTests {
    @Test(arguments: Backend.all) func requestsAreSavedWithTheirPagesAndFilteredByStatus(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        try store.save(requests: [Publishable(request("req-b", at: 200), page: page("b")),
                                  Publishable(request("req-a", at: 100), page: nil)])
        #expect(try store.requests().map(\.id) == ["req-a", "req-b"])
        var approved = request("req-a", status: .approved, at: 100)
        approved.decidedBy = "Ada <ada@example.org>"
        try store.save(requests: [Publishable(approved, page: page("a"))])
        #expect(try store.requests(statuses: [.pending]).map(\.id) == ["req-b"])
        #expect(try store.requests(statuses: [.approved, .denied]) == [approved])
        #expect(try store.unpublished().map(\.subject) == ["req-b", "req-a"])
    }

    @Test(arguments: Backend.all) func aRejectionStandsUntilALaterApply(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        #expect(try store.standingRejection() == nil)
        try store.apply(RevisionUpdate(desired: DesiredState(objects: [:], scope: .full), deleted: [], revision: revision("good", at: 1_000)))
        let rejection = StoredRejection(revision: "bad", rejectedAt: at(2_000), problems: 3, page: "rejected/x.md", running: "good")
        try store.save(rejection, page: page("bad"))
        try store.save(StoredRejection(revision: "bad", rejectedAt: at(2_500), problems: 9, page: "other", running: nil), page: page("again"))
        #expect(try store.standingRejection() == rejection, "the first record of a revision is kept")
        #expect(try store.unpublished().filter { $0.kind == .rejected }.map(\.subject) == ["bad"], "and its page is queued once")
        try store.apply(RevisionUpdate(desired: DesiredState(objects: [:], scope: .full), deleted: [], revision: revision("fixed", at: 3_000)))
        #expect(try store.standingRejection() == nil)
    }
}

@Suite struct RunQueueContractTests {
    @Test(arguments: Backend.all) func aQueuedRunIsTakenOnce(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        let request = RunRequest(id: "handoff-1", collection: "c", runId: "run-1", requestedAt: at(5), requestedBy: "ada (pid 7)",
                                 preview: true, previewLines: 3)
        try store.queue(request)
        #expect(try store.queuedRunRequests() == [request])
        #expect(try store.start(runRequest: "handoff-1"))
        #expect(try !store.start(runRequest: "handoff-1"), "a second taker gets nothing")
        #expect(try store.queuedRunRequests().isEmpty)
        try store.update(runRequest: "handoff-1", progress: "c: reading 10 objects")
        try store.update(runRequest: "handoff-1", status: .finished, result: "{}")
        let done = try #require(try store.runRequest("handoff-1"))
        #expect(done.status == .finished && done.progress == "c: reading 10 objects" && done.result == "{}")
        #expect(done.preview && done.previewLines == 3 && done.error == nil)
        try store.update(runRequest: "handoff-1", status: .failed, error: "the collection is gone")
        #expect(try store.runRequest("handoff-1")?.error == "the collection is gone")
    }

    @Test(arguments: Backend.all) func endedRequestsAreForgottenAfterTheirTime(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        for (id, time, status) in [("old-done", 10.0, RunRequest.Status.finished), ("old-failed", 20, .failed),
                                   ("old-queued", 30, .queued), ("old-started", 40, .started), ("new-done", 200, .finished)] {
            try store.queue(RunRequest(id: id, collection: "c", runId: "run-\(id)", requestedAt: at(time), requestedBy: "ada"))
            if status != .queued { try store.update(runRequest: id, status: status) }
        }
        #expect(try store.forgetEndedRunRequests(before: at(100)) == 2)
        #expect(try store.runRequest("old-done") == nil && store.runRequest("old-failed") == nil)
        #expect(try store.runRequest("old-queued") != nil && store.runRequest("old-started") != nil,
                "a request still waiting or running is never forgotten")
        #expect(try store.runRequest("new-done") != nil)
    }
}

@Suite struct StoredValueContractTests {
    /// A stored value the code does not know is an error naming the row, never read as something else.
    @Test(arguments: [
        ("INSERT INTO fires (schedule, target, fireTime, handledAt, outcome) VALUES ('nightly', 'c', 1, 2, 'teleported')", "fires"),
        ("INSERT INTO runs VALUES ('r1', 'c', 'manual', 'abc', 'exploded', 1, 2, '{}')", "counters"),
        ("INSERT INTO runRequests (id, collection, runId, requestedAt, requestedBy, status) VALUES ('h1', 'c', 'r', 1, 'me', 'paused')", "runRequest"),
        ("INSERT INTO requests VALUES ('q1', 'mulling', 'j', 'c', 1, '{}')", "requests"),
        ("INSERT INTO objects (kind, name, file, spec, hash) VALUES ('Gizmo', 'g', 'g.yaml', '{}', 'h')", "objects"),
        ("INSERT INTO scheduleTargets (schedule, target, hash, lastOutcome) VALUES ('s', 'c', 'h', 'vanished')", "schedules"),
    ] as [(String, String)], Backend.all)
    func anUnknownStoredValueIsAnError(_ case: (insert: String, question: String), _ backend: Backend) throws {
        let (insert, question) = `case`
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        try backend.sql(store.location, insert)
        let error = #expect(throws: StateError.self) {
            switch question {
            case "fires": _ = try store.fires()
            case "counters": _ = try store.collectionCounters()
            case "runRequest": _ = try store.runRequest("h1")
            case "requests": _ = try store.requests()
            case "objects": _ = try store.allRecords()
            default: _ = try store.scheduleStates()
            }
        }
        let text = error?.description ?? ""
        #expect(text.contains("in the state store \(store.location) cannot be read") && text.contains("newer syncwright"), "\(text)")
        let value = insert.split(separator: "'").map(String.init).first { ["teleported", "exploded", "paused", "mulling", "Gizmo", "vanished"].contains($0) }
        #expect(text.contains(value ?? "?"), "names the value: \(text)")
    }
}
