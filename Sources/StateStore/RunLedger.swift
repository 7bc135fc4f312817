import Foundation
import Reports

/// A run that has started and not yet been recorded: written before the run's first write, so
/// that a run killed mid-write (or whose disk filled up) is never unaccounted for.
public struct RunInProgress: Codable, Sendable, Equatable {
    public let id: String
    public let collection: String
    public let trigger: RunTrigger
    public let revision: String
    public let startedAt: Date
    public let pid: Int
    /// The job at work when the run was last heard of, if any.
    public var job: String?
    /// The jobs that had ended by then.
    public var finishedJobs: [RunReport.Job]

    public init(id: String, collection: String, trigger: RunTrigger, revision: String, startedAt: Date, pid: Int,
                job: String? = nil, finishedJobs: [RunReport.Job] = []) {
        self.id = id
        self.collection = collection
        self.trigger = trigger
        self.revision = revision
        self.startedAt = startedAt
        self.pid = pid
        self.job = job
        self.finishedJobs = finishedJobs
    }
}

/// How often a collection has run, and how it last went.
public struct RunCounters: Sendable, Equatable {
    public let timesRun: Int
    public let lastRun: Date?
    public let lastOutcome: RunStatus?
    public init(timesRun: Int, lastRun: Date?, lastOutcome: RunStatus?) {
        self.timesRun = timesRun
        self.lastRun = lastRun
        self.lastOutcome = lastOutcome
    }
}

extension RunLedger {
    /// `record` of a run that notifies no one.
    public func record(_ run: RunReport, logs: [String: String], page: Publication?, requests: [Publishable<ApprovalRequest>]) throws {
        try record(run, logs: logs, page: page, requests: requests, notifications: [], notificationState: nil)
    }
}

/// Runs: those under way, and those finished with their report and each job's log.
public protocol RunLedger: Sendable {
    /// Records that a run has started, before it writes anything.
    func begin(_ run: RunInProgress) throws
    /// Notes which job a run is at, and the jobs it has finished, before that job writes.
    func progress(run id: String, job: String?, finishedJobs: [RunReport.Job]) throws
    /// Runs that started and were never recorded, oldest first.
    func runsInProgress() throws -> [RunInProgress]
    /// Forgets a run in progress that recorded nothing (a run that failed before its first write).
    func forgetRunInProgress(_ id: String) throws
    /// Records a finished run (ending it as in progress), its jobs' logs (by job name), its page,
    /// the requests it raised or carried out and its notifications, in one transaction: a crash
    /// after this loses no report and no notification.
    /// `notificationState` changes the collection's notification state, when the run decided
    /// on the one stored; else nothing is recorded (see `NotificationStateChange`).
    func record(_ run: RunReport, logs: [String: String], page: Publication?, requests: [Publishable<ApprovalRequest>],
                notifications: [QueuedNotification], notificationState: NotificationStateChange?) throws
    /// Run reports, newest first, optionally of one collection.
    func runReports(collection: String?, limit: Int) throws -> [RunReport]
    /// One run's report, or nil. A run id may be given by a unique prefix.
    func runReport(id: String) throws -> RunReport?
    /// Whether a run, recorded or in progress, has exactly this id.
    func runIDTaken(_ id: String) throws -> Bool
    /// The stored log of one job in one run.
    func jobLog(run: String, job: String) throws -> String?
    /// Times run, last run and last outcome of every collection that has run.
    func collectionCounters() throws -> [String: RunCounters]
}

extension RunLedger {
    public func runReports(collection: String? = nil, limit: Int = 50) throws -> [RunReport] {
        try runReports(collection: collection, limit: limit)
    }
}
