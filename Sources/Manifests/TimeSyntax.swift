import Foundation

/// A length of time written like `90s`, `15m`, `1h30m` or `7d`.
public struct DurationText: Sendable, Equatable {
    public let seconds: Int

    public init?(_ text: String) {
        var total = 0
        var number = ""
        var sawUnit = false
        for character in text {
            if character.isASCII && character.isNumber {
                number.append(character)
                continue
            }
            let unit: Int
            switch character {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            default: return nil
            }
            guard let value = Int(number) else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: unit)
            guard !overflow else { return nil }
            total += product
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty, total > 0 else { return nil }
        seconds = total
    }
}

/// A timestamp written as `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]`, optionally ending in `Z` or `±HH:MM`.
/// Without an offset it is a wall time in the schedule's time zone.
public struct TimestampText: Sendable, Equatable {
    public let components: DateComponents
    /// Seconds east of UTC when the text carries an offset.
    public let offsetSeconds: Int?

    public init?(_ text: String) {
        let pattern = #/^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?(Z|[+-]\d{2}:\d{2})?$/#
        guard let match = text.wholeMatch(of: pattern) else { return nil }
        guard let year = Int(match.1), let month = Int(match.2), let day = Int(match.3) else { return nil }
        let hour = match.4.flatMap { Int($0) } ?? 0
        let minute = match.5.flatMap { Int($0) } ?? 0
        let second = match.6.flatMap { Int($0) } ?? 0
        guard (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second)
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        guard let firstOfMonth = calendar.date(from: DateComponents(year: year, month: month, day: 1)),
              let days = calendar.range(of: .day, in: .month, for: firstOfMonth), days.contains(day)
        else { return nil }
        components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        if let zone = match.7 {
            if zone == "Z" {
                offsetSeconds = 0
            } else {
                let sign = zone.hasPrefix("-") ? -1 : 1
                let parts = zone.dropFirst().split(separator: ":")
                guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), h <= 14, m < 60 else { return nil }
                offsetSeconds = sign * (h * 3600 + m * 60)
            }
        } else {
            offsetSeconds = nil
        }
    }
}
