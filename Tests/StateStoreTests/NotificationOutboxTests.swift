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
        try store.record(report("run-1"), logs: [:], page: nil, requests: [], notifications: [note("run-1"), note("run-1", "mail")],
                         notificationState: nil)
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

    @Test(arguments: Backend.all) func aRunChangesItsCollectionsNotificationStateOnlyFromTheStateItDecidedOn(_ backend: Backend) throws {
        let folder = try TemporaryFolder()
        let store = try backend.open(folder)
        #expect(try store.notificationStates().isEmpty)
        let sent = NotificationStateChange(collection: "c", decidedOn: nil, change: .sent(dedupeKey: "k1", at: at(1_000)))
        try store.record(report("run-1"), logs: [:], page: nil, requests: [], notifications: [note("run-1", key: "k1", at: 1_000)],
                         notificationState: sent)
        let first = try #require(try store.notificationStates()["c"])
        #expect(first == NotificationState(dedupeKey: "k1", sentAt: at(1_000), heldBack: 0, version: 1))
        // Two runs held back: counted on the state, no rows.
        try store.record(report("run-2", startedAt: 1_100), logs: [:], page: nil, requests: [], notifications: [],
                         notificationState: .init(collection: "c", decidedOn: first, change: .heldBack))
        let second = try #require(try store.notificationStates()["c"])
        try store.record(report("run-3", startedAt: 1_200), logs: [:], page: nil, requests: [], notifications: [],
                         notificationState: .init(collection: "c", decidedOn: second, change: .heldBack))
        let third = try #require(try store.notificationStates()["c"])
        #expect(third.heldBack == 2 && third.dedupeKey == "k1" && third.sentAt == at(1_000))
        #expect(try store.notifications(ofRun: "run-2").isEmpty)
        // A run that decided on an older state is not recorded at all, and is told the state as it is.
        do {
            try store.record(report("run-4", startedAt: 1_300), logs: [:], page: nil, requests: [],
                             notifications: [note("run-4", key: "k2", at: 1_300)],
                             notificationState: .init(collection: "c", decidedOn: second, change: .sent(dedupeKey: "k2", at: at(1_300))))
            Issue.record("a decision on an old state was recorded")
        } catch StateError.notificationStateMoved(let collection, let current) {
            #expect(collection == "c" && current == third)
        }
        #expect(try store.runReport(id: "run-4") == nil, "nothing of the run was recorded")
        #expect(try store.notifications(ofRun: "run-4").isEmpty)
        #expect(try store.notificationStates()["c"] == third)
        // A request's notification is not a run's: it does not move the state.
        try store.record(report("run-5", startedAt: 1_400), logs: [:], page: nil, requests: [],
                         notifications: [note("req-1", key: "request:req-1:pending", at: 1_400)], notificationState: nil)
        #expect(try store.notificationStates()["c"] == third)
        // A new notification sent starts the count again.
        try store.record(report("run-6", startedAt: 1_500), logs: [:], page: nil, requests: [],
                         notifications: [note("run-6", key: "k2", at: 1_500)],
                         notificationState: .init(collection: "c", decidedOn: third, change: .sent(dedupeKey: "k2", at: at(1_500))))
        #expect(try store.notificationStates()["c"] == NotificationState(dedupeKey: "k2", sentAt: at(1_500), heldBack: 0, version: 4))
    }
}
