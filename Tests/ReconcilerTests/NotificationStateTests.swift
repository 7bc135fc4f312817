import Foundation
@testable import Reconciler
import StateStore
import TestSupport
import Testing

/// Two processes on one home each keep what they last saw of a collection's notification
/// state. A run decided on a state the other process has since changed is not recorded as
/// decided: it decides again on the state as stored, so a failure after a recovery the other
/// process sent is news, and every repeat held back is counted.
@Suite struct NotificationStateTests {
    static func files(in source: String, out: String) -> [String: String] { [
        "connections.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: src }
            spec: { type: csv, path: \(source) }
            ---
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: dst }
            spec: { type: csv, path: \(out) }

            """,
        "jobs/a.yaml": Fixtures.job("a"),
        "channels.yaml": """
            apiVersion: syncwright.dev/v1
            kind: NotificationChannel
            metadata: { name: hook }
            spec: { type: webhook, urlFrom: { env: NOT_NEEDED_HERE }, format: json }

            """,
        "collections/c.yaml": Fixtures.collection("c", jobs: ["a"])
            + "  notifications: { when: [jobFails, recovered], channels: [hook], repeatAfter: 1h }\n",
    ] }

    func queued(_ workspace: Workspace) throws -> RunReport.Notified? {
        try workspace.run(collection: "c").report.notifications
    }

    @Test func aRunDecidedOnAStateAnotherProcessChangedDecidesAgain() throws {
        let folder = try TemporaryFolder()
        // Outside the repository, so that validation cannot see that its header lacks `id`.
        let source = folder.sub("in.csv")
        let broken = "name\nann\n"
        try broken.write(toFile: source, atomically: true, encoding: .utf8)
        let fixture = try GitFixture(files: Self.files(in: source, out: folder.sub("out.csv")))
        let first = try makeWorkspace(fixture, folder)
        try first.apply(ref: nil)
        let second = try Workspace(home: first.home, logger: quiet) // another process on the same home

        #expect(try queued(first)?.queued == ["webhook hook"], "the first failure is news")
        #expect(try queued(second)?.reason?.hasPrefix("held back") == true)
        // `first` last saw the state before `second` held a repeat back: it is told, and counts it too.
        #expect(try queued(first)?.reason?.hasPrefix("held back") == true)
        let store = try SQLiteStateStore(path: first.home.statePath)
        #expect(try store.notificationStates()["c"]?.heldBack == 2)

        // `second` sees the recovery and sends it; `first` still remembers the failure sent.
        try "id\n1\n".write(toFile: source, atomically: true, encoding: .utf8)
        let fixed = try second.run(collection: "c").report
        #expect(fixed.notifications?.triggers == ["recovered"], "\(fixed.status) \(fixed.jobs.map { $0.error ?? "" })")
        try broken.write(toFile: source, atomically: true, encoding: .utf8)
        let again = try #require(try queued(first))
        #expect(again.queued == ["webhook hook"], "a failure after a recovery is news, whatever this process last saw: \(again)")
        let messages = try store.dueNotifications(at: Date(), limit: 10)
        #expect(messages.map(\.dedupeKey).count == 3, "failure, recovery, failure")
        #expect(messages.last?.message.text.contains("held back") == false, "the count restarted at the recovery")
    }
}
