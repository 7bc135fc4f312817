import Foundation
import Reports
import StateStore
import TestSupport
import Testing

/// The notification outbox's contract, for every backend: queued with the run in one
/// transaction, due by time, delivered or given up on, and the questions dedupe asks.
@Suite struct NotificationOutboxTests {
    func note(_ run: String, _ channel: String = "hook", key: String = "k1", status: QueuedNotification.Status = .pending,
              at time: TimeInterval = 1_000) -> QueuedNotification {
        QueuedNotification(runId: run, collection: "c", channel: channel, recipient: nil, dedupeKey: key, status: status,
                           message: NotificationMessage(subject: "s", text: "t", html: "h", payload: "{}", key: "\(run).\(channel)"),
                           createdAt: at(time), nextAttemptAt: status == .pending ? at(time) : nil)
    }

    @Test(arguments: Backend.all) func queuedWithTheRunThenDeliveredOrGivenUpOn(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        try store.record(report("run-1"), logs: [:], page: nil, requests: [], notifications: [note("run-1"), note("run-1", "mail")])
        #expect(try store.notifications(ofRun: "run-1").map(\.channel) == ["hook", "mail"])
        #expect(try store.dueNotifications(at: at(999), limit: 10).isEmpty, "not due before it was queued")
        let due = try store.dueNotifications(at: at(1_000), limit: 10)
        #expect(due.count == 2)
        try store.markDelivered(try #require(due[0].id), at: at(1_001))
        try store.markFailed(try #require(due[1].id), error: "refused", next: at(1_030), at: at(1_001))
        #expect(try store.dueNotifications(at: at(1_010), limit: 10).isEmpty)
        #expect(try store.troubledNotifications(limit: 10).map(\.lastError) == ["refused"])
        try store.markFailed(try #require(due[1].id), error: "still refused", next: nil, at: at(1_031))
        let given = try store.notifications(ofRun: "run-1")
        #expect(given.map(\.status) == [.delivered, .undelivered])
        #expect(given[1].attempts == 2 && given[1].lastError == "still refused" && given[1].finishedAt == at(1_031))
        #expect(try store.dueNotifications(at: at(9_999), limit: 10).isEmpty)
    }

    @Test(arguments: Backend.all) func dedupeSeesTheLastSentAndCountsWhatWasHeldBack(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        #expect(try store.lastSent(collection: "c") == nil)
        try store.record(report("run-1"), logs: [:], page: nil, requests: [], notifications: [note("run-1", key: "k1", at: 1_000)])
        try store.record(report("run-2", startedAt: 1_100), logs: [:], page: nil, requests: [],
                         notifications: [note("run-2", key: "k1", status: .suppressed, at: 1_100),
                                         note("run-2", "mail", key: "k1", status: .suppressed, at: 1_100)])
        try store.record(report("run-3", startedAt: 1_200), logs: [:], page: nil, requests: [],
                         notifications: [note("run-3", key: "k1", status: .suppressed, at: 1_200)])
        let last = try #require(try store.lastSent(collection: "c"))
        #expect(last.dedupeKey == "k1" && last.at == at(1_000))
        #expect(try store.suppressedSinceLastSent(collection: "c") == 2, "runs held back, not messages")
        // A request's notification is not a run's: it moves neither answer.
        try store.record(report("run-4", startedAt: 1_300), logs: [:], page: nil, requests: [],
                         notifications: [note("req-1", key: "request:req-1:pending", at: 1_300)])
        #expect(try store.lastSent(collection: "c")?.dedupeKey == "k1")
        #expect(try store.suppressedSinceLastSent(collection: "c") == 2)
        try store.record(report("run-5", startedAt: 1_400), logs: [:], page: nil, requests: [], notifications: [note("run-5", key: "k2", at: 1_400)])
        #expect(try store.suppressedSinceLastSent(collection: "c") == 0)
    }
}
