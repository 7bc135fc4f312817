import Foundation

/// Where one schedule stands for one of its targets: when it fires next, and how its last fire went.
public struct ScheduleTargetState: Codable, Sendable, Equatable {
    public let schedule: String
    public let target: String
    /// The schedule's spec hash the fire times were computed from.
    public let hash: String
    /// Nil when no enabled trigger fires again ("Never").
    public var nextFire: Date?
    /// The newest fire time handled, and what became of it.
    public var lastFire: Date?
    public var lastOutcome: FireRecord.Outcome?
    public var lastNote: String?

    public init(schedule: String, target: String, hash: String, nextFire: Date?, lastFire: Date? = nil,
                lastOutcome: FireRecord.Outcome? = nil, lastNote: String? = nil) {
        self.schedule = schedule
        self.target = target
        self.hash = hash
        self.nextFire = nextFire
        self.lastFire = lastFire
        self.lastOutcome = lastOutcome
        self.lastNote = lastNote
    }
}

/// New fire times for changed schedules: every row of each schedule in `replacing` is dropped,
/// then `states` are stored.
public struct ScheduleStateUpdate: Sendable, Equatable {
    public var replacing: Set<String>
    public var states: [ScheduleTargetState]
    public init(replacing: Set<String>, states: [ScheduleTargetState]) {
        self.replacing = replacing
        self.states = states
    }
}

/// One fire time handled by the reconciler.
public struct FireRecord: Sendable, Equatable {
    /// What became of a fire time.
    public enum Outcome: String, Codable, Sendable {
        /// A run began.
        case started
        /// A run of the same collection, running or queued, covered it.
        case merged
        /// It was skipped (missed-run policy, deadline, or the schedule's rules).
        case skipped
    }
    public let schedule: String
    public let target: String
    /// The fire time (for `atStartup`, the start of the reconciler).
    public let fireTime: Date
    public let handledAt: Date
    public let outcome: Outcome
    public let runId: String?
    public let note: String?
    /// The next fire time after this one (nil: never). Ignored for `atStartup` fires.
    public let nextFire: Date?
    /// Whether this fire came from a timed trigger (and so moves the stored next fire time).
    public let timed: Bool

    public init(schedule: String, target: String, fireTime: Date, handledAt: Date, outcome: Outcome,
                runId: String?, note: String?, nextFire: Date?, timed: Bool = true) {
        self.schedule = schedule
        self.target = target
        self.fireTime = fireTime
        self.handledAt = handledAt
        self.outcome = outcome
        self.runId = runId
        self.note = note
        self.nextFire = nextFire
        self.timed = timed
    }
}

/// Stored fire times of schedules, and the fires handled.
public protocol ScheduleLedger: Sendable {
    /// Stores new fire times for changed schedules.
    func updateSchedules(_ update: ScheduleStateUpdate) throws
    /// Every schedule target's state, by schedule then target.
    func scheduleStates() throws -> [ScheduleTargetState]
    /// The states whose next fire time is at or before `date`, earliest first.
    func dueSchedules(at date: Date) throws -> [ScheduleTargetState]
    /// The earliest next fire time of any schedule.
    func nextFireTime() throws -> Date?
    /// Per collection, its earliest next fire time over every schedule that targets it.
    func nextRuns() throws -> [String: Date]
    /// Records handled fire times, and moves each timed one's schedule target to its next fire
    /// time. Each fire is a claim on its `(schedule, target, fireTime)`: a fire time some other
    /// process recorded first (a shared store's replica) is left out, and so is everything it
    /// would have moved. Returns the fires recorded, in order.
    @discardableResult
    func recordFires(_ fires: [FireRecord]) throws -> [FireRecord]
    /// The newest handled fires, newest first, optionally of one collection.
    func fires(target: String?, limit: Int) throws -> [FireRecord]
}

extension ScheduleLedger {
    public func fires(target: String? = nil, limit: Int = 100) throws -> [FireRecord] { try fires(target: target, limit: limit) }
}
