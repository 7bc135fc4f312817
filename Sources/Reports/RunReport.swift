import Foundation

/// How a run ended. See docs/report-json.md.
public enum RunStatus: String, Codable, Sendable {
    /// Every job that ran succeeded.
    case succeeded
    /// The only job failed, every job failed, or nothing could start.
    case failed
    /// Some jobs failed with `onFailure: continue`; the others succeeded.
    case partial
    /// A job failed with `onFailure: abort`, and the jobs after it did not run.
    case aborted
    /// A job waits for an approval (workflows).
    case awaitingApproval
    /// The process ended before the run finished (killed, or the machine stopped), and a later
    /// command found it unfinished. What its jobs wrote up to then stays written.
    case interrupted
}

extension RunStatus {
    /// The run's status from its jobs' (a pure rule, table-tested):
    /// - `aborted` when a failed job's `onFailure: abort` stopped the run (whether or not jobs
    ///   were left to skip);
    /// - `succeeded` when no job that ran failed or had failed objects (`awaitingApproval` when
    ///   some job waits for an approval);
    /// - `failed` when every job that ran failed as a whole;
    /// - `partial` otherwise: some jobs or objects failed, the rest was written;
    /// - whatever the jobs say, a run stopped by its schedule's timeout is `failed`, and one
    ///   stopped by a shutdown `aborted`.
    public static func of(_ jobs: [JobStatus], aborted: Bool, stopped: StopReason? = nil) -> RunStatus {
        switch stopped {
        case .timeout, .replicaLost: return .failed
        case .shutdown: return .aborted
        case nil: break
        }
        let ran = jobs.filter { $0 != .notRun && $0 != .awaitingApproval }
        let failed = ran.filter { $0 == .failed }.count
        if aborted && failed > 0 { return .aborted }
        if failed == 0 && !ran.contains(.completedWithErrors) {
            return jobs.contains(.awaitingApproval) ? .awaitingApproval : .succeeded
        }
        return failed == ran.count ? .failed : .partial
    }
}

/// How one job of a run ended.
public enum JobStatus: String, Codable, Sendable {
    case succeeded, failed
    /// It ran to its end and wrote what it could, but some objects failed (see `failures`).
    case completedWithErrors
    /// Not run: an earlier job aborted the run, or the run was stopped.
    case notRun
    /// Not run: the job is under a workflow, and a request for it waits for a decision.
    case awaitingApproval
}

/// Why a run stopped early.
public enum StopReason: String, Codable, Sendable {
    /// It passed its schedule's `timeout`.
    case timeout
    /// The reconciler was told to stop (SIGTERM or SIGINT).
    case shutdown
    /// The replica that ran it let its lease on the shared state store run out (killed,
    /// paused, or cut off), and another replica recorded it.
    case replicaLost
}

/// What started a run.
public enum RunTrigger: String, Codable, Sendable { case manual, schedule, approval }

/// The run ids this process has made, so that none is made twice. Only the latest second's are
/// kept once there are many: an id of an earlier second cannot be made again by `makeID` now.
final class IssuedIDs: @unchecked Sendable {
    static let shared = IssuedIDs()
    private let lock = NSLock()
    private var ids: Set<String> = []

    func claim(_ id: String, prefix: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if ids.count > 20_000 { ids = ids.filter { $0.hasPrefix(prefix) } }
        return ids.insert(id).inserted
    }
}

/// One run of a collection: the document `history --format json` lists and reports publish.
public struct RunReport: Codable, Sendable, Equatable {
    public struct Statistics: Codable, Sendable, Equatable {
        public var read, created, updated, deleted, unchanged, skipped, failed: Int
        /// Reference values that named no object and were left out (reports stored before this
        /// count existed read as 0).
        public var unresolved: Int
        public init(read: Int = 0, created: Int = 0, updated: Int = 0, deleted: Int = 0, unchanged: Int = 0,
                    skipped: Int = 0, failed: Int = 0, unresolved: Int = 0) {
            (self.read, self.created, self.updated, self.deleted, self.unchanged, self.skipped, self.failed) =
                (read, created, updated, deleted, unchanged, skipped, failed)
            self.unresolved = unresolved
        }

        enum CodingKeys: String, CodingKey { case read, created, updated, deleted, unchanged, skipped, failed, unresolved }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(read: try c.decode(Int.self, forKey: .read), created: try c.decode(Int.self, forKey: .created),
                      updated: try c.decode(Int.self, forKey: .updated), deleted: try c.decode(Int.self, forKey: .deleted),
                      unchanged: try c.decode(Int.self, forKey: .unchanged), skipped: try c.decode(Int.self, forKey: .skipped),
                      failed: try c.decode(Int.self, forKey: .failed),
                      unresolved: try c.decodeIfPresent(Int.self, forKey: .unresolved) ?? 0)
        }
    }
    public struct Job: Codable, Sendable, Equatable {
        public var name: String
        public var status: JobStatus
        public var stats: Statistics
        public var durationMs: Int
        public var error: String?
        /// For `awaitingApproval`: the request raised for this job.
        public var request: String?
        /// The first failed objects (at most `RunReport.failuresKept`), in the order met; the
        /// count of all is `stats.failed`. Absent when none failed.
        public var failures: [Failure]?
        public init(name: String, status: JobStatus, stats: Statistics, durationMs: Int, error: String? = nil,
                    request: String? = nil) {
            self.name = name
            self.status = status
            self.stats = stats
            self.durationMs = durationMs
            self.error = error
            self.request = request
        }
    }
    /// One object that failed: its DN (or CSV row), and the reason (the server's, when it refused).
    public struct Failure: Codable, Sendable, Equatable {
        public var object: String
        public var reason: String
        public init(object: String, reason: String) {
            self.object = object
            self.reason = reason
        }
    }

    /// How many failures a job's report keeps.
    public static let failuresKept = 10

    public var runId: String
    public var collection: String
    public var trigger: RunTrigger
    /// Full sha of the applied manifest revision the run used.
    public var revision: String
    public var status: RunStatus
    public var startedAt: Date
    public var finishedAt: Date
    public var jobs: [Job]
    /// Problems that did not fail the run but must not go unnoticed (an ldap connection that
    /// skips TLS verification). Absent when there are none.
    public var warnings: [String]?
    /// Why a run was stopped before its end: `timeout` (status failed) or `shutdown` (status aborted).
    public var reason: StopReason?
    /// For a scheduled run: the schedule, and the fire time it ran for.
    public var schedule: String?
    public var scheduledFor: Date?
    /// What the reader should know about how the run came about, such as
    /// "missed run of 2026-11-25T02:30:00Z, caught up at 2026-11-25T06:00:00Z".
    public var notes: [String]?
    /// For a run with trigger `approval`: the request it carries out.
    public var request: String?
    /// For a manual run given `--override-window` while a sync window was closed: which window.
    public var windowOverride: String?
    /// Whom the run notified, or why no one (absent when its collection has no notifications).
    public var notifications: Notified?

    /// What a run's notifications came to when it was recorded; their delivery follows.
    public struct Notified: Codable, Sendable, Equatable {
        /// The triggers that held (`jobFails`, `recovered`, …); empty when none did.
        public var triggers: [String]
        /// Queued to be sent: `mail to ops@corp.example through corp-mail`, `webhook teams`.
        public var queued: [String]
        /// Why nothing was queued, or why some were held back.
        public var reason: String?
        public init(triggers: [String], queued: [String], reason: String?) {
            self.triggers = triggers
            self.queued = queued
            self.reason = reason
        }
    }

    public init(runId: String, collection: String, trigger: RunTrigger, revision: String, status: RunStatus,
                startedAt: Date, finishedAt: Date, jobs: [Job]) {
        self.runId = runId
        self.collection = collection
        self.trigger = trigger
        self.revision = revision
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.jobs = jobs
    }

    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(RunReport.timestamp(date))
        }
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = RunReport.parseTimestamp(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad time \(text)"))
            }
            return date
        }
        return decoder
    }()

    /// ISO 8601 UTC with milliseconds, e.g. `2026-11-25T02:30:00.120Z`.
    ///
    /// Rounded to the nearest millisecond, so that a time read back from its text prints the same
    /// text again (the formatter alone truncates, and 0.926 read back is 0.92599…).
    public static func timestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let fraction = ((milliseconds % 1000) + 1000) % 1000 // 0...999, before 1970 too
        let seconds = Date(timeIntervalSince1970: TimeInterval((milliseconds - fraction) / 1000))
        let whole = seconds.formatted(Date.ISO8601FormatStyle()) // 2026-11-25T02:30:00Z
        return String(whole.dropLast()) + String(format: ".%03dZ", fraction)
    }

    public static func parseTimestamp(_ text: String) -> Date? {
        try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }

    public func json() -> String {
        (try? Self.encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }

    public static func decode(_ json: String) throws -> RunReport {
        try decoder.decode(RunReport.self, from: Data(json.utf8))
    }

    /// `YYYYMMDDTHHMMSSZ-<4 hex>`: sorts by time. Never one this process has made before, nor
    /// one `taken` says is in use: a reconciler starts hundreds of runs in the same second, and
    /// 4 random hex digits alone would repeat (1,000 at once almost surely do).
    public static func makeID(at date: Date, unless taken: (String) -> Bool = { _ in false }) -> String {
        let prefix = compactTimestamp(date)
        while true {
            let id = "\(prefix)-\(String(format: "%04x", UInt16.random(in: 0...UInt16.max)))"
            if IssuedIDs.shared.claim(id, prefix: prefix), !taken(id) { return id }
        }
    }

    /// `YYYYMMDDTHHMMSSZ` in UTC: the time part of run ids and apply page names.
    public static func compactTimestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year ?? 0, c.month ?? 0, c.day ?? 0,
                      c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }
}
