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

/// One notification: queued with its run, then delivered, held back as a repeat, or given up on.
public struct QueuedNotification: Sendable, Equatable {
    public enum Status: String, Codable, Sendable, CaseIterable {
        /// Waiting to be sent (again, after a failed attempt, at `nextAttemptAt`).
        case pending
        case delivered
        /// Held back: the same notification was sent within the collection's `repeatAfter`.
        case suppressed
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
    /// The dedupe key and time of the collection's last notification queued to be sent (not held
    /// back), if any.
    func lastSent(collection: String) throws -> (dedupeKey: String, at: Date)?
    /// How many of `collection`'s notifications were held back since its last one sent.
    func suppressedSinceLastSent(collection: String) throws -> Int
    /// The notifications of a run, in the order queued.
    func notifications(ofRun runId: String) throws -> [QueuedNotification]
    /// Notifications not delivered: given up on, or pending after a failed attempt; newest first.
    func troubledNotifications(limit: Int) throws -> [QueuedNotification]
}
