import Foundation
import Manifests
@testable import Scheduling
import Testing
import TestSupport

/// Cron against an independent implementation: cronsim (PyPI), which follows Vixie cron's day
/// fields and cronie's daylight-saving rule. Every expression, zone and start below is computed
/// by both; the fire times must agree to the second. cronsim assumes hour-long daylight-saving
/// shifts, so for Lord Howe's 30-minute shift a wildcard job is checked against a minute-by-minute
/// walk of elapsed time instead (zoneinfo gives the wall time, cronsim only matches wall times).
@Suite struct CronOracleTests {
    static let expressions = [
        "0 0 */2 * *", "0 0 * * */2", "0 0 15 * */3", "0 0 1,15 * MON", "0 0 */5 * 1-5", "0 12 * * *",
        "@hourly", "30 * * * *", "*/20 * * * *", "15 */2 * * *", "30 2 * * *", "0 3 * * *", "45 1 * * *",
        "0 2 * * SUN", "*/7 2 * * *", "0 2-3 * * *", "@daily", "0 0 29 2 *", "0 0 31 * *",
    ]
    static let starts: [(zone: String, at: String)] = [
        ("Europe/Berlin", "2026-03-28T20:00:00Z"), ("Europe/Berlin", "2026-10-24T20:00:00Z"),
        ("America/New_York", "2026-03-08T02:00:00Z"), ("America/New_York", "2026-11-01T01:00:00Z"),
        ("Australia/Lord_Howe", "2026-04-04T12:00:00Z"), ("Australia/Lord_Howe", "2026-10-03T12:00:00Z"),
        ("UTC", "2026-01-30T00:00:00Z"),
    ]
    static let count = 12

    @Test func agreesWithCronsim() throws {
        var cases: [[String: Any]] = []
        var ours: [[Int]] = []
        for expression in Self.expressions {
            for start in Self.starts {
                let schedule = try FireSchedule(ScheduleSpec(targets: ["c"], timezone: start.zone, triggers: [.cron(expression)]))
                let fires = schedule.upcoming(after: utc(start.at), count: Self.count)
                ours.append(fires.map { Int($0.timeIntervalSince1970) })
                cases.append(["expr": expression, "zone": start.zone, "start": Int(utc(start.at).timeIntervalSince1970)])
            }
        }
        let folder = try TemporaryFolder("cron-oracle")
        let input = folder.sub("cases.json")
        try JSONSerialization.data(withJSONObject: cases).write(to: URL(fileURLWithPath: input))
        let script = folder.sub("oracle.py")
        try """
            import json, sys, datetime, zoneinfo, cronsim
            out = []
            for case in json.load(open(sys.argv[1])):
                expr = case["expr"].replace("@hourly", "0 * * * *").replace("@daily", "0 0 * * *")
                zone = zoneinfo.ZoneInfo(case["zone"])
                start = datetime.datetime.fromtimestamp(case["start"], zone)
                wildcard = expr.split()[0].startswith("*") or expr.split()[1].startswith("*")
                if case["zone"] == "Australia/Lord_Howe" and wildcard:
                    # cronsim assumes hour-long daylight-saving shifts. For Lord Howe's 30 minutes,
                    # follow elapsed time literally: every minute, fire when the wall time it
                    # shows (cronsim on naive wall times, which knows no zones) matches.
                    walls = cronsim.CronSim(expr, start.replace(tzinfo=None) - datetime.timedelta(hours=3))
                    matching, fires = set(), []
                    last = start.replace(tzinfo=None) + datetime.timedelta(days=800)
                    t = case["start"] - case["start"] % 60 + 60
                    while len(fires) < \(Self.count):
                        wall = datetime.datetime.fromtimestamp(t, zone).replace(tzinfo=None)
                        while not matching or max(matching) < wall + datetime.timedelta(hours=3):
                            matching.add(next(walls))
                        if wall in matching:
                            fires.append(t)
                        t += 60
                    out.append(fires)
                    continue
                it = cronsim.CronSim(expr, start)
                out.append([int(next(it).timestamp()) for _ in range(\(Self.count))])
            print(json.dumps(out))
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try runProcess("/usr/bin/env", ["python3", script, input])
        try #require(result.status == 0, "cronsim failed (scripts/install-deps.sh installs it): \(result.stderr)")
        let theirs = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[Int]])
        #expect(theirs.count == ours.count)
        for (index, (mine, expected)) in zip(ours, theirs).enumerated() where mine != expected {
            let c = cases[index]
            let show = { (list: [Int]) in list.map { Date(timeIntervalSince1970: TimeInterval($0)).formatted(.iso8601) } }
            Issue.record("\(c["expr"] ?? "") in \(c["zone"] ?? "") after \(c["start"] ?? ""): ours \(show(mine)), cronsim \(show(expected))")
        }
    }
}
