import Foundation

/// Wall-clock arithmetic in one time zone, with the DST rules Syncwright documents:
/// a wall time that does not exist (the spring-forward gap) resolves to the first valid instant
/// after it, and a wall time that occurs twice (the fall-back hour) resolves to its first occurrence.
///
/// Wall times are counted as seconds since 1970-01-01T00:00 *on the wall* (as if the zone were
/// UTC), so that days, hours and minutes are plain integer arithmetic.
struct ZonedClock: Sendable {
    let zone: TimeZone

    /// The wall time (seconds) an instant shows in the zone.
    func wall(of instant: Date) -> Int {
        let seconds = Int(instant.timeIntervalSince1970.rounded(.down))
        return seconds + zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    private func offset(at seconds: Int) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// Every instant that shows `wall`: none in a gap, two in a repeated hour, else one.
    func instants(ofWall wall: Int) -> [Date] {
        let before = offset(at: wall - 64_800)
        let after = offset(at: wall + 64_800)
        return Set([before, after]).map { wall - $0 }.filter { wall - offset(at: $0) == $0 }.sorted()
            .map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }

    /// The instant of a wall time, by the rules above.
    func instant(ofWall wall: Int) -> Date {
        // The true offset lies between the offsets half a day either side (transitions are further apart).
        let before = offset(at: wall - 64_800)
        let after = offset(at: wall + 64_800)
        let valid = Set([before, after]).map { wall - $0 }.filter { wall - offset(at: $0) == $0 }
        if let first = valid.min() { return Date(timeIntervalSince1970: TimeInterval(first)) }
        // In a gap: the clock jumps over `wall`. The first valid instant after it is the transition,
        // found by bisection between the instant the old offset would give and the one the new would.
        var low = wall - max(before, after)   // still on the old offset
        var high = wall - min(before, after)  // already on the new offset
        let old = offset(at: low)
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(at: middle) == old { low = middle } else { high = middle }
        }
        return Date(timeIntervalSince1970: TimeInterval(high))
    }
}

/// Proleptic Gregorian civil dates as day numbers (days since 1970-01-01), after Howard Hinnant's
/// `days_from_civil`.
enum CivilDate {
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// (year, month 1–12, day 1–31, weekday 0 = Sunday).
    static func civil(_ days: Int) -> (year: Int, month: Int, day: Int, weekday: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = ((days % 7) + 11) % 7 // 1970-01-01 was a Thursday (4)
        return (year, month, day, weekday)
    }
}
