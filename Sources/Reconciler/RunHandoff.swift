import Concurrency
import Foundation
import Reports
import StateStore
import Manifests
import Sync

/// A run handed to the reconciler, as the CLI follows it (the store's `RunRequest`).
public typealias HandedRun = RunRequest

/// "Sync now" while a reconciler holds the home: `syncwright run` queues the run in the state
/// store, the reconciler runs it at once (as a manual run, with the run id chosen here), and
/// the command follows it to its end.
extension Workspace {
    /// How long an ended hand-over is kept (its run stays recorded): a week.
    static let handedRunsKept: TimeInterval = 7 * 24 * 3600

    /// Queues a run of `collection` for the reconciler that holds the home.
    public func queueRun(collection: String, requestedBy: String, preview: Bool = false, previewLines: Int = 10,
                         overrideWindow: Bool = false, at now: Date = Date()) throws -> RunRequest {
        guard try store.manifest(ObjectKey(.jobCollection, collection)) != nil else {
            let known = try collections().map(\.name)
            throw ReconcilerError.unknownCollection(collection, applied: known, orRun: false)
        }
        var request = RunRequest(id: "handoff-" + RunReport.makeID(at: now), collection: collection,
                                 runId: RunReport.makeID(at: now), requestedAt: now, requestedBy: requestedBy, preview: preview,
                                 previewLines: previewLines)
        request.overrideWindow = overrideWindow
        try store.queue(request)
        // A hand-over is followed by the command that asked, for minutes at most: those that
        // ended a week ago are forgotten, so the table does not grow with every `run`.
        try store.forgetEndedRunRequests(before: now.addingTimeInterval(-Self.handedRunsKept))
        return request
    }

    /// A queued run's state now.
    public func runRequest(_ id: String) throws -> RunRequest {
        guard let request = try store.runRequest(id) else { throw ReconcilerError.unknownRunRequest(id) }
        return request
    }

    /// Marks a queued run that no reconciler will take as failed (its reconciler stopped).
    public func abandon(_ request: RunRequest, because reason: String) throws {
        try store.update(runRequest: request.id, status: .failed, error: reason)
    }

    /// The collections of runs waiting to be handed over.
    public func queuedRunCollections() -> Set<String> {
        Set(((try? store.queuedRunRequests()) ?? []).map(\.collection))
    }

    /// A handed-over preview's outcome, once it ended.
    public func previewOutcome(of request: RunRequest) throws -> RunOutcome? {
        guard let result = request.result else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(RunOutcome.self, from: Data(result.utf8))
    }

    /// The recorded report of a handed-over run, once it ended.
    public func report(ofRun id: String) throws -> RunReport? {
        try store.runReport(id: id)
    }
}

extension ReconcileLoop {
    /// Starts every queued run whose collection is not running, oldest first (the others wait
    /// for a later pass). Each runs as a manual run under the id chosen when it was queued.
    func handedOverRuns(at now: Date, into summary: inout PassSummary) throws -> [StartedRun] {
        var runs: [StartedRun] = []
        for request in try workspace.store.queuedRunRequests() {
            let control = RunControl(clock: clock, deadline: nil, holdsStore: workspace.holdsStore.get())
            if request.preview {
                // A preview writes nothing: it need not wait for a run of its collection.
                guard try workspace.store.start(runRequest: request.id) else { continue }
                runs.append(StartedRun(collection: request.collection, scheduled: nil, request: nil, control: control) { [self] in
                    await slots.acquire()
                    defer { slots.release() }
                    let workspace = self.workspace
                    do {
                        let outcome = try await offload { try workspace.run(collection: request.collection, preview: true, previewLines: request.previewLines) }
                        let encoder = JSONEncoder()
                        encoder.dateEncodingStrategy = .secondsSince1970
                        let json = String(decoding: try encoder.encode(outcome), as: UTF8.self)
                        try workspace.store.update(runRequest: request.id, status: .finished, result: json)
                    } catch {
                        try? workspace.store.update(runRequest: request.id, status: .failed, error: "\(error)")
                    }
                    wakeForPass()
                })
                continue
            }
            guard claimSlot(for: request.collection, control: control, startedFor: "run \(request.runId)") else { continue }
            guard try workspace.store.start(runRequest: request.id) else {
                finished(request.collection)
                continue
            }
            summary.handedOver.append(request.collection)
            runs.append(StartedRun(collection: request.collection, scheduled: nil, request: nil, control: control) { [self] in
                await slots.acquire()
                defer { slots.release() }
                logger.info("run started", metadata: ["collection": "\(request.collection)", "run": "\(request.runId)",
                                                      "requestedBy": "\(request.requestedBy)"])
                let workspace = self.workspace
                let store = workspace.store
                do {
                    let reporter = ProgressRelay(request: request.id, store: store)
                    _ = try await offload {
                        try workspace.run(collection: request.collection, trigger: .manual, progress: reporter.relay,
                                          control: control, runId: request.runId, overrideWindow: request.overrideWindow)
                    }
                    try? store.update(runRequest: request.id, status: .finished)
                } catch {
                    try? store.update(runRequest: request.id, status: .failed, error: "\(error)")
                    logger.error("run could not start", metadata: ["collection": "\(request.collection)", "error": "\(error)"])
                }
                finished(request.collection)
            })
        }
        return runs
    }
}

/// Writes a handed-over run's progress into its request, at most twice a second, for the
/// command that follows it.
///
/// `@unchecked Sendable`: the engine reports progress from one thread at a time (see
/// `ProgressMeter`); `last` is only touched there.
final class ProgressRelay: @unchecked Sendable {
    let request: String
    let store: StateStore
    private var last = Date.distantPast

    init(request: String, store: StateStore) {
        self.request = request
        self.store = store
    }

    func relay(_ progress: JobProgress) {
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.5 else { return }
        last = now
        let total = progress.total.map { " of \($0)" } ?? ""
        try? store.update(runRequest: request, progress: "\(progress.job): \(progress.phase.rawValue) \(progress.done)\(total) objects")
    }
}
