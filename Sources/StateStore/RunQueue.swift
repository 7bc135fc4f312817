import Foundation

/// A run asked for by `syncwright run` while a reconciler holds the home: handed over through
/// the store, run by the reconciler at once, and followed by the command that asked.
public struct RunRequest: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        /// Waiting for the reconciler (or for a run of the same collection to end).
        case queued
        /// The reconciler is running it.
        case started
        /// It ended: the run is recorded under `runId`.
        case finished
        /// It could not start; `error` says why.
        case failed
    }
    public let id: String
    public let collection: String
    /// The run's id, chosen when asked, so that `--no-wait` can print it.
    public let runId: String
    public let requestedAt: Date
    public let requestedBy: String
    /// A dry run: nothing is written and no run is recorded; `result` holds what it found.
    public let preview: Bool
    /// For a preview: how many changes it shows per job.
    public let previewLines: Int
    /// Run even when a sync window is closed (`run --override-window`); the report records it.
    public var overrideWindow = false
    public var status: Status
    /// The latest progress line, while it runs.
    public var progress: String?
    public var error: String?
    /// A preview's outcome (the reconciler's JSON), once it ended.
    public var result: String?

    public init(id: String, collection: String, runId: String, requestedAt: Date, requestedBy: String, preview: Bool = false,
                previewLines: Int = 10, status: Status = .queued, progress: String? = nil, error: String? = nil, result: String? = nil) {
        self.id = id
        self.collection = collection
        self.runId = runId
        self.requestedAt = requestedAt
        self.requestedBy = requestedBy
        self.preview = preview
        self.previewLines = previewLines
        self.status = status
        self.progress = progress
        self.error = error
        self.result = result
    }
}

/// Runs handed to the reconciler by other commands.
public protocol RunQueue: Sendable {
    /// Queues a run for the reconciler.
    func queue(_ request: RunRequest) throws
    /// One request, or nil.
    func runRequest(_ id: String) throws -> RunRequest?
    /// The requests in `status`, oldest first.
    func runRequests(status: RunRequest.Status) throws -> [RunRequest]
    /// Takes a queued request for running: true when this caller took it (it was still queued).
    func start(runRequest id: String) throws -> Bool
    /// Records a request's progress line, its result, or its end.
    func update(runRequest id: String, status: RunRequest.Status?, progress: String?, error: String?, result: String?) throws
    /// Forgets the requests that ended (finished or failed) and were asked for before `date`;
    /// returns how many. Their runs stay recorded; only the hand-over is forgotten.
    @discardableResult
    func forgetEndedRunRequests(before date: Date) throws -> Int
}

extension RunQueue {
    /// The queued requests, oldest first.
    public func queuedRunRequests() throws -> [RunRequest] { try runRequests(status: .queued) }

    public func update(runRequest id: String, status: RunRequest.Status? = nil, progress: String? = nil,
                       error: String? = nil, result: String? = nil) throws {
        try update(runRequest: id, status: status, progress: progress, error: error, result: result)
    }
}
