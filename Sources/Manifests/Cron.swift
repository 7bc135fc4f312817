/// A parsed 5-field cron expression (minute hour day-of-month month day-of-week).
///
/// Follows Vixie cron (and cronie, cronsim, croniter): a day field that starts with `*` (`*`,
/// `*/2`) still lists its days, but it makes the two day fields combine with AND; when neither
/// starts with `*`, a day matches if either field does (OR).
public struct CronExpression: Sendable, Equatable {
    public let minutes: Set<Int>
    public let hours: Set<Int>
    public let daysOfMonth: Set<Int>
    public let months: Set<Int>
    /// 0 = Sunday … 6 = Saturday (7 is folded into 0).
    public let daysOfWeek: Set<Int>
    /// Whether the field does not start with `*` (Vixie cron's DOM_STAR / DOW_STAR, negated).
    public let dayOfMonthRestricted: Bool
    public let dayOfWeekRestricted: Bool
    /// Whether the minute or the hour field starts with `*`: cronie's "wildcard" job, which
    /// follows elapsed time across daylight-saving changes (a fixed-time job follows the wall).
    public let followsElapsedTime: Bool

    static let aliases: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// The reason an expression is invalid.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    public init(_ text: String) throws(ParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let expanded: String
        if trimmed.hasPrefix("@") {
            guard let alias = Self.aliases[trimmed.lowercased()] else {
                throw ParseError(message: "unknown cron alias '\(trimmed)' (use @hourly, @daily, @weekly, @monthly or @yearly)")
            }
            expanded = alias
        } else {
            expanded = trimmed
        }
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(message: "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        minutes = try Self.field(fields[0], name: "minute", range: 0...59, names: nil)
        hours = try Self.field(fields[1], name: "hour", range: 0...23, names: nil)
        daysOfMonth = try Self.field(fields[2], name: "day-of-month", range: 1...31, names: nil)
        months = try Self.field(fields[3], name: "month", range: 1...12, names: (Self.monthNames, 1))
        let dow = try Self.field(fields[4], name: "day-of-week", range: 0...7, names: (Self.dayNames, 0))
        daysOfWeek = Set(dow.map { $0 == 7 ? 0 : $0 })
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
        followsElapsedTime = fields[0].hasPrefix("*") || fields[1].hasPrefix("*")
    }

    private static func field(_ text: String, name: String, range: ClosedRange<Int>,
                              names: ([String], Int)?) throws(ParseError) -> Set<Int> {
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !part.isEmpty else { throw ParseError(message: "\(name) field '\(text)' has an empty list item") }
            var base = part
            var step = 1
            if let slash = part.firstIndex(of: "/") {
                base = String(part[..<slash])
                let stepText = String(part[part.index(after: slash)...])
                guard let parsed = Int(stepText), parsed > 0 else {
                    throw ParseError(message: "\(name) field '\(text)': step '\(stepText)' must be a positive number")
                }
                step = parsed
            }
            let low: Int
            let high: Int
            if base == "*" {
                (low, high) = (range.lowerBound, range.upperBound)
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(String(base[..<dash]), name: name, field: text, range: range, names: names)
                high = try value(String(base[base.index(after: dash)...]), name: name, field: text, range: range, names: names)
                guard low <= high else {
                    throw ParseError(message: "\(name) field '\(text)': range \(base) runs backwards")
                }
            } else {
                low = try value(base, name: name, field: text, range: range, names: names)
                high = part.contains("/") ? range.upperBound : low
            }
            values.formUnion(stride(from: low, through: high, by: step))
        }
        return values
    }

    private static func value(_ text: String, name: String, field: String, range: ClosedRange<Int>,
                              names: ([String], Int)?) throws(ParseError) -> Int {
        if let names, let index = names.0.firstIndex(of: text.uppercased()) {
            return index + names.1
        }
        guard let number = Int(text) else {
            throw ParseError(message: "\(name) field '\(field)': '\(text)' is not a number\(names == nil ? "" : " or a name")")
        }
        guard range.contains(number) else {
            throw ParseError(message: "\(name) field '\(field)': \(number) is out of range \(range.lowerBound)-\(range.upperBound)")
        }
        return number
    }
}
