import Foundation
import Reports

/// One report waiting in the outbox to be published.
public struct OutboxItem: Sendable, Equatable {
    /// What a report is about.
    public enum Kind: String, Codable, Sendable {
        /// A run; the subject is its id.
        case run
        /// An apply; the subject is the applied revision.
        case apply
        /// A workflow request's page; the subject is its id.
        case request
        /// A revision the reconciler refused; the subject is the revision.
        case rejected
    }
    public let id: Int64
    public let kind: Kind
    public let subject: String
    public let createdAt: Date
    /// The page as stored. Read with `page()`: one that cannot be read is skipped, never lost.
    public let publication: String
    public let attempts: Int
    public let lastError: String?

    public init(id: Int64, kind: Kind, subject: String, createdAt: Date, publication: String, attempts: Int, lastError: String?) {
        self.id = id
        self.kind = kind
        self.subject = subject
        self.createdAt = createdAt
        self.publication = publication
        self.attempts = attempts
        self.lastError = lastError
    }

    /// The page to publish.
    public func page() throws -> Publication { try Publication.decode(publication) }
}

/// Reports queued for the reports branch until they are published.
public protocol ReportOutbox: Sendable {
    /// Reports not yet published, oldest first.
    func unpublished(limit: Int) throws -> [OutboxItem]
    /// Marks outbox items as published in `commits` (by item id), dropping their stored pages.
    func markPublished(_ commits: [Int64: String], at date: Date) throws
    /// Records a failed attempt to publish `ids`.
    func markAttempt(_ ids: [Int64], error: String) throws
    /// The reports-branch commit that holds `subject` (a run id or revision), once published.
    func publishedCommit(of subject: String) throws -> String?
    /// Whether the outbox already holds a report of `kind` about `subject`.
    func hasReport(kind: OutboxItem.Kind, subject: String) throws -> Bool
    /// Queues a report that belongs to no run or apply (a rejected revision).
    func enqueue(_ page: Publication, kind: OutboxItem.Kind, subject: String, at date: Date) throws
}

extension ReportOutbox {
    public func unpublished() throws -> [OutboxItem] { try unpublished(limit: 1_000) }
}

extension ReportOutbox {
    public func markPublished(_ commits: [Int64: String]) throws { try markPublished(commits, at: Date()) }
}
