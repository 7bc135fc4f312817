import Concurrency
import Foundation
import Prometheus
import Reconciler
import Reports

/// The reconciler's metrics (in swift-prometheus's registry) and its health, fed by the loop as
/// an observer. Counters and histograms count what this process did since it started, as
/// Prometheus expects; the gauges of what waits are read from the store at each scrape.
public final class DaemonMetrics: LoopObserver {
    let registry = PrometheusCollectorRegistry()
    let workspace: Workspace
    /// How often the loop fetches: health and readiness are judged in these intervals.
    let interval: TimeInterval
    /// Readiness needs a successful fetch and apply within this many intervals.
    public static let readyIntervals = 3.0

    private let passes: Counter
    private let fetchesOK: Counter
    private let fetchesFailed: Counter
    private let runDuration: ValueHistogram
    private let jobDuration: ValueHistogram
    private let fireLag: ValueHistogram
    private let lastFetch: Gauge
    private let lastPass: Gauge
    private let lastApply: Gauge
    private let reportsWaiting: Gauge
    private let notificationsWaiting: Gauge
    private let requestsPending: Gauge
    private let requestsApproved: Gauge
    private let holdsStore: Gauge
    private let written: [String: Counter]

    /// What the loop last did, for /healthz and /readyz.
    struct Health {
        var started = Date()
        var passRunningSince: Date?
        var lastPassEnded: Date?
        var lastFetch: (at: Date, problem: String?)?
        var lastGoodFetch: Date?
        var lastApply: (at: Date, problem: String?)?
        var lastGoodApply: Date?
        var revision: (sha: String, gauge: Gauge)?
        /// The leader, while this replica follows it.
        var following: String?
    }
    private let health = Locked(Health())

    static let durationBuckets: [Double] = [0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600]
    static let lagBuckets: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60, 300]

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "syncwright", metricName: metric, unitName: unit, helpText: help)
    }

    public init(workspace: Workspace, interval: TimeInterval) {
        self.workspace = workspace
        self.interval = interval
        let fetches = Self.name("fetches", "total", "Fetches of the config remote, by result.")
        passes = registry.makeCounter(descriptor: Self.name("passes", "total", "Passes of the reconcile loop."))
        fetchesOK = registry.makeCounter(descriptor: fetches, labels: [("result", "ok")])
        fetchesFailed = registry.makeCounter(descriptor: fetches, labels: [("result", "failed")])
        runDuration = registry.makeValueHistogram(
            descriptor: Self.name("run_duration", "seconds", "How long runs took, from start to end."), buckets: Self.durationBuckets)
        jobDuration = registry.makeValueHistogram(
            descriptor: Self.name("job_duration", "seconds", "How long jobs took."), buckets: Self.durationBuckets)
        fireLag = registry.makeValueHistogram(
            descriptor: Self.name("fire_lag", "seconds", "How late scheduled runs started: their start minus their fire time."),
            buckets: Self.lagBuckets)
        lastPass = registry.makeGauge(descriptor: Self.name(
            "last_pass_timestamp", "seconds", "When the reconcile loop last began a pass (Unix time)."))
        lastFetch = registry.makeGauge(descriptor: Self.name(
            "last_successful_fetch_timestamp", "seconds", "When the config remote was last fetched successfully (Unix time)."))
        lastApply = registry.makeGauge(descriptor: Self.name(
            "last_successful_apply_timestamp", "seconds", "When the fetched branch was last applied successfully (Unix time)."))
        reportsWaiting = registry.makeGauge(descriptor: Self.name("reports_waiting", "", "Report pages waiting to be published."))
        notificationsWaiting = registry.makeGauge(descriptor: Self.name(
            "notifications_waiting", "", "Notifications waiting for their (next) delivery attempt."))
        let requests = Self.name("workflow_requests", "", "Workflow requests waiting: for a decision (pending), or to run (approved).")
        requestsPending = registry.makeGauge(descriptor: requests, labels: [("status", "pending")])
        requestsApproved = registry.makeGauge(descriptor: requests, labels: [("status", "approved")])
        holdsStore = registry.makeGauge(descriptor: Self.name(
            "store_held", "", "1 while this process holds its state store's lead (applies, publishes, notifies); 0 while it follows another replica."))
        let objects = Self.name("objects_written", "total", "Objects written to destinations, by action.")
        var written: [String: Counter] = [:]
        for action in ["created", "updated", "deleted"] {
            written[action] = registry.makeCounter(descriptor: objects, labels: [("action", action)])
        }
        self.written = written
    }

    // MARK: LoopObserver

    public func passStarted(at date: Date) {
        lastPass.set(to: date.timeIntervalSince1970)
        health.update { $0.passRunningSince = date }
    }

    public func passEnded(at date: Date) {
        passes.increment()
        health.update {
            $0.passRunningSince = nil
            $0.lastPassEnded = date
        }
    }

    public func fetched(at date: Date, problem: String?) {
        (problem == nil ? fetchesOK : fetchesFailed).increment()
        if problem == nil { lastFetch.set(to: date.timeIntervalSince1970) }
        health.update {
            $0.lastFetch = (date, problem)
            if problem == nil { $0.lastGoodFetch = date }
        }
    }

    public func applied(at date: Date, problem: String?) {
        if problem == nil { lastApply.set(to: date.timeIntervalSince1970) }
        health.update {
            $0.lastApply = (date, problem)
            if problem == nil { $0.lastGoodApply = date }
        }
    }

    public func scheduledRunStarted(collection: String, scheduledFor: Date, at date: Date) {
        fireLag.record(max(0, date.timeIntervalSince(scheduledFor)))
    }

    public func runRecorded(_ report: RunReport) {
        registry.makeCounter(descriptor: Self.name("runs", "total", "Runs recorded, by collection and status."),
                             labels: [("collection", report.collection), ("status", report.status.rawValue)]).increment()
        runDuration.record(max(0, report.finishedAt.timeIntervalSince(report.startedAt)))
        var created = 0, updated = 0, deleted = 0
        for job in report.jobs {
            jobDuration.record(Double(job.durationMs) / 1000)
            created += job.stats.created
            updated += job.stats.updated
            deleted += job.stats.deleted
        }
        written["created"]?.increment(by: Int64(created))
        written["updated"]?.increment(by: Int64(updated))
        written["deleted"]?.increment(by: Int64(deleted))
    }

    // MARK: Replicas

    /// This replica follows `leader` (it runs scheduled fires, and the leader does the rest);
    /// nil while it leads.
    public func following(_ leader: String?) {
        holdsStore.set(to: leader == nil ? 1 : 0)
        health.update { $0.following = leader }
    }

    // MARK: Webhook

    /// Counts a webhook request by what became of it: accepted, ignored, unauthorized, badRequest.
    func webhook(_ result: String) {
        registry.makeCounter(descriptor: Self.name("webhook_requests", "total", "Push webhook requests, by what became of them."),
                             labels: [("result", result)]).increment()
    }

    // MARK: Endpoints

    /// The metrics in Prometheus's text format, the store's gauges read now.
    public func scrape() -> [UInt8] {
        if let backlog = try? workspace.backlog() {
            reportsWaiting.set(to: Double(backlog.reports))
            notificationsWaiting.set(to: Double(backlog.notifications))
            requestsPending.set(to: Double(backlog.pendingRequests))
            requestsApproved.set(to: Double(backlog.approvedRequests))
        }
        if let applied = try? workspace.appliedRevision() {
            health.update { state in
                guard state.revision?.sha != applied.revision else { return }
                if let old = state.revision?.gauge { registry.unregisterGauge(old) }
                let gauge = registry.makeGauge(descriptor: Self.name("applied_revision", "info", "The applied manifest revision."),
                                               labels: [("revision", applied.revision)])
                gauge.set(to: 1.0)
                state.revision = (applied.revision, gauge)
            }
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(4096)
        registry.emit(into: &buffer)
        return buffer
    }

    /// A verdict of /healthz or /readyz: whether all is well, and the JSON body that says why.
    public struct Verdict: Sendable {
        public let ok: Bool
        public let body: [String: String]
    }

    /// Alive while the loop turns: a pass ended, or is under way, within 3 intervals and a minute
    /// (the loop passes at least once an interval).
    public func liveness(at now: Date = Date()) -> Verdict {
        let state = health.get()
        let limit = 3 * interval + 60
        let last = [state.passRunningSince, state.lastPassEnded, state.started].compactMap { $0 }.max() ?? state.started
        let age = now.timeIntervalSince(last)
        var body = ["interval": "\(Int(interval))s"]
        if let ended = state.lastPassEnded { body["lastPassEnded"] = RunReport.timestamp(ended) }
        if age <= limit {
            body["status"] = "ok"
            body["reason"] = state.passRunningSince != nil ? "a pass is under way" : "the loop turns"
            return Verdict(ok: true, body: body)
        }
        body["status"] = "stalled"
        body["reason"] = "no pass has begun or ended for \(Int(age))s (the loop passes at least every \(Int(interval))s)"
        return Verdict(ok: false, body: body)
    }

    /// Ready when the last fetch and the apply after it succeeded, within `readyIntervals` intervals.
    public func readiness(at now: Date = Date()) -> Verdict {
        let state = health.get()
        let limit = Self.readyIntervals * interval
        var body: [String: String] = ["interval": "\(Int(interval))s"]
        if let good = state.lastGoodFetch { body["lastSuccessfulFetch"] = RunReport.timestamp(good) }
        if let good = state.lastGoodApply { body["lastSuccessfulApply"] = RunReport.timestamp(good) }
        func notReady(_ reason: String) -> Verdict {
            body["status"] = "not ready"
            body["reason"] = reason
            return Verdict(ok: false, body: body)
        }
        guard let fetch = state.lastFetch else { return notReady("no fetch has ended yet") }
        if let problem = fetch.problem { return notReady("the last fetch failed: \(problem)") }
        guard let goodFetch = state.lastGoodFetch, now.timeIntervalSince(goodFetch) <= limit else {
            return notReady("no fetch succeeded in the last \(Int(limit))s")
        }
        if let leader = state.following {
            body["status"] = "ready"
            body["reason"] = "the last fetch succeeded; this replica runs scheduled fires, and \(leader) leads (applies)"
            return Verdict(ok: true, body: body)
        }
        guard let apply = state.lastApply else { return notReady("the fetched branch is not applied yet") }
        if let problem = apply.problem { return notReady("the last apply failed: \(problem)") }
        body["status"] = "ready"
        body["reason"] = "the last fetch and apply succeeded"
        return Verdict(ok: true, body: body)
    }
}
