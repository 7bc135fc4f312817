import Foundation
import Manifests

/// The scheduling module's error: a schedule whose spec cannot be turned into fire times.
public struct ScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One trigger, ready to compute fire times.
public enum FireTrigger: Sendable, Equatable {
    case cron(CronExpression)
    /// Every `interval` seconds, counted from `anchor` (the `from` instant, else the Unix epoch),
    /// until `anchor + duration` when `for` is given.
    case every(interval: Int, anchor: Date, duration: Int?)
    case once(Date)
    case atStartup

    /// The first fire time strictly after `instant`, or nil when the trigger never fires again.
    func next(after instant: Date, clock: ZonedClock) -> Date? {
        switch self {
        case .cron(let cron):
            return cron.next(after: instant, clock: clock)
        case .every(let interval, let anchor, let duration):
            let step = TimeInterval(interval)
            let candidate: Date
            if instant < anchor {
                candidate = anchor
            } else {
                let steps = ((instant.timeIntervalSince(anchor)) / step).rounded(.down) + 1
                candidate = anchor.addingTimeInterval(steps * step)
            }
            if let duration, candidate.timeIntervalSince(anchor) >= TimeInterval(duration) { return nil }
            return candidate
        case .once(let date):
            return date > instant ? date : nil
        case .atStartup:
            return nil
        }
    }
}

extension CronExpression {
    /// Nine years of days: the longest gap between two matching days (a 29 February that needs
    /// to skip 2100) is eight years.
    static let horizonDays = 9 * 366

    /// The first fire after `instant`, by cronie's daylight-saving rule:
    /// - a fixed-time job (minute and hour fields without `*`) follows the wall: a time in a
    ///   skipped hour fires right after the gap, and a repeated time fires at its first pass;
    /// - a wildcard or stepped job (`*` or `*/N` in the minute or hour field) follows elapsed
    ///   time: wall times that do not exist never fire, and repeated ones fire in both passes.
    func next(after instant: Date, clock: ZonedClock) -> Date? {
        followsElapsedTime ? nextByElapsedTime(after: instant, clock: clock) : nextByWall(after: instant, clock: clock)
    }

    private func nextByWall(after instant: Date, clock: ZonedClock) -> Date? {
        var found: Date?
        forEachMatchingWall(from: clock.wall(of: instant)) { wall in
            let fire = clock.instant(ofWall: wall)
            if fire > instant { found = fire; return false }
            return true
        }
        return found
    }

    private func nextByElapsedTime(after instant: Date, clock: ZonedClock) -> Date? {
        // Away from a daylight-saving change every wall time is one instant, and both rules agree:
        // the wall-clock search is enough (and far cheaper for `* * * * *`).
        let margin: TimeInterval = 3 * 3_600
        if let byWall = nextByWall(after: instant, clock: clock) {
            let change = clock.zone.nextDaylightSavingTimeTransition(after: instant.addingTimeInterval(-margin))
            if change.map({ $0 > byWall.addingTimeInterval(margin) }) ?? true { return byWall }
        }
        // A repeated hour's second pass shows earlier wall times than the first pass did, so the
        // search starts a few wall hours back, and stops a few wall hours past the first find
        // (daylight-saving shifts are at most two hours).
        let slack = 3 * 3_600
        var best: Date?
        var bestWall: Int?
        forEachMatchingWall(from: clock.wall(of: instant) - slack) { wall in
            if let bestWall, wall > bestWall + slack { return false }
            for fire in clock.instants(ofWall: wall) where fire > instant && fire < (best ?? .distantFuture) {
                best = fire
                bestWall = min(bestWall ?? wall, wall)
            }
            return true
        }
        return best
    }

    /// Calls `body` with each matching wall time at or after `startWall`, in order, until it
    /// returns false or the horizon ends.
    private func forEachMatchingWall(from startWall: Int, _ body: (Int) -> Bool) {
        let startDay = Int((Double(startWall) / 86_400).rounded(.down))
        let startMinute = (startWall - startDay * 86_400) / 60
        let hourList = hours.sorted()
        let minuteList = minutes.sorted()
        for day in startDay..<(startDay + Self.horizonDays) {
            let date = CivilDate.civil(day)
            guard months.contains(date.month), matches(day: date.day, weekday: date.weekday) else { continue }
            for hour in hourList {
                if day == startDay && (hour + 1) * 60 <= startMinute { continue }
                for minute in minuteList {
                    if day == startDay && hour * 60 + minute < startMinute { continue }
                    guard body(day * 86_400 + hour * 3_600 + minute * 60) else { return }
                }
            }
        }
    }

    /// Vixie cron: when neither day field starts with `*`, either one matching is enough;
    /// otherwise both must match (a field of `*` matches every day).
    private func matches(day: Int, weekday: Int) -> Bool {
        if dayOfMonthRestricted && dayOfWeekRestricted {
            return daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
        }
        return daysOfMonth.contains(day) && daysOfWeek.contains(weekday)
    }
}

/// A schedule's triggers and settings, compiled for computing fire times. Pure and `Sendable`.
public struct FireSchedule: Sendable, Equatable {
    public let triggers: [FireTrigger]
    public let timeZone: TimeZone
    public let enabled: Bool
    /// No fire time at or after this instant.
    public let expires: Date?
    /// Seconds a scheduled run may take before it is stopped.
    public let timeout: Int?
    public let missedRuns: MissedRuns
    /// Seconds after its fire time that a run may still start.
    public let startingDeadline: Int?

    let clock: ZonedClock

    public static func == (a: FireSchedule, b: FireSchedule) -> Bool {
        a.triggers == b.triggers && a.timeZone == b.timeZone && a.enabled == b.enabled && a.expires == b.expires
            && a.timeout == b.timeout && a.missedRuns == b.missedRuns && a.startingDeadline == b.startingDeadline
    }

    public init(_ spec: ScheduleSpec) throws(ScheduleError) {
        guard let zone = TimeZone(identifier: spec.timezone) else {
            throw ScheduleError("unknown time zone '\(spec.timezone)'")
        }
        let clock = ZonedClock(zone: zone)
        func instant(_ text: String, _ field: String) throws(ScheduleError) -> Date {
            guard let stamp = TimestampText(text) else { throw ScheduleError("\(field): '\(text)' is not a timestamp") }
            return Self.instant(of: stamp, clock: clock)
        }
        func seconds(_ text: String?, _ field: String) throws(ScheduleError) -> Int? {
            guard let text else { return nil }
            guard let value = DurationText(text)?.seconds else { throw ScheduleError("\(field): '\(text)' is not a duration") }
            return value
        }
        var triggers: [FireTrigger] = []
        for trigger in spec.triggers {
            switch trigger {
            case .cron(let text):
                do {
                    triggers.append(.cron(try CronExpression(text)))
                } catch {
                    throw ScheduleError("cron '\(text)': \(error.message)")
                }
            case .every(let interval, let from, let duration):
                guard let step = try seconds(interval, "every") else { continue }
                triggers.append(.every(interval: step,
                                       anchor: try from.map { text throws(ScheduleError) in try instant(text, "from") }
                                           ?? Date(timeIntervalSince1970: 0),
                                       duration: try seconds(duration, "for")))
            case .once(let text):
                triggers.append(.once(try instant(text, "once")))
            case .atStartup:
                triggers.append(.atStartup)
            }
        }
        self.triggers = triggers
        self.timeZone = zone
        self.clock = clock
        self.enabled = spec.enabled
        self.expires = try spec.expires.map { text throws(ScheduleError) in try instant(text, "expires") }
        self.timeout = try seconds(spec.timeout, "timeout")
        self.missedRuns = spec.missedRuns ?? .runOnce
        self.startingDeadline = try seconds(spec.startingDeadline, "startingDeadline")
    }

    /// A written timestamp as an instant: its own offset when it has one, else a wall time in the zone.
    static func instant(of stamp: TimestampText, clock: ZonedClock) -> Date {
        let c = stamp.components
        let wall = CivilDate.days(year: c.year ?? 1970, month: c.month ?? 1, day: c.day ?? 1) * 86_400
            + (c.hour ?? 0) * 3_600 + (c.minute ?? 0) * 60 + (c.second ?? 0)
        if let offset = stamp.offsetSeconds { return Date(timeIntervalSince1970: TimeInterval(wall - offset)) }
        return clock.instant(ofWall: wall)
    }

    /// The first fire time strictly after `instant`, over every trigger; nil when the schedule is
    /// disabled, expired, or has no trigger that fires again (the reference's "Never").
    public func next(after instant: Date) -> Date? {
        guard enabled else { return nil }
        let next = triggers.compactMap { $0.next(after: instant, clock: clock) }.min()
        guard let next else { return nil }
        if let expires, next >= expires { return nil }
        return next
    }

    /// The fire times after `start`, up to and including `end`, at most `limit` of them.
    public func fires(after start: Date, through end: Date, limit: Int = 10_000) -> [Date] {
        var out: [Date] = []
        var cursor = start
        while out.count < limit, let fire = next(after: cursor), fire <= end {
            out.append(fire)
            cursor = fire
        }
        return out
    }

    /// The next `count` fire times after `instant`.
    public func upcoming(after instant: Date, count: Int) -> [Date] {
        fires(after: instant, through: .distantFuture, limit: count)
    }

    /// Whether the schedule fires when a reconciler starts.
    public var firesAtStartup: Bool {
        guard enabled else { return false }
        return triggers.contains(.atStartup)
    }

    /// The wall time of `instant` in the schedule's zone with its UTC offset, as
    /// `2026-03-29 03:00 +02:00`. (Foundation on Linux knows no abbreviations such as CET; an
    /// offset is exact in every zone.)
    public func wallText(_ instant: Date) -> String {
        let wall = clock.wall(of: instant)
        let day = Int((Double(wall) / 86_400).rounded(.down))
        let date = CivilDate.civil(day)
        let secondsOfDay = wall - day * 86_400
        let seconds = secondsOfDay % 60
        let offset = clock.wall(of: instant) - Int(instant.timeIntervalSince1970.rounded(.down))
        let abbreviation = String(format: "%@%02d:%02d", offset < 0 ? "-" : "+", abs(offset) / 3_600, (abs(offset) / 60) % 60)
        return String(format: "%04d-%02d-%02d %02d:%02d", date.year, date.month, date.day,
                      secondsOfDay / 3_600, (secondsOfDay / 60) % 60)
            + (seconds == 0 ? "" : String(format: ":%02d", seconds)) + " \(abbreviation)"
    }
}

extension FireSchedule {
    /// The newest fire time at or before `instant` (looking back up to nine years).
    public func latest(atOrBefore instant: Date) -> Date? {
        for window: TimeInterval in [3_600, 86_400, 32 * 86_400, 400 * 86_400, 9 * 366 * 86_400] {
            let from = instant.addingTimeInterval(-window)
            var latest: Date?
            var cursor = from
            var steps = 0
            while steps < 100_000, let fire = next(after: cursor), fire <= instant {
                latest = fire
                cursor = fire
                steps += 1
            }
            if let latest { return latest }
        }
        return nil
    }
}
