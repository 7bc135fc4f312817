import Foundation
import Manifests
import StateStore
import TestSupport
import Testing

func rec(_ kind: Kind, _ name: String, file: String, spec: String = "{}", refs: [Reference.Target] = []) -> ObjectRecord {
    ObjectRecord(key: ObjectKey(kind, name), file: file, spec: spec, raw: spec + " ", hash: Canonical.hash(spec), references: refs)
}

@Suite struct StateStoreTests {
    @Test func fullApplyReplacesEverythingAndRecordsTheRevision() throws {
        let folder = try TemporaryFolder()
        let store = try StateStore(path: folder.sub("state.sqlite"))
        #expect(try store.appliedRevision() == nil)
        let a = rec(.job, "a", file: "a.yaml", refs: [.object(ObjectKey(.connection, "src"))])
        let c = rec(.connection, "src", file: "c.yaml", refs: [.file("data/in.csv")])
        try store.apply(desired: DesiredState(objects: [a.key: a, c.key: c], scope: .full), deleted: [],
                        revision: "r1", counts: (2, 0, 0), at: Date(timeIntervalSince1970: 1_000))
        #expect(try store.appliedRevision() == AppliedRevision(revision: "r1", appliedAt: Date(timeIntervalSince1970: 1_000),
                                                               created: 2, updated: 0, deleted: 0))
        let stored = try store.allRecords()
        #expect(stored[a.key]?.spec == a.spec && stored[a.key]?.raw == a.raw && stored[a.key]?.hash == a.hash)
        #expect(stored.count == 2)

        let b = rec(.job, "b", file: "b.yaml")
        try store.apply(desired: DesiredState(objects: [b.key: b], scope: .full), deleted: [], revision: "r2", counts: (1, 0, 2))
        #expect(Array(try store.allRecords().keys) == [b.key])
        #expect(try store.appliedRevision()?.revision == "r2")
    }

    @Test func scopedApplyUpsertsAndDeletesOnlyWhatItNames() throws {
        let folder = try TemporaryFolder()
        let store = try StateStore(path: folder.sub("state.sqlite"))
        let a = rec(.job, "a", file: "a.yaml", refs: [.object(ObjectKey(.connection, "src"))])
        let b = rec(.job, "b", file: "b.yaml", refs: [.object(ObjectKey(.connection, "src"))])
        try store.apply(desired: DesiredState(objects: [a.key: a, b.key: b], scope: .full), deleted: [], revision: "r1", counts: (2, 0, 0))
        let a2 = rec(.job, "a", file: "moved.yaml", spec: #"{"x":1}"#, refs: [.object(ObjectKey(.connection, "other"))])
        try store.apply(desired: DesiredState(objects: [a2.key: a2], scope: .changed(["a.yaml", "moved.yaml", "b.yaml"])),
                        deleted: [b.key], revision: "r2", counts: (0, 1, 1))
        let stored = try store.allRecords()
        #expect(Array(stored.keys) == [a.key])
        #expect(stored[a.key]?.file == "moved.yaml" && stored[a.key]?.spec == #"{"x":1}"#)
        // The references were replaced, not added to.
        let catalog = store.catalog
        #expect(try catalog.referrers(of: [.object(ObjectKey(.connection, "src"))]).isEmpty)
        #expect(try catalog.referrers(of: [.object(ObjectKey(.connection, "other"))]) == [a.key: "moved.yaml"])
        #expect(try catalog.file(of: a.key) == "moved.yaml")
        #expect(try catalog.keys(inFiles: ["moved.yaml", "nothing.yaml"]) == [a.key])
        #expect(try catalog.raw(a.key)?.json == a2.raw)
        #expect(try store.records(for: [a.key, b.key], inFiles: []).keys.sorted() == [a.key])
    }

    @Test func reopeningKeepsTheStateAndTheSchema() throws {
        let folder = try TemporaryFolder()
        let a = rec(.policy, "p", file: "p.yaml")
        try StateStore(path: folder.sub("s.sqlite")).apply(desired: DesiredState(objects: [a.key: a], scope: .full),
                                                           deleted: [], revision: "r", counts: (1, 0, 0))
        let reopened = try StateStore(path: folder.sub("s.sqlite"))
        #expect(try reopened.allRecords().count == 1)
        // The independent oracle: the sqlite3 CLI sees the same rows.
        let rows = try runProcess("/usr/bin/sqlite3", [folder.sub("s.sqlite"), "SELECT kind, name, file FROM objects"])
        #expect(rows.stdout == "Policy|p|p.yaml\n")
    }

    @Test func anUnopenableStoreSaysWhichFile() throws {
        let folder = try TemporaryFolder()
        try "not a database, just text that is long enough to be read as a header".write(
            toFile: folder.sub("bad.sqlite"), atomically: true, encoding: .utf8)
        let error = #expect(throws: StateError.self) { try StateStore(path: folder.sub("bad.sqlite")) }
        #expect(error?.description.hasPrefix("cannot open the state store \(folder.sub("bad.sqlite"))") == true)
    }
}

@Suite struct StoredValueTests {
    /// A stored value the code does not know is an error, never read as something else.
    @Test func aFireWithAnUnknownOutcomeIsAnError() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("state.sqlite")
        let store = try StateStore(path: path)
        #expect(try store.fires().isEmpty)
        let insert = try runProcess("/usr/bin/sqlite3", [path, "INSERT INTO fires (schedule, target, fireTime, handledAt, outcome) "
                                                         + "VALUES ('nightly', 'c', 1, 2, 'teleported')"])
        try #require(insert.status == 0, "\(insert.stderr)")
        #expect { try store.fires() } throws: { "\($0)".contains("has the unknown outcome 'teleported'") }
    }
}

/// The tables this session added: runs in progress, rejections, runs handed to a reconciler.
@Suite struct RunBookkeepingStoreTests {
    @Test func aRunInProgressIsForgottenWhenTheRunIsRecorded() throws {
        let folder = try TemporaryFolder()
        let store = try StateStore(path: folder.sub("state.sqlite"))
        let started = Date(timeIntervalSince1970: 1_000)
        try store.begin(RunInProgress(id: "r1", collection: "c", trigger: "manual", revision: "abc", startedAt: started,
                                      pid: 42, job: "first", finishedJobs: "[]"))
        try store.progress(run: "r1", job: "second", finishedJobs: #"[{"name":"first"}]"#)
        let open = try store.runsInProgress()
        #expect(open.count == 1 && open.first?.job == "second" && open.first?.finishedJobs == #"[{"name":"first"}]"#)
        #expect(open.first?.pid == 42 && open.first?.startedAt == started)
        try store.record(StoredRun(id: "r1", collection: "c", trigger: "manual", revision: "abc", status: "succeeded",
                                   startedAt: started, finishedAt: started, report: "{}", jobs: []))
        #expect(try store.runsInProgress().isEmpty, "recording the run ends it, in the same transaction")
    }

    @Test func aRejectionStandsUntilALaterApply() throws {
        let folder = try TemporaryFolder()
        let store = try StateStore(path: folder.sub("state.sqlite"))
        #expect(try store.standingRejection() == nil)
        try store.apply(desired: DesiredState(objects: [:], scope: .full), deleted: [], revision: "good", counts: (0, 0, 0),
                        at: Date(timeIntervalSince1970: 1_000))
        let rejection = StoredRejection(revision: "bad", rejectedAt: Date(timeIntervalSince1970: 2_000), problems: 3,
                                        page: "rejected/x.md", running: "good")
        try store.save(rejection)
        try store.save(StoredRejection(revision: "bad", rejectedAt: Date(timeIntervalSince1970: 2_500), problems: 9,
                                       page: "other", running: nil))
        #expect(try store.standingRejection() == rejection, "the first record of a revision is kept")
        try store.apply(desired: DesiredState(objects: [:], scope: .full), deleted: [], revision: "fixed", counts: (0, 0, 0),
                        at: Date(timeIntervalSince1970: 3_000))
        #expect(try store.standingRejection() == nil)
    }

    @Test func aQueuedRunIsTakenOnce() throws {
        let folder = try TemporaryFolder()
        let store = try StateStore(path: folder.sub("state.sqlite"))
        let request = RunRequest(id: "handoff-1", collection: "c", runId: "run-1", requestedAt: Date(timeIntervalSince1970: 5),
                                 requestedBy: "ada (pid 7)", preview: true, previewLines: 3)
        try store.queue(request)
        #expect(try store.queuedRunRequests() == [request])
        #expect(try store.start(runRequest: "handoff-1"))
        #expect(try !store.start(runRequest: "handoff-1"), "a second taker gets nothing")
        #expect(try store.queuedRunRequests().isEmpty)
        try store.update(runRequest: "handoff-1", progress: "c: reading 10 objects")
        try store.update(runRequest: "handoff-1", status: .finished, result: "{}")
        let done = try #require(try store.runRequest("handoff-1"))
        #expect(done.status == .finished && done.progress == "c: reading 10 objects" && done.result == "{}")
        #expect(done.preview && done.previewLines == 3)
    }
}
