import Foundation
import Manifests
import Reports

/// One `apply`, as recorded.
public struct AppliedRevision: Codable, Sendable, Equatable {
    public let revision: String
    public let appliedAt: Date
    public let created: Int
    public let updated: Int
    public let deleted: Int

    public init(revision: String, appliedAt: Date, created: Int, updated: Int, deleted: Int) {
        self.revision = revision
        self.appliedAt = appliedAt
        self.created = created
        self.updated = updated
        self.deleted = deleted
    }
}

/// One applied object, decoded: what it is, what it says, and the file that defines it.
public struct AppliedManifest: Sendable {
    public let metadata: Metadata
    public let spec: Spec
    public let file: String
    public init(metadata: Metadata, spec: Spec, file: String) {
        self.metadata = metadata
        self.spec = spec
        self.file = file
    }
}

/// What one `apply` stores, all in one transaction.
public struct RevisionUpdate: Sendable {
    /// The objects to upsert; a `full` scope replaces every stored object.
    public var desired: DesiredState
    public var deleted: [ObjectKey]
    public var revision: AppliedRevision
    /// The apply's page for the reports branch.
    public var page: Publication?
    /// New fire times for the schedules it changed.
    public var schedules: ScheduleStateUpdate?
    /// Workflow requests it ends (a changed job expires its pending requests).
    public var requests: [Publishable<ApprovalRequest>]
    /// Notifications of those requests, queued in the same transaction.
    public var notifications: [QueuedNotification] = []

    public init(desired: DesiredState, deleted: [ObjectKey], revision: AppliedRevision, page: Publication? = nil,
                schedules: ScheduleStateUpdate? = nil, requests: [Publishable<ApprovalRequest>] = []) {
        self.desired = desired
        self.deleted = deleted
        self.revision = revision
        self.page = page
        self.schedules = schedules
        self.requests = requests
    }
}

/// The applied revision and every applied object (with what each refers to).
public protocol AppliedObjects: Sendable {
    /// The last applied revision, or nil before the first apply.
    func appliedRevision() throws -> AppliedRevision?
    /// Every applied object.
    func allRecords() throws -> [ObjectKey: ObjectRecord]
    /// The applied records that a path-scoped plan compares: those for `keys`, and those defined in `files`.
    func records(for keys: some Collection<ObjectKey>, inFiles files: Set<String>) throws -> [ObjectKey: ObjectRecord]
    /// The applied records of one kind (canonical JSON, file), sorted by name.
    func records(of kind: Kind) throws -> [ObjectRecord]
    /// The applied objects of one kind, decoded, sorted by name.
    func manifests(of kind: Kind) throws -> [AppliedManifest]
    /// One applied object, decoded; nil when not applied.
    func manifest(_ key: ObjectKey) throws -> AppliedManifest?
    /// The spec hash of one applied object, or nil when it is not applied.
    func hash(of key: ObjectKey) throws -> String?
    /// The spec hash of every applied object of one kind, by name.
    func hashes(of kind: Kind) throws -> [String: String]
    /// A view for building a path-scoped desired state: one indexed question at a time.
    var catalog: any AppliedCatalog { get }
    /// Stores a plan's outcome: upserts every object of `desired`, deletes `deleted`, records the
    /// revision, queues its page, moves changed schedules and saves ended requests.
    func apply(_ update: RevisionUpdate) throws
}
