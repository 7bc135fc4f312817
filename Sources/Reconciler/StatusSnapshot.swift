import Foundation
import Manifests
import Reports
import StateStore

/// What `syncwright status` shows: the stored state at one moment. Its JSON form is the
/// `status --format json` document (docs/running.md); an absent value there is `null`, never
/// a missing key, so that scripts can rely on every key.
public struct StatusSnapshot: Encodable, Sendable {
    public struct Job: Encodable, Sendable {
        public let job: String
        public let onFailure: String
    }
    public struct Collection: Encodable, Sendable {
        public let name: String
        public let description: String?
        public let file: String
        public let template: String?
        public let jobs: [Job]
        /// The earliest next fire time over the schedules that target it; null: never.
        @ExplicitNull public var nextRun: Date?
        /// Null until the first run.
        @ExplicitNull public var lastRun: Date?
        @ExplicitNull public var lastOutcome: RunStatus?
        public let timesRun: Int
    }
    public struct Schedule: Encodable, Sendable {
        public let name: String
        public let target: String
        @ExplicitNull public var nextRun: Date?
        @ExplicitNull public var lastFire: Date?
        @ExplicitNull public var lastOutcome: String?
        @ExplicitNull public var lastNote: String?
    }
    /// A revision newer than the applied one that was refused: what the branch says is not what runs.
    public struct Rejected: Encodable, Sendable {
        public let revision: String
        public let rejectedAt: Date
        public let problems: Int
        /// Its page on the reports branch.
        public let page: String
        /// The revision that keeps running, if any.
        public let running: String?
    }
    @ExplicitNull public var appliedRevision: String?
    @ExplicitNull public var appliedAt: Date?
    public let collections: [Collection]
    public let schedules: [Schedule]
    /// Workflow requests still open: pending, or approved and waiting for the next reconcile pass.
    public let requests: [ApprovalRequest]
    /// Reports not yet on the reports branch, and why the last attempt failed.
    public let unpublishedReports: Int
    @ExplicitNull public var lastPublishError: String?
    @ExplicitNull public var rejected: Rejected?
    /// Notifications not delivered: given up on, or waiting to be tried again; newest first.
    public var notifications: [Notification] = []
    /// On a shared store (PostgreSQL): the replicas heard of within the last hour, the holder
    /// first; null on a store of the home's own.
    @ExplicitNull public var replicas: [Replica]? = nil

    public struct Replica: Encodable, Sendable {
        public let id: String
        public let host: String
        public let pid: Int
        /// `reconcile`, `run` or `apply`.
        public let command: String
        public let startedAt: Date
        public let lastHeartbeat: Date
        /// Whether it holds the store's lead (applies, publishes, notifies); every replica runs
        /// scheduled fires.
        public let holdsStore: Bool
        /// Whether its lease still runs, by the store's clock.
        public let alive: Bool
        /// The runs it has under way.
        public let runsHeld: Int
    }

    public struct Notification: Encodable, Sendable {
        public let runId: String
        public let collection: String
        /// `mail to … through …` or `webhook …`.
        public let to: String
        /// `undelivered` (given up on) or `pending` (tried again at `nextAttempt`).
        public let status: String
        public let attempts: Int
        @ExplicitNull public var lastError: String?
        @ExplicitNull public var nextAttempt: Date?
    }
}

/// An optional that a JSON document writes as `null` when absent, instead of leaving its key out.
@propertyWrapper
public struct ExplicitNull<Value: Encodable & Sendable>: Encodable, Sendable {
    public var wrappedValue: Value?
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension Workspace {
    /// The stored state, as `status` shows it. Reads only; it does not fetch.
    public func status() throws -> StatusSnapshot {
        let applied = try store.appliedRevision()
        let counters = try store.collectionCounters()
        let queued = try store.unpublished(limit: 100_000)
        let nextRuns = try store.nextRuns()
        let collections = try collections().map { c in
            StatusSnapshot.Collection(
                name: c.name, description: c.description, file: c.file, template: c.template,
                jobs: c.jobs.map { .init(job: $0.job, onFailure: $0.onFailure.rawValue) },
                nextRun: nextRuns[c.name], lastRun: counters[c.name]?.lastRun, lastOutcome: counters[c.name]?.lastOutcome,
                timesRun: counters[c.name]?.timesRun ?? 0)
        }
        let schedules = try store.scheduleStates().map {
            StatusSnapshot.Schedule(name: $0.schedule, target: $0.target, nextRun: $0.nextFire, lastFire: $0.lastFire,
                                    lastOutcome: $0.lastOutcome?.rawValue, lastNote: $0.lastNote)
        }
        let rejected = try store.standingRejection().map {
            StatusSnapshot.Rejected(revision: $0.revision, rejectedAt: $0.rejectedAt, problems: $0.problems, page: $0.page,
                                    running: $0.running)
        }
        var snapshot = StatusSnapshot(
            appliedRevision: applied?.revision, appliedAt: applied?.appliedAt, collections: collections, schedules: schedules,
            requests: try requests(statuses: [.pending, .approved]), unpublishedReports: queued.count,
            lastPublishError: queued.compactMap(\.lastError).last, rejected: rejected)
        snapshot.notifications = try store.troubledNotifications(limit: 20).map {
            StatusSnapshot.Notification(runId: $0.runId, collection: $0.collection, to: $0.destination, status: $0.status.rawValue,
                                        attempts: $0.attempts, lastError: $0.lastError,
                                        nextAttempt: $0.status == .pending ? $0.nextAttemptAt : nil)
        }
        snapshot.replicas = try replicas()?.map {
            StatusSnapshot.Replica(id: $0.identity.id, host: $0.identity.host, pid: $0.identity.pid, command: $0.identity.command,
                                   startedAt: $0.startedAt, lastHeartbeat: $0.heartbeatAt, holdsStore: $0.holdsStore,
                                   alive: $0.alive, runsHeld: $0.runsHeld)
        }
        return snapshot
    }
}
