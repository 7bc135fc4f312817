import Foundation
import Manifests

/// What to do about the fire times of one schedule and target that are due now.
public struct FireDecision: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Start a run for the fire time `scheduledFor`.
        case run(scheduledFor: Date)
        /// Start nothing.
        case skip
    }
    public let action: Action
    /// Fire times that passed without a run of their own (oldest first, possibly capped).
    public let missed: [Date]
    /// One sentence for the run report or the log: why the run is late, or why nothing runs.
    public let note: String?

    public init(action: Action, missed: [Date], note: String?) {
        self.action = action
        self.missed = missed
        self.note = note
    }

    /// How late a fire may be handled and still count as on time: the loop wakes at fire times,
    /// so anything later than this means the reconciler was not running (or was held up).
    public static let onTimeGrace: TimeInterval = 60

    /// Decides about `pending` fire times (oldest first, all at or before `now`).
    ///
    /// - The newest fire time handled within `onTimeGrace` runs, on time; any older ones were missed.
    /// - When even the newest is late, `runOnce` runs one catch-up for it and `skip` runs nothing.
    /// - A fire time older than `startingDeadline` is never started.
    public static func decide(pending: [Date], now: Date, missedRuns: MissedRuns,
                              startingDeadline: Int?) -> FireDecision {
        guard let latest = pending.last else { return FireDecision(action: .skip, missed: [], note: nil) }
        let earlier = Array(pending.dropLast())
        let lateness = now.timeIntervalSince(latest)
        if let deadline = startingDeadline, lateness > TimeInterval(deadline) {
            return FireDecision(action: .skip, missed: pending,
                                note: "\(describe(pending)) more than the startingDeadline of \(deadline) s ago, so not started")
        }
        if lateness <= onTimeGrace {
            let note = earlier.isEmpty ? nil : "\(describe(earlier)) while no reconciler was running"
            return FireDecision(action: .run(scheduledFor: latest), missed: earlier, note: note)
        }
        switch missedRuns {
        case .runOnce:
            return FireDecision(action: .run(scheduledFor: latest), missed: pending,
                                note: "\(describe(pending)), caught up at \(stamp(now))")
        case .skip:
            return FireDecision(action: .skip, missed: pending,
                                note: "\(describe(pending)); missedRuns is skip, so nothing ran")
        }
    }

    /// "missed run of T" or "missed 3 runs, from A to B".
    static func describe(_ fires: [Date]) -> String {
        guard let first = fires.first, let last = fires.last else { return "no missed runs" }
        if fires.count == 1 { return "missed run of \(stamp(first))" }
        return "missed \(fires.count) runs, from \(stamp(first)) to \(stamp(last))"
    }

    /// ISO 8601 in UTC, to the second.
    public static func stamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC") ?? .gmt))
    }
}
