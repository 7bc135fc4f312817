import Foundation
import Manifests
@testable import Scheduling
import Testing

/// An instant from `2026-03-29T01:00:00Z`-style text.
func utc(_ text: String) -> Date {
    let style = Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC") ?? .gmt)
    guard let date = try? style.parse(text) else { fatalError("bad test timestamp \(text)") }
    return date
}

func schedule(_ triggers: [Trigger], zone: String = "UTC", expires: String? = nil, enabled: Bool = true) throws -> FireSchedule {
    try FireSchedule(ScheduleSpec(targets: ["c"], timezone: zone, triggers: triggers, expires: expires, enabled: enabled))
}

/// (trigger, zone, after, expected next fire times in UTC)
struct NextCase: CustomTestStringConvertible, Sendable {
    let name: String
    let trigger: Trigger
    let zone: String
    let after: String
    let expected: [String]
    var testDescription: String { name }
}

let cronCases: [NextCase] = [
    NextCase(name: "every 15 minutes", trigger: .cron("*/15 * * * *"), zone: "UTC", after: "2026-11-25T10:07:30Z",
             expected: ["2026-11-25T10:15:00Z", "2026-11-25T10:30:00Z", "2026-11-25T10:45:00Z"]),
    NextCase(name: "weekdays at 02:30, over a weekend", trigger: .cron("30 2 * * 1-5"), zone: "UTC",
             after: "2026-11-27T03:00:00Z", // a Friday
             expected: ["2026-11-30T02:30:00Z", "2026-12-01T02:30:00Z"]),
    NextCase(name: "names: MON,WED in JAN-FEB", trigger: .cron("0 9 * JAN-FEB MON,WED"), zone: "UTC",
             after: "2026-12-31T12:00:00Z", expected: ["2027-01-04T09:00:00Z", "2027-01-06T09:00:00Z"]),
    NextCase(name: "the fire time itself is not 'after'", trigger: .cron("0 * * * *"), zone: "UTC",
             after: "2026-11-25T10:00:00Z", expected: ["2026-11-25T11:00:00Z"]),
    NextCase(name: "@hourly", trigger: .cron("@hourly"), zone: "UTC", after: "2026-11-25T10:59:59Z",
             expected: ["2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z"]),
    NextCase(name: "@daily in Berlin", trigger: .cron("@daily"), zone: "Europe/Berlin", after: "2026-11-25T12:00:00Z",
             expected: ["2026-11-25T23:00:00Z", "2026-11-26T23:00:00Z"]),
    NextCase(name: "@weekly is Sunday midnight", trigger: .cron("@weekly"), zone: "UTC", after: "2026-11-25T00:00:00Z",
             expected: ["2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z"]),
    NextCase(name: "@monthly", trigger: .cron("@monthly"), zone: "UTC", after: "2026-11-25T00:00:00Z",
             expected: ["2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"]),
    NextCase(name: "@yearly", trigger: .cron("@yearly"), zone: "UTC", after: "2026-11-25T00:00:00Z",
             expected: ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
    NextCase(name: "the 31st skips short months", trigger: .cron("0 12 31 * *"), zone: "UTC", after: "2026-01-31T13:00:00Z",
             expected: ["2026-03-31T12:00:00Z", "2026-05-31T12:00:00Z", "2026-07-31T12:00:00Z"]),
    NextCase(name: "leap day, four years apart", trigger: .cron("0 0 29 2 *"), zone: "UTC", after: "2026-01-01T00:00:00Z",
             expected: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
    NextCase(name: "leap day skips 2100", trigger: .cron("0 0 29 2 *"), zone: "UTC", after: "2096-03-01T00:00:00Z",
             expected: ["2104-02-29T00:00:00Z"]),
    NextCase(name: "both day fields: either matches (Vixie)", trigger: .cron("0 8 1 * MON"), zone: "UTC",
             after: "2026-11-25T00:00:00Z", // Wed; next Monday 30th, then 1 Dec (Tue)
             expected: ["2026-11-30T08:00:00Z", "2026-12-01T08:00:00Z", "2026-12-07T08:00:00Z"]),
    NextCase(name: "step over a range", trigger: .cron("0 8-18/5 * * *"), zone: "UTC", after: "2026-11-25T08:30:00Z",
             expected: ["2026-11-25T13:00:00Z", "2026-11-25T18:00:00Z", "2026-11-26T08:00:00Z"]),
    NextCase(name: "February 30 never fires", trigger: .cron("0 0 30 2 *"), zone: "UTC", after: "2026-01-01T00:00:00Z",
             expected: []),
    // Europe/Berlin: spring forward 2026-03-29 02:00 CET → 03:00 CEST (01:00Z); fall back 2026-10-25 03:00 CEST → 02:00 CET (01:00Z).
    NextCase(name: "Berlin: 02:30 does not exist on 29 March, fires at 03:00 CEST", trigger: .cron("30 2 * * *"),
             zone: "Europe/Berlin", after: "2026-03-28T12:00:00Z",
             expected: ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
    NextCase(name: "Berlin: every 15 minutes across the gap fires once at 03:00", trigger: .cron("*/15 * * * *"),
             zone: "Europe/Berlin", after: "2026-03-29T00:40:00Z", // 01:40 CET
             expected: ["2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"]),
    NextCase(name: "Berlin: 02:30 occurs twice on 25 October, fires at the first", trigger: .cron("30 2 * * *"),
             zone: "Europe/Berlin", after: "2026-10-24T12:00:00Z",
             expected: ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
    NextCase(name: "Berlin: the repeated hour does not fire twice", trigger: .cron("15,45 2 * * *"),
             zone: "Europe/Berlin", after: "2026-10-25T00:20:00Z", // 02:20 CEST, first pass
             expected: ["2026-10-25T00:45:00Z", "2026-10-26T01:15:00Z"]),
    NextCase(name: "Berlin: a wildcard job asked from inside the second pass fires at its second 02:30",
             trigger: .cron("*/30 * * * *"),
             zone: "Europe/Berlin", after: "2026-10-25T01:10:00Z", // 02:10 CET, the second 02:10
             expected: ["2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"]),
    NextCase(name: "Berlin: @hourly is one real hour apart across the gap (01:00 CET, 03:00 CEST)",
             trigger: .cron("@hourly"), zone: "Europe/Berlin", after: "2026-03-28T23:30:00Z",
             expected: ["2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"]),
    NextCase(name: "Berlin: 30 * * * * never fires at 03:00 on the spring change", trigger: .cron("30 * * * *"),
             zone: "Europe/Berlin", after: "2026-03-28T23:40:00Z",
             expected: ["2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"]),
    NextCase(name: "Berlin: 30 * * * * fires in both passes of the repeated hour", trigger: .cron("30 * * * *"),
             zone: "Europe/Berlin", after: "2026-10-24T23:40:00Z",
             expected: ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"]),
    // Australia/Lord_Howe: a 30-minute change. 2026-04-05 02:00 +11 → 01:30 +10:30 (15:00Z);
    // 2026-10-04 02:00 +10:30 → 02:30 +11 (15:30Z).
    NextCase(name: "Lord Howe: 01:45 occurs twice; a fixed-time job fires at the first", trigger: .cron("45 1 * * *"),
             zone: "Australia/Lord_Howe", after: "2026-04-04T12:00:00Z",
             expected: ["2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"]),
    NextCase(name: "Lord Howe: 02:15 does not exist; a fixed-time job fires at 02:30", trigger: .cron("15 2 * * *"),
             zone: "Australia/Lord_Howe", after: "2026-10-03T12:00:00Z",
             expected: ["2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"]),
    // America/New_York: spring forward 2026-03-08 02:00 EST → 03:00 EDT (07:00Z); fall back 2026-11-01 02:00 EDT → 01:00 EST (06:00Z).
    NextCase(name: "New York: 02:30 does not exist on 8 March, fires at 03:00 EDT", trigger: .cron("30 2 * * *"),
             zone: "America/New_York", after: "2026-03-07T12:00:00Z",
             expected: ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
    NextCase(name: "New York: 01:30 occurs twice on 1 November, fires at the first (EDT)", trigger: .cron("30 1 * * *"),
             zone: "America/New_York", after: "2026-10-31T12:00:00Z",
             expected: ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
    NextCase(name: "New York: 1-5 on weekdays through the change", trigger: .cron("0 1 * * 1-5"),
             zone: "America/New_York", after: "2026-10-30T12:00:00Z", // Friday
             expected: ["2026-11-02T06:00:00Z"]),
]

@Test("cron next fire times", arguments: cronCases)
func cronNext(_ c: NextCase) throws {
    let s = try schedule([c.trigger], zone: c.zone)
    let got = s.upcoming(after: utc(c.after), count: c.expected.count + (c.expected.isEmpty ? 1 : 0))
    #expect(got.prefix(max(c.expected.count, 1)).map(FireDecision.stamp) == c.expected.map { FireDecision.stamp(utc($0)) })
}

let everyCases: [NextCase] = [
    NextCase(name: "every 15m counts from the epoch", trigger: .every(interval: "15m", from: nil, for: nil), zone: "UTC",
             after: "2026-11-25T10:07:30Z", expected: ["2026-11-25T10:15:00Z", "2026-11-25T10:30:00Z"]),
    NextCase(name: "every 3s", trigger: .every(interval: "3s", from: nil, for: nil), zone: "UTC",
             after: "2026-11-25T10:00:01Z", expected: ["2026-11-25T10:00:03Z", "2026-11-25T10:00:06Z"]),
    NextCase(name: "from a wall time in Berlin, for 1h", trigger: .every(interval: "20m", from: "2026-12-01T08:00", for: "1h"),
             zone: "Europe/Berlin", after: "2026-11-30T00:00:00Z",
             expected: ["2026-12-01T07:00:00Z", "2026-12-01T07:20:00Z", "2026-12-01T07:40:00Z"]),
    NextCase(name: "every counts elapsed time across the Berlin gap", trigger: .every(interval: "1h", from: "2026-03-29T00:00", for: nil),
             zone: "Europe/Berlin", after: "2026-03-29T00:30:00Z",
             expected: ["2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"]),
    NextCase(name: "from with an explicit offset", trigger: .every(interval: "1d", from: "2026-12-01T06:00-05:00", for: nil),
             zone: "Europe/Berlin", after: "2026-12-01T00:00:00Z",
             expected: ["2026-12-01T11:00:00Z", "2026-12-02T11:00:00Z"]),
    NextCase(name: "once, in New York", trigger: .once("2026-12-01T08:00"), zone: "America/New_York",
             after: "2026-11-25T00:00:00Z", expected: ["2026-12-01T13:00:00Z"]),
    NextCase(name: "once, already past", trigger: .once("2026-11-01T08:00"), zone: "UTC",
             after: "2026-11-25T00:00:00Z", expected: []),
    NextCase(name: "once, in the New York gap", trigger: .once("2026-03-08T02:30"), zone: "America/New_York",
             after: "2026-03-01T00:00:00Z", expected: ["2026-03-08T07:00:00Z"]),
]

@Test("every and once next fire times", arguments: everyCases)
func everyNext(_ c: NextCase) throws {
    let s = try schedule([c.trigger], zone: c.zone)
    let got = s.upcoming(after: utc(c.after), count: max(c.expected.count, 1))
    #expect(got.map(FireDecision.stamp) == c.expected.map { FireDecision.stamp(utc($0)) })
}

@Test("the window of every … for ends before from + for")
func everyWindowEnds() throws {
    let s = try schedule([.every(interval: "20m", from: "2026-12-01T08:00", for: "1h")])
    #expect(s.fires(after: utc("2026-12-01T00:00:00Z"), through: utc("2026-12-31T00:00:00Z")).map(FireDecision.stamp)
            == ["2026-12-01T08:00:00Z", "2026-12-01T08:20:00Z", "2026-12-01T08:40:00Z"])
    #expect(s.next(after: utc("2026-12-01T08:40:00Z")) == nil)
}

@Test("the union of triggers takes the earliest, and expires ends them all")
func unionAndExpiry() throws {
    let s = try schedule([.cron("0 12 * * *"), .once("2026-11-25T09:30"), .every(interval: "6h", from: nil, for: nil)],
                         expires: "2026-11-26T12:00")
    #expect(s.fires(after: utc("2026-11-25T08:00:00Z"), through: utc("2026-12-31T00:00:00Z")).map(FireDecision.stamp) == [
        "2026-11-25T09:30:00Z", "2026-11-25T12:00:00Z", "2026-11-25T18:00:00Z", "2026-11-26T00:00:00Z",
        "2026-11-26T06:00:00Z",
    ])
    #expect(s.next(after: utc("2026-11-26T06:00:00Z")) == nil, "12:00 on the 26th is the expiry itself: not fired")
}

@Test("a disabled schedule never fires, not even at startup")
func disabled() throws {
    let s = try schedule([.cron("* * * * *"), .atStartup], enabled: false)
    #expect(s.next(after: utc("2026-11-25T08:00:00Z")) == nil)
    #expect(!s.firesAtStartup)
    let on = try schedule([.atStartup])
    #expect(on.firesAtStartup)
    #expect(on.next(after: utc("2026-11-25T08:00:00Z")) == nil, "atStartup alone has no next fire time: Never")
}

@Test("wall times are shown in the schedule's zone")
func wallText() throws {
    let s = try schedule([.cron("30 2 * * *")], zone: "Europe/Berlin")
    #expect(s.wallText(utc("2026-03-29T01:00:00Z")) == "2026-03-29 03:00 +02:00")
    #expect(s.wallText(utc("2026-03-29T00:59:00Z")) == "2026-03-29 01:59 +01:00")
    let lordHowe = try schedule([.cron("@hourly")], zone: "Australia/Lord_Howe")
    #expect(lordHowe.wallText(utc("2026-06-01T00:00:00Z")) == "2026-06-01 10:30 +10:30")
    let newYork = try schedule([.cron("@hourly")], zone: "America/New_York")
    #expect(newYork.wallText(utc("2026-12-01T12:00:00Z")) == "2026-12-01 07:00 -05:00")
}
