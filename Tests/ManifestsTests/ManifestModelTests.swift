import Foundation
import Manifests
import TestSupport
import Testing

@Suite struct CronTests {
    @Test func fieldsExpand() throws {
        let cron = try CronExpression("30 2 * * 1-5")
        #expect(cron.minutes == [30])
        #expect(cron.hours == [2])
        #expect(cron.daysOfWeek == [1, 2, 3, 4, 5])
        #expect(cron.daysOfMonth == Set(1...31))
        #expect(!cron.dayOfMonthRestricted && cron.dayOfWeekRestricted)
    }

    @Test func stepsListsAndNames() throws {
        let cron = try CronExpression("*/15 8-18/5 1,15 JAN-MAR,dec SUN,sat")
        #expect(cron.minutes == [0, 15, 30, 45])
        #expect(cron.hours == [8, 13, 18])
        #expect(cron.daysOfMonth == [1, 15])
        #expect(cron.months == [1, 2, 3, 12])
        #expect(cron.daysOfWeek == [0, 6])
    }

    @Test func sundayIsZeroOrSeven() throws {
        #expect(try CronExpression("0 0 * * 7").daysOfWeek == [0])
    }

    @Test func aliases() throws {
        #expect(try CronExpression("@daily") == CronExpression("0 0 * * *"))
        #expect(try CronExpression("@hourly") == CronExpression("0 * * * *"))
        #expect(try CronExpression("@weekly") == CronExpression("0 0 * * 0"))
        #expect(try CronExpression("@monthly") == CronExpression("0 0 1 * *"))
        #expect(try CronExpression("@yearly") == CronExpression("0 0 1 1 *"))
    }

    @Test(arguments: [
        ("@sometimes", "unknown cron alias '@sometimes' (use @hourly, @daily, @weekly, @monthly or @yearly)"),
        ("60 * * * *", "minute field '60': 60 is out of range 0-59"),
        ("* * 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
        ("* * * FOO *", "month field 'FOO': 'FOO' is not a number or a name"),
        ("*/0 * * * *", "minute field '*/0': step '0' must be a positive number"),
        ("5-1 * * * *", "minute field '5-1': range 5-1 runs backwards"),
        ("1,,2 * * * *", "minute field '1,,2' has an empty list item"),
        ("* * * * * *", "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 6"),
    ])
    func rejects(_ text: String, _ message: String) {
        #expect(throws: CronExpression.ParseError(message: message)) { try CronExpression(text) }
    }
}

@Suite struct TimeSyntaxTests {
    @Test func durations() {
        #expect(DurationText("90s")?.seconds == 90)
        #expect(DurationText("15m")?.seconds == 900)
        #expect(DurationText("1h30m")?.seconds == 5400)
        #expect(DurationText("7d")?.seconds == 604_800)
        for bad in ["", "15", "m", "1x", "0s", "1h 30m", "-5m"] { #expect(DurationText(bad) == nil, "\(bad)") }
    }

    @Test func timestamps() {
        #expect(TimestampText("2026-12-01T08:00")?.components.hour == 8)
        #expect(TimestampText("2026-12-01T08:00")?.offsetSeconds == nil)
        #expect(TimestampText("2026-12-01T08:00:30Z")?.offsetSeconds == 0)
        #expect(TimestampText("2026-12-01T08:00+05:30")?.offsetSeconds == 19_800)
        #expect(TimestampText("2028-02-29")?.components.day == 29)
        for bad in ["2027-02-29", "2026-13-01", "2026-12-01T24:00", "tomorrow", "2026-12-01T08"] {
            #expect(TimestampText(bad) == nil, "\(bad)")
        }
    }
}

@Suite struct ExampleRepositoryTests {
    func exampleFiles() throws -> [ManifestFile] {
        let root = (packageRoot as NSString).appendingPathComponent("examples")
        let paths = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String }
            .filter(ManifestParser.isManifestPath) ?? []
        return try paths.sorted().map {
            ManifestFile(path: $0, contents: try Data(contentsOf: URL(fileURLWithPath: (root as NSString).appendingPathComponent($0))))
        }
    }

    @Test func examplesAreValidAndExpandTheirTemplate() throws {
        let (manifests, problems) = ManifestParser.parse(files: try exampleFiles())
        #expect(problems.isEmpty)
        let state = try DesiredState.build(manifests: manifests, scope: .full,
                                           fileExists: { ["data/hr-export.csv", "data/hr-groups.csv"].contains($0) })
        let collection = try #require(state.objects[ObjectKey(.jobCollection, "nightly-directory-sync")])
        let (_, spec) = try Canonical.decode(kind: .jobCollection, json: collection.spec)
        guard case .jobCollection(let expanded) = spec else { Issue.record("not a collection"); return }
        #expect(expanded.jobs == [
            CollectionEntry(job: "hr-users-to-corp", onFailure: .abort),
            CollectionEntry(job: "hr-groups-to-corp", onFailure: .continue),
            CollectionEntry(job: "corp-users-to-partner", onFailure: .continue),
            CollectionEntry(job: "hr-contractors-to-corp", onFailure: .continue),
        ])
        #expect(expanded.template == "hr-to-directories")
        // The stored raw form keeps the collection as written.
        let (_, raw) = try Canonical.decode(kind: .jobCollection, json: collection.raw)
        guard case .jobCollection(let written) = raw else { Issue.record("not a collection"); return }
        #expect(written.jobs == [CollectionEntry(job: "hr-contractors-to-corp", onFailure: .continue)])
    }

    @Test func decodesEveryJobFieldWithDefaults() throws {
        let (manifests, problems) = ManifestParser.parse(files: try exampleFiles())
        #expect(problems.isEmpty)
        let job = try #require(manifests.first { $0.key == ObjectKey(.job, "hr-users-to-corp") })
        guard case .job(let spec) = job.spec else { Issue.record("not a job"); return }
        #expect(spec.source.connection == "hr-export")
        #expect(spec.source.filter == "status == \"active\"")
        #expect(spec.source.base == nil)
        #expect(spec.destination.rdn == "uid")
        #expect(spec.destination.container == "ou=People,dc=corp,dc=example")
        #expect(spec.mappings.first { $0.key }?.newOnly == true) // keys are always new-only
        #expect(spec.mappings.first { $0.generate == "password" }?.newOnly == true)
        #expect(spec.mappings.first { $0.destination == "telephoneNumber" }?.delimiter == ";")
        #expect(spec.create == true && spec.delete == false)
        #expect(job.location(of: "spec.source.connection") == SourceLocation(file: "jobs/hr-users-to-corp.yaml", line: 8, column: 17))
        #expect(job.location(of: "metadata.name") == SourceLocation(file: "jobs/hr-users-to-corp.yaml", line: 4, column: 9))
    }

    @Test func canonicalJSONIgnoresFormattingAndSpelledOutDefaults() throws {
        let a = """
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata: { name: j }
            spec:
              source: { connection: s }
              destination: { connection: d }
              mappings: [ { source: id, destination: employeeNumber, key: true } ]
            """
        let b = """
            # the same job, written differently
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata:
              name: j
            spec:
              delete: false
              create: true
              mappings:
                - destination: employeeNumber
                  key: true
                  source: id
              destination:
                connection: d
              source:
                connection: s
            """
        let left = try #require(ManifestParser.parse(file: "a.yaml", contents: Data(a.utf8)).manifests.first)
        let right = try #require(ManifestParser.parse(file: "b.yaml", contents: Data(b.utf8)).manifests.first)
        let jsonA = Canonical.json(metadata: left.metadata, spec: left.spec)
        #expect(jsonA == Canonical.json(metadata: right.metadata, spec: right.spec))
        #expect(Canonical.hash(jsonA).count == 64)
        let (metadata, spec) = try Canonical.decode(kind: .job, json: jsonA)
        #expect(metadata == left.metadata && spec == left.spec)
    }

    @Test func severalDocumentsAndEmptyOnesInOneFile() {
        let text = "---\n# nothing here\n---\n" + Fixtures.connection("a") + "---\n" + Fixtures.connection("b") + "---\n"
        let (manifests, problems) = ManifestParser.parse(file: "c.yaml", contents: Data(text.utf8))
        #expect(problems.isEmpty)
        #expect(manifests.map(\.metadata.name) == ["a", "b"])
        #expect(manifests.map(\.location.line) == [4, 9])
    }
}
