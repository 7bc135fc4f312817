import Foundation
import Reports
import Scheduling

/// How a running collection learns that it must stop: asked at safe points (before each job, and
/// between chunks of objects), it answers with the reason to stop, if any.
///
/// `@unchecked Sendable`: the one mutable field is guarded by `lock`.
public final class RunControl: @unchecked Sendable {
    public let clock: any WallClock
    /// The run stops with `timeout` at the first safe point at or after this instant.
    public let deadline: Date?
    private let lock = NSLock()
    private var requested: StopReason?
    private let safePoint: (@Sendable () -> Void)?
    /// On a shared store: whether this process still holds the store's lease (by its own
    /// monotonic clock). When not, the run stops with `replicaLost` at its next safe point, so
    /// that a holder that was paused writes no further chunk once it wakes.
    private let holdsStore: (@Sendable () -> Bool)?

    /// `safePoint` is called at every safe point before the checks (tests use it to move their clock).
    public init(clock: any WallClock = SystemWallClock(), deadline: Date? = nil, safePoint: (@Sendable () -> Void)? = nil,
                holdsStore: (@Sendable () -> Bool)? = nil) {
        self.clock = clock
        self.deadline = deadline
        self.safePoint = safePoint
        self.holdsStore = holdsStore
    }

    /// Asks the run to stop at its next safe point.
    public func stop(_ reason: StopReason) {
        lock.withLock { if requested == nil { requested = reason } }
    }

    /// Why the run must stop now, if it must.
    public func check() -> StopReason? {
        safePoint?()
        if let reason = lock.withLock({ requested }) { return reason }
        if let holdsStore, !holdsStore() {
            stop(.replicaLost)
            return .replicaLost
        }
        if let deadline, clock.now() >= deadline { return .timeout }
        return nil
    }
}

/// What makes a run a scheduled one.
public struct ScheduledRun: Sendable, Equatable {
    public let schedule: String
    /// The fire time it runs for.
    public let scheduledFor: Date
    /// Shown in the report, e.g. "missed run of …, caught up at …".
    public let notes: [String]

    public init(schedule: String, scheduledFor: Date, notes: [String] = []) {
        self.schedule = schedule
        self.scheduledFor = scheduledFor
        self.notes = notes
    }
}
