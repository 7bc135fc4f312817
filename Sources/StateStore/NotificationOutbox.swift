import Foundation

/// What one notification says, as rendered when its run was recorded (secrets already masked).
public struct NotificationMessage: Codable, Sendable, Equatable {
    public var subject: String
    public var text: String
    public var html: String
    /// A webhook's body (JSON), in the channel's format; nil for mail.
    public var payload: String?
    /// Stable per run and recipient (mail's Message-ID) or channel (a webhook's Idempotency-Key):
    /// a message sent twice after a crash carries the same one, so the receiver can drop it.
    public var key: String

    public init(subject: String, text: String, html: String, payload: String?, key: String) {
        self.subject = subject
        self.text = text
        self.html = html
        self.payload = payload
        self.key = key
    }
}

/// Where a collection's notifications stand: the last one sent, and how many runs were held
/// back as its repeats since. Changed only with the run that changes it, in its transaction.
public struct NotificationState: Sendable, Equatable {
    /// The dedupe key of the last notification sent.
    public var dedupeKey: String
    public var sentAt: Date
    /// Runs held back as repeats since.
    public var heldBack: Int
    /// Counts every change: a decision made on an older version is refused.
    public var version: Int64

    public init(dedupeKey: String, sentAt: Date, heldBack: Int, version: Int64) {
        self.dedupeKey = dedupeKey
        self.sentAt = sentAt
        self.heldBack = heldBack
        self.version = version
    }
}

/// What recording a run does to its collection's `NotificationState`.
public struct NotificationStateChange: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        /// The run's notification repeats the last one sent: held back, and counted.
        case heldBack
        /// The run's notifications were queued to be sent, under this dedupe key.
        case sent(dedupeKey: String, at: Date)
    }
    public var collection: String
    /// The state the run decided on (nil: none yet). When the stored state is no longer this one
    /// (another process recorded a run of the collection meanwhile), nothing is recorded and
    /// `record` throws `StateError.notificationStateMoved` with the state as it is.
    public var decidedOn: NotificationState?
    public var change: Change

    public init(collection: String, decidedOn: NotificationState?, change: Change) {
        self.collection = collection
        self.decidedOn = decidedOn
        self.change = change
    }

    /// The state after the change.
    public var result: NotificationState {
        switch change {
        case .heldBack:
            var state = decidedOn ?? NotificationState(dedupeKey: "", sentAt: .distantPast, heldBack: 0, version: 0)
            state.heldBack += 1
            state.version += 1
            return state
        case .sent(let key, let at):
            return NotificationState(dedupeKey: key, sentAt: at, heldBack: 0, version: (decidedOn?.version ?? 0) + 1)
        }
    }
}

/// One notification: queued with its run, then delivered or given up on.
public struct QueuedNotification: Sendable, Equatable {
    public enum Status: String, Codable, Sendable, CaseIterable {
        /// Waiting to be sent (again, after a failed attempt, at `nextAttemptAt`).
        case pending
        case delivered
        /// Given up on: older than the delivery limit, or refused for good (`lastError` says why).
        case undelivered
    }
    public var id: Int64?
    public var runId: String
    public var collection: String
    /// The NotificationChannel's name.
    public var channel: String
    /// For mail, the one address this copy goes to.
    public var recipient: String?
    /// From stable fields only (collection, triggers, status, failing jobs): equal keys are repeats.
    public var dedupeKey: String
    public var status: Status
    public var message: NotificationMessage
    public var createdAt: Date
    public var nextAttemptAt: Date?
    public var attempts: Int
    public var lastError: String?
    public var finishedAt: Date?

    public init(id: Int64? = nil, runId: String, collection: String, channel: String, recipient: String?, dedupeKey: String,
                status: Status, message: NotificationMessage, createdAt: Date, nextAttemptAt: Date?, attempts: Int = 0,
                lastError: String? = nil, finishedAt: Date? = nil) {
        self.id = id
        self.runId = runId
        self.collection = collection
        self.channel = channel
        self.recipient = recipient
        self.dedupeKey = dedupeKey
        self.status = status
        self.message = message
        self.createdAt = createdAt
        self.nextAttemptAt = nextAttemptAt
        self.attempts = attempts
        self.lastError = lastError
        self.finishedAt = finishedAt
    }

    /// "mail to ops@corp.example through corp-mail", "webhook teams-directory".
    public var destination: String {
        recipient.map { "mail to \($0) through \(channel)" } ?? "webhook \(channel)"
    }
}

/// Notifications queued with their runs (in the run's transaction) until they are delivered.
public protocol NotificationOutbox: Sendable {
    /// Pending notifications whose next attempt is due at `date`, oldest first.
    func dueNotifications(at date: Date, limit: Int) throws -> [QueuedNotification]
    /// Records a delivery.
    func markDelivered(_ id: Int64, at date: Date) throws
    /// Records a failed attempt: tried again at `next`, or (nil) given up on as undelivered.
    func markFailed(_ id: Int64, error: String, next: Date?, at date: Date) throws
    /// Every collection's notification state (those that never sent one have none), in one read.
    func notificationStates() throws -> [String: NotificationState]
    /// The notifications of a run, in the order queued.
    func notifications(ofRun runId: String) throws -> [QueuedNotification]
    /// Notifications not delivered: given up on, or pending after a failed attempt; newest first.
    func troubledNotifications(limit: Int) throws -> [QueuedNotification]
}
