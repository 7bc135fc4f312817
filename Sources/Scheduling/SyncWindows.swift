import Foundation
import Manifests

/// Whether a policy's sync window lets jobs write at an instant, on the wall clock of its time
/// zone (across daylight-saving changes, the wall time is what counts).
public enum SyncWindows {
    /// True when `window` allows writes at `instant`: inside one of its `allow` spans, or
    /// outside every `deny` span.
    public static func isOpen(_ window: SyncWindow, at instant: Date) -> Bool {
        guard let zone = TimeZone(identifier: window.timeZone) else { return true }
        let wall = ZonedClock(zone: zone).wall(of: instant)
        let day = Int((Double(wall) / 86_400).rounded(.down))
        let minute = (wall - day * 86_400) / 60
        let weekday = CivilDate.civil(day).weekday
        let yesterday = (weekday + 6) % 7
        func inside(_ span: WindowSpan) -> Bool {
            guard let from = WindowSpan.minutes(span.from), let to = WindowSpan.minutes(span.to) else { return false }
            let days = Set(span.days.map(\.number))
            if from < to { return days.contains(weekday) && minute >= from && minute < to }
            // Past midnight: from `from` on a listed day, until `to` on the day after.
            return (days.contains(weekday) && minute >= from) || (days.contains(yesterday) && minute < to)
        }
        if !window.allow.isEmpty { return window.allow.contains(where: inside) }
        return !window.deny.contains(where: inside)
    }

    /// "writes only Sat 02:00–06:00 (Europe/Berlin)", "no writes Mon, Tue, Wed, Thu, Fri 08:00–18:00 (Europe/Berlin)".
    public static func describe(_ window: SyncWindow) -> String {
        let spans = (window.allow.isEmpty ? window.deny : window.allow)
            .map { "\($0.days.map(\.rawValue).joined(separator: ", ")) \($0.from)–\($0.to)" }.joined(separator: "; ")
        return "\(window.allow.isEmpty ? "no writes" : "writes only") \(spans) (\(window.timeZone))"
    }

    /// `instant` on the window's wall clock: "2026-11-30 10:15 Europe/Berlin".
    public static func wallText(_ instant: Date, in window: SyncWindow) -> String {
        guard let zone = TimeZone(identifier: window.timeZone) else { return "\(instant)" }
        let wall = ZonedClock(zone: zone).wall(of: instant)
        let day = Int((Double(wall) / 86_400).rounded(.down))
        let civil = CivilDate.civil(day)
        let minute = (wall - day * 86_400) / 60
        return String(format: "%04d-%02d-%02d %02d:%02d ", civil.year, civil.month, civil.day, minute / 60, minute % 60)
            + window.timeZone
    }
}
