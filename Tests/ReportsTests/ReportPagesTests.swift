import Foundation
import GitKit
import Reports
import TestSupport
import Testing

@Suite struct ReportPagesTests {
    static let started = Date(timeIntervalSince1970: 1_795_572_000) // 2026-11-25T02:00:00Z

    static func report(collection: String = "nightly", runId: String = "20261125T020000Z-ab12",
                       status: RunStatus = .partial) -> RunReport {
        RunReport(runId: runId, collection: collection, trigger: .manual,
                  revision: String(repeating: "a", count: 40), status: status, startedAt: started,
                  finishedAt: started.addingTimeInterval(1.25),
                  jobs: [
                      .init(name: "hr-users", status: .succeeded,
                            stats: .init(read: 10, created: 12, updated: 3, deleted: 0, unchanged: 1), durationMs: 800),
                      .init(name: "partner", status: .failed, stats: .init(read: 2, updated: 1, failed: 1), durationMs: 400,
                            error: "1 object failed | see log"),
                      .init(name: "later", status: .notRun, stats: .init(), durationMs: 0, error: "needs an approval"),
                  ])
    }

    @Test func aRunPublishesItsSummaryReportAndLogs() throws {
        let publication = ReportPages.publication(
            for: Self.report(), logs: ["hr-users": ["+ uid=a,ou=People", "~ uid=b,ou=People mail: a → b"], "partner": ["! uid=c boom"]])
        #expect(publication.files.map(\.path) == [
            "runs/nightly/20261125T020000Z-ab12/summary.md", "runs/nightly/20261125T020000Z-ab12/report.json",
            "runs/nightly/20261125T020000Z-ab12/hr-users.log", "runs/nightly/20261125T020000Z-ab12/partner.log",
        ])
        #expect(publication.message == """
            run nightly 20261125T020000Z-ab12: partial (3 jobs, +12 ~4 -0)

            Syncwright-Revision: \(String(repeating: "a", count: 40))
            Syncwright-Run: 20261125T020000Z-ab12

            """)
        let summary = publication.files[0].text
        #expect(summary.contains("| Manifest revision | `\(String(repeating: "a", count: 40))` |"))
        #expect(summary.contains("| Started | 2026-11-25T02:00:00.000Z |"))
        #expect(summary.contains("| Duration | 1.250 s |"))
        #expect(summary.contains("| hr-users | succeeded | 10 | 12 | 3 | 0 | 1 | 0 | 0 | 800 ms | [hr-users.log](hr-users.log) |"))
        #expect(summary.contains("| later | notRun | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 ms |  |"))
        // Errors follow the table, one line each, with table-breaking characters escaped.
        #expect(summary.hasSuffix("## Errors\n\n- **partner**: 1 object failed \\| see log\n- **later**: needs an approval\n"))
        #expect(try RunReport.decode(publication.files[1].text) == Self.report())
        #expect(publication.files[2].text == "+ uid=a,ou=People\n~ uid=b,ou=People mail: a → b\n")
        // It survives the outbox's JSON unchanged.
        #expect(try Publication.decode(publication.json()) == publication)
    }

    @Test func anApplyPageNamesTheRevisionAndWhoCommittedIt() {
        let change = AppliedChange(revision: "0123456789abcdef0123456789abcdef01234567", appliedAt: Self.started,
                                   created: 2, updated: 1, deleted: 0, planMarkdown: "### Plan\n\n- create Job a\n",
                                   author: "Ada <ada@corp.example>", committer: "Bot <bot@corp.example>", summary: "Add job a")
        let publication = ReportPages.publication(for: change)
        #expect(publication.files.map(\.path) == ["applies/20261125T020000Z-0123456.md"])
        #expect(publication.message.hasPrefix("apply 0123456: +2 ~1 -0\n\nSyncwright-Revision: 0123456789abcdef"))
        let page = publication.files[0].text
        #expect(page.contains("| Author | Ada <ada@corp.example> |"))
        #expect(page.contains("| Committer | Bot <bot@corp.example> |"))
        #expect(page.contains("### Plan\n\n- create Job a"))
    }

    @Test func theReadmeIsBuiltFromTheBranchItself() throws {
        let fixture = try GitFixture(files: ["a.yaml": "a: 1\n"])
        let home = try TemporaryFolder()
        let repo = try GitRepository.cloneBare(from: fixture.originURL, to: home.sub("repo.git"))
        let publisher = ReportPublisher(repository: repo, branch: "reports",
                                        author: GitSignature(name: "Syncwright", email: "syncwright@localhost"),
                                        credentials: .none)
        let first = ReportPages.publication(for: Self.report(runId: "20261125T020000Z-0001", status: .succeeded), logs: [:])
        let second = ReportPages.publication(for: Self.report(runId: "20261125T030000Z-0002", status: .failed), logs: [:])
        let other = ReportPages.publication(for: Self.report(collection: "weekly", runId: "20261125T010000Z-0003"), logs: [:])
        let commits = try publisher.publish([first, second, other]).commits
        #expect(commits.count == 3)
        let origin = fixture.originPath
        #expect(try fixture.git(["rev-parse", "reports"], in: origin).trimmingCharacters(in: .whitespacesAndNewlines) == commits[2].hex)
        let readme = try fixture.git(["show", "reports:README.md"], in: origin)
        #expect(readme.contains("| nightly | [20261125T030000Z-0002](runs/nightly/20261125T030000Z-0002/summary.md) | **failed** | 2026-11-25T02:00:01.250Z | 2 |"))
        #expect(readme.contains("| weekly | [20261125T010000Z-0003](runs/weekly/20261125T010000Z-0003/summary.md) | **partial** |"))
        // Two runs in the same second: the later start is the latest, whatever the random part says.
        var early = Self.report(runId: "20261125T040000Z-ffff", status: .succeeded)
        early.startedAt = Self.started.addingTimeInterval(7_200.1)
        var late = Self.report(runId: "20261125T040000Z-0001", status: .aborted)
        late.startedAt = Self.started.addingTimeInterval(7_200.6)
        _ = try publisher.publish([ReportPages.publication(for: early, logs: [:])])
        _ = try publisher.publish([ReportPages.publication(for: late, logs: [:])])
        #expect(try fixture.git(["show", "reports:README.md"], in: origin)
                .contains("| nightly | [20261125T040000Z-0001](runs/nightly/20261125T040000Z-0001/summary.md) | **aborted** |"))
        _ = try publisher.publish([ReportPages.publication(for: Self.report(collection: "weekly", runId: "20261125T050000Z-0004"), logs: [:])])
        #expect(try fixture.git(["show", "reports:README.md"], in: origin)
                .contains("| nightly | [20261125T040000Z-0001](runs/nightly/20261125T040000Z-0001/summary.md) | **aborted** | 2026-11-25T02:00:01.250Z | 4 |"))
        // The branch's first commit has a README (nightly had run once); within a batch, the
        // commits between keep the README they had, and the batch's last brings it up to date.
        let firstReadme = try fixture.git(["show", "reports~5:README.md"], in: origin)
        #expect(firstReadme.contains("| **succeeded** | 2026-11-25T02:00:01.250Z | 1 |"))
        #expect(try fixture.git(["show", "reports~4:README.md"], in: origin) == firstReadme)
        #expect(try fixture.git(["show", "reports~3:README.md"], in: origin).contains("| weekly | [20261125T010000Z-0003]"))
    }

    @Test func timestampsReadBackPrintTheSame() throws {
        for _ in 0..<2_000 {
            let date = Date(timeIntervalSince1970: Double.random(in: 0...4_000_000_000))
            let text = RunReport.timestamp(date)
            let back = try #require(RunReport.parseTimestamp(text))
            #expect(RunReport.timestamp(back) == text)
            #expect(abs(back.timeIntervalSince(date)) <= 0.0005 + 1e-6)
        }
        #expect(RunReport.timestamp(Self.started.addingTimeInterval(0.9999)) == "2026-11-25T02:00:01.000Z")
        #expect(RunReport.timestamp(Self.started.addingTimeInterval(0.0255)) == "2026-11-25T02:00:00.026Z")
    }
}
