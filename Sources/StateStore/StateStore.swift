import Foundation
import Manifests
import Reports

/// Everything the reconciler keeps between commands: what is applied, what ran, what waits to be
/// published, when schedules fire next, workflow requests, and runs handed over to it.
///
/// Each part is a protocol of its own, shaped by what the reconciler asks, never by SQL, so that
/// the second backend (PostgreSQL) implements the same questions. The contract every backend
/// keeps, and that `Tests/StateStoreTests` checks for each:
/// - every write is one transaction: when it throws, nothing of it is stored;
/// - a report page handed to a write is queued in the outbox in that same transaction;
/// - a stored value that is not understood (a status a newer version wrote, or damage) is an
///   error naming the row, never read as something else.
public protocol StateStore: AppliedObjects, RunLedger, ReportOutbox, NotificationOutbox, ScheduleLedger, WorkflowLedger, RunQueue, Sendable {
    /// Where the store lives, for messages (a file path, or a connection without its password).
    var location: String { get }
    /// Lets the backend tidy up while the reconciler is idle (SQLite: a passive checkpoint of
    /// its write-ahead log, so that it does not land inside a later commit). Never fails.
    func tidy()
    /// How much waits: reports, notifications, requests (each an indexed count).
    func backlog() throws -> Backlog
}

/// A value to store together with the report page (if any) to queue for it, in one transaction.
public struct Publishable<Value: Sendable>: Sendable {
    public let value: Value
    public let page: Publication?
    public init(_ value: Value, page: Publication?) {
        self.value = value
        self.page = page
    }
}
