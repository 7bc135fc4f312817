import Foundation
import Reports

/// A revision the reconciler refused to apply: kept so that `status` can say so at the top
/// until a later revision is applied.
public struct StoredRejection: Codable, Sendable, Equatable {
    public let revision: String
    public let rejectedAt: Date
    public let problems: Int
    /// The reports-branch page that lists the problems.
    public let page: String
    /// The revision that kept running, if any.
    public let running: String?

    public init(revision: String, rejectedAt: Date, problems: Int, page: String, running: String?) {
        self.revision = revision
        self.rejectedAt = rejectedAt
        self.problems = problems
        self.page = page
        self.running = running
    }
}

/// Workflow requests, and revisions the reconciler refused.
public protocol WorkflowLedger: Sendable {
    /// Saves requests (new, or a new status) and queues their pages.
    func save(requests: [Publishable<ApprovalRequest>], at date: Date, notifications: [QueuedNotification]) throws
    /// Requests, oldest first; only those in `statuses` when given.
    func requests(statuses: Set<ApprovalRequest.Status>?) throws -> [ApprovalRequest]
    /// One request, or nil.
    func request(_ id: String) throws -> ApprovalRequest?
    /// Records a rejected revision (the first time it is met), with its page queued.
    func save(_ rejection: StoredRejection, page: Publication) throws
    /// The newest rejection, when it is newer than the last apply: the branch's tip is then not
    /// what runs. Nil once a later revision is applied.
    func standingRejection() throws -> StoredRejection?
}

extension WorkflowLedger {
    public func save(requests: [Publishable<ApprovalRequest>]) throws { try save(requests: requests, at: Date(), notifications: []) }
    public func save(requests: [Publishable<ApprovalRequest>], at date: Date) throws {
        try save(requests: requests, at: date, notifications: [])
    }
    public func requests() throws -> [ApprovalRequest] { try requests(statuses: nil) }
}
