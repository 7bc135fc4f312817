import Foundation
import TestSupport
import Testing

/// What a user sees when objects fail: the truth, at the terminal, in the report, and in the exit code.
@Suite struct OutcomeTests {
    static func repository(csv: String) throws -> GitFixture {
        try Fixtures.csvToLDIF(csv: csv, out: "out/corp.ldif", job: "people", extraMappings: ["{ source: title, destination: title }"])
    }

    @Test func failedObjectsMakeARunPartialWithAnErrorsSection() throws {
        var csv = "id,login,title\n1,alice,\"Head of\nSales\"\n"
        for i in 2...14 { csv += "\(i),,Nobody\n" } // no login: no DN
        let fixture = try Self.repository(csv: csv)
        let folder = try TemporaryFolder("outcome")
        let home = try TestHome(fixture, in: folder).arguments

        let preview = try syncwright(["run", "c", "--preview", "--format", "json"] + home)
        let previewJSON = try #require(try JSONSerialization.jsonObject(with: Data(preview.stdout.utf8)) as? [String: Any])
        let previewStats = try #require(((previewJSON["jobs"] as? [[String: Any]])?.first?["stats"]) as? [String: Int])
        #expect(previewStats["created"] == 1 && previewStats["failed"] == 13 && previewStats["read"] == 14)

        let run = try syncwright(["run", "c"] + home)
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains(": partial ("))
        #expect(run.stdout.contains("completedWithErrors"))
        #expect(run.stdout.contains("Errors:\n  people: #2: its rdn attribute uid is empty, so it has no DN\n"))
        #expect(run.stdout.contains("people: 3 more failed"))

        let history = try syncwright(["history", "--format", "json"] + home)
        let runs = try #require((try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]])
        let id = try #require(runs.first?["runId"] as? String)
        let summary = try runProcess("/usr/bin/git", ["--git-dir", fixture.originPath, "show", "reports:runs/c/\(id)/summary.md"])
        #expect(summary.stdout.contains("## Errors\n\n- **people** `#2`: its rdn attribute uid is empty, so it has no DN\n"))
        #expect(summary.stdout.contains("- **people**: 3 more failed, listed in [people.log](people.log)"))

        // The log keeps one line per object: a value with a line break is escaped.
        let logs = try syncwright(["logs", String(id.prefix(18)), "people"] + home)
        #expect(logs.status == 0, "\(logs.stderr)")
        let lines = logs.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "! #2 its rdn attribute uid is empty, so it has no DN")
        #expect(lines.filter { $0.hasPrefix("! ") }.count == 13)
        #expect(lines.last == "+ uid=alice,ou=People,dc=corp")
        let all = try syncwright(["logs", id] + home)
        #expect(all.stdout.hasPrefix("== people (completedWithErrors) ==\n! #2 "))
        #expect(try syncwright(["logs", "nosuch"] + home).stderr.contains("no recorded run has the id 'nosuch'"))
        #expect(try syncwright(["logs", id, "peple"] + home).stderr.contains("has no job 'peple' (did you mean 'people'?)"))
    }

    @Test func historyOfAnUnknownCollectionIsAnError() throws {
        let fixture = try Self.repository(csv: "id,login,title\n1,a,T\n")
        let folder = try TemporaryFolder("history")
        let home = try TestHome(fixture, in: folder).arguments
        let unknown = try syncwright(["history", "d"] + home)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no collection named 'd' is applied or has run (applied: c)"), "\(unknown.stderr)")
        #expect(try syncwright(["history", "c"] + home).status == 0)
    }
}
