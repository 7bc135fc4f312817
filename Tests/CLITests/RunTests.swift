import Foundation
import TestSupport
import Testing

/// A config repository for run tests: HR CSV → corp LDIF → partner LDIF, plus a CSV export.
func runFixture(hr: String = RunFixture.hr, jobOptions: String = "delete: true\n  deleteThreshold: { count: 2 }") throws -> GitFixture {
    try GitFixture(files: [
        "connections.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: hr }
            spec: { type: csv, repoPath: data/hr.csv }
            ---
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: corp }
            spec: { type: ldif, path: corp.ldif }
            ---
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: partner }
            spec: { type: ldif, path: partner.ldif }
            ---
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: missing }
            spec: { type: csv, path: nowhere/missing.csv }
            ---
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: export }
            spec: { type: csv, path: export/people.csv, delimiter: ";" }

            """,
        "data/hr.csv": hr,
        "jobs/hr-to-corp.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata: { name: hr-to-corp }
            spec:
              source: { connection: hr, filter: 'status == "active"' }
              destination: { connection: corp, objectClass: [inetOrgPerson], container: "ou=People,dc=corp", rdn: uid }
              mappings:
                - { source: id, destination: employeeNumber, key: true }
                - { source: login, destination: uid }
                - { destination: cn, value: "{{given}} {{sn}}" }
                - { source: sn, destination: sn }
                - { source: title, destination: title }
                - { source: phones, destination: telephoneNumber, delimiter: "|" }
                - { destination: userPassword, generate: password }
              \(jobOptions)

            """,
        "jobs/corp-to-partner.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata: { name: corp-to-partner }
            spec:
              source: { connection: corp, base: "ou=People,dc=corp" }
              destination: { connection: partner, objectClass: [inetOrgPerson], container: "ou=Corp,dc=partner", rdn: uid }
              mappings:
                - { source: employeeNumber, destination: employeeNumber, key: true }
                - { source: uid, destination: uid }
                - { source: cn, destination: cn }
                - { source: sn, destination: sn }

            """,
        "jobs/broken.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata: { name: broken }
            spec:
              source: { connection: missing }
              destination: { connection: partner }
              mappings: [ { source: id, destination: employeeNumber, key: true } ]

            """,
        "jobs/export.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata: { name: export }
            spec:
              source: { connection: corp }
              destination: { connection: export }
              mappings:
                - { source: employeeNumber, destination: id, key: true }
                - { source: cn, destination: name }
                - { source: telephoneNumber, destination: phones, delimiter: "," }

            """,
        "collections.yaml": """
            apiVersion: syncwright.dev/v1
            kind: JobCollection
            metadata: { name: chain }
            spec: { jobs: [ { job: hr-to-corp }, { job: corp-to-partner } ] }
            ---
            apiVersion: syncwright.dev/v1
            kind: JobCollection
            metadata: { name: abort-first }
            spec: { jobs: [ { job: broken, onFailure: abort }, { job: hr-to-corp } ] }
            ---
            apiVersion: syncwright.dev/v1
            kind: JobCollection
            metadata: { name: continue-first }
            spec: { jobs: [ { job: broken, onFailure: continue }, { job: hr-to-corp } ] }
            ---
            apiVersion: syncwright.dev/v1
            kind: JobCollection
            metadata: { name: full }
            spec: { jobs: [ { job: hr-to-corp }, { job: corp-to-partner }, { job: export } ] }

            """,
    ])
}

enum RunFixture {
    static let hr = """
        id,login,given,sn,title,phones,status
        1,ajohnson,Alice,Johnson,Engineer,+49 1|+49 2,active
        2,bsmith,Bob,"Smith, Jr","Lead ""Identity"" Architect",,active
        3,dmuller,Dörte,Müller,Analyst,,active
        4,eold,Evan,Old,Retired,,inactive

        """
}

/// A home made from `fixture` (init and apply), with what the run tests read of it.
struct Home {
    let fixture: GitFixture
    let folder: TemporaryFolder
    let home: TestHome
    var args: [String] { home.arguments }
    func file(_ name: String) throws -> String { try String(contentsOfFile: folder.sub("home/\(name)"), encoding: .utf8) }
    func bytes(_ name: String) -> Data? { FileManager.default.contents(atPath: folder.sub("home/\(name)")) }

    init(_ fixture: GitFixture) throws {
        self.fixture = fixture
        folder = try TemporaryFolder()
        home = try TestHome(fixture, in: folder, name: "home")
    }

    func run(_ collection: String, _ extra: [String] = []) throws -> (ProcessResult, [String: Any]) {
        let result = try syncwright(["run", collection, "--format", "json"] + extra + args)
        let report = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? [:]
        return (result, report)
    }
}

func stats(_ report: [String: Any], _ job: Int) -> [String: Int] {
    ((report["jobs"] as? [[String: Any]])?[job]["stats"] as? [String: Int]) ?? [:]
}

func jobField(_ report: [String: Any], _ job: Int, _ field: String) -> String? {
    (report["jobs"] as? [[String: Any]])?[job][field] as? String
}

@Suite struct RunEndToEndTests {
    @Test func aRunWritesEveryEntryAndASecondRunIsAllUnchanged() throws {
        let home = try Home(try runFixture())
        let (first, report) = try home.run("chain")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(report["status"] as? String == "succeeded")
        #expect(report["trigger"] as? String == "manual")
        #expect(report["revision"] as? String == (try home.fixture.git(["rev-parse", "HEAD"])).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(stats(report, 0) == ["read": 3, "created": 3, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0, "failed": 0, "unresolved": 0])
        #expect(stats(report, 1)["created"] == 3)
        let corp = try home.file("corp.ldif")
        #expect(corp.contains("dn: uid=ajohnson,ou=People,dc=corp\nobjectClass: inetOrgPerson\nemployeeNumber: 1\nuid: ajohnson\ncn: Alice Johnson\nsn: Johnson\ntitle: Engineer\ntelephoneNumber: +49 1\ntelephoneNumber: +49 2\nuserPassword: "))
        #expect(corp.contains("dn: uid=bsmith,ou=People,dc=corp\n"))
        #expect(corp.contains("sn: Smith, Jr\n"))
        #expect(corp.contains("title: Lead \"Identity\" Architect\n"))
        #expect(corp.contains("cn:: RMO2cnRlIE3DvGxsZXI=\n")) // "Dörte Müller", base64 because it is not ASCII
        #expect(!corp.contains("eold"))
        #expect(try home.file("partner.ldif").contains("dn: uid=bsmith,ou=Corp,dc=partner\n"))

        let (second, again) = try home.run("chain")
        #expect(second.status == 0)
        #expect(stats(again, 0) == ["read": 3, "created": 0, "updated": 0, "deleted": 0, "unchanged": 3, "skipped": 0, "failed": 0, "unresolved": 0])
        #expect(stats(again, 1)["unchanged"] == 3)
        #expect(try home.file("corp.ldif") == corp) // even the generated passwords stay (new-only)
    }

    @Test func aChangedSourceRowUpdatesExactlyThatAttribute() throws {
        let home = try Home(try runFixture())
        _ = try home.run("chain")
        let before = try home.file("corp.ldif")
        try home.fixture.write(["data/hr.csv": RunFixture.hr.replacingOccurrences(of: "Engineer", with: "Principal Engineer")])
        try home.fixture.commit("promotion")
        #expect(try syncwright(["apply"] + home.args).status == 0)
        let (result, report) = try home.run("chain")
        #expect(result.status == 0)
        #expect(stats(report, 0) == ["read": 3, "created": 0, "updated": 1, "deleted": 0, "unchanged": 2, "skipped": 0, "failed": 0, "unresolved": 0])
        #expect(try home.file("corp.ldif") == before.replacingOccurrences(of: "title: Engineer", with: "title: Principal Engineer"))
        let runID = try #require(report["runId"] as? String)
        let log = try runProcess("/usr/bin/sqlite3", [home.folder.sub("home/state.sqlite"),
                                                      "SELECT log FROM jobRuns WHERE runId = '\(runID)' AND job = 'hr-to-corp'"])
        #expect(log.stdout == "~ uid=ajohnson,ou=People,dc=corp title: Engineer → Principal Engineer\n")
    }

    @Test func aKeyPreservingLoginChangeRenames() throws {
        let home = try Home(try runFixture())
        _ = try home.run("chain")
        try home.fixture.write(["data/hr.csv": RunFixture.hr.replacingOccurrences(of: "1,ajohnson", with: "1,ajones")])
        try home.fixture.commit("name change")
        #expect(try syncwright(["apply"] + home.args).status == 0)
        let (_, report) = try home.run("chain")
        #expect(stats(report, 0)["updated"] == 1)
        let corp = try home.file("corp.ldif")
        #expect(corp.contains("dn: uid=ajones,ou=People,dc=corp\n") && !corp.contains("uid=ajohnson"))
        #expect(try home.file("partner.ldif").contains("dn: uid=ajones,ou=Corp,dc=partner\n"))
    }

    @Test func deleteRemovesLeaversOnlyWhenTheJobSaysSo() throws {
        let withDelete = try Home(try runFixture())
        _ = try withDelete.run("chain")
        try withDelete.fixture.write(["data/hr.csv": RunFixture.hr.replacingOccurrences(of: "active\n2,bsmith", with: "active\n2,bsmith")
            .replacingOccurrences(of: "3,dmuller,Dörte,Müller,Analyst,,active\n", with: "")])
        try withDelete.fixture.commit("leaver")
        #expect(try syncwright(["apply"] + withDelete.args).status == 0)
        let (_, report) = try withDelete.run("chain")
        #expect(stats(report, 0)["deleted"] == 1)
        #expect(!(try withDelete.file("corp.ldif")).contains("uid=dmuller"))

        let keep = try Home(try runFixture(jobOptions: "delete: false"))
        _ = try keep.run("chain")
        try keep.fixture.write(["data/hr.csv": RunFixture.hr.replacingOccurrences(of: "3,dmuller,Dörte,Müller,Analyst,,active\n", with: "")])
        try keep.fixture.commit("leaver")
        #expect(try syncwright(["apply"] + keep.args).status == 0)
        let (_, kept) = try keep.run("chain")
        #expect(stats(kept, 0)["deleted"] == 0 && stats(kept, 0)["unchanged"] == 2)
        #expect(try keep.file("corp.ldif").contains("uid=dmuller"))
    }

    @Test func theEmptySourceGuardFailsTheJobAndDeletesNothing() throws {
        let home = try Home(try runFixture())
        _ = try home.run("chain")
        let before = home.bytes("corp.ldif")
        try home.fixture.write(["data/hr.csv": "id,login,given,sn,title,phones,status\n"])
        try home.fixture.commit("export broke")
        #expect(try syncwright(["apply"] + home.args).status == 0)
        let (result, report) = try home.run("chain")
        #expect(result.status == 1)
        #expect(report["status"] as? String == "aborted")
        #expect(jobField(report, 0, "error") == "the source returned no entries, so nothing was changed (set allowEmptySource: true if that is expected)")
        #expect(jobField(report, 1, "status") == "notRun")
        #expect(home.bytes("corp.ldif") == before)
        let text = try syncwright(["run", "chain"] + home.args)
        #expect(text.stdout.contains("hr-to-corp: the source returned no entries"))
    }

    @Test func theDeleteThresholdFailsTheJobAndWritesNothing() throws {
        let home = try Home(try runFixture())
        _ = try home.run("chain")
        let before = home.bytes("corp.ldif")
        // Everyone leaves but one, and someone new arrives: 3 deletes > threshold 2, and the create is not written either.
        try home.fixture.write(["data/hr.csv": "id,login,given,sn,title,phones,status\n9,new,N,N,x,,active\n"])
        try home.fixture.commit("mass exit")
        #expect(try syncwright(["apply"] + home.args).status == 0)
        let (result, report) = try home.run("chain")
        #expect(result.status == 1)
        #expect(jobField(report, 0, "error") == "would delete 3, threshold 2; nothing was changed (raise deleteThreshold if that is expected)")
        #expect(stats(report, 0)["created"] == 0 && stats(report, 0)["deleted"] == 0)
        #expect(home.bytes("corp.ldif") == before)
    }

    @Test func abortStopsTheRestAndContinueGoesOn() throws {
        let home = try Home(try runFixture())
        let (aborted, abortReport) = try home.run("abort-first")
        #expect(aborted.status == 1)
        #expect(abortReport["status"] as? String == "aborted")
        #expect(jobField(abortReport, 0, "error") == "connection missing: cannot read \(home.folder.sub("home/nowhere/missing.csv")): the file does not exist")
        #expect(jobField(abortReport, 1, "status") == "notRun")
        #expect(home.bytes("corp.ldif") == nil)

        let (partial, partialReport) = try home.run("continue-first")
        #expect(partial.status == 3, "a partial run has an exit code of its own")
        #expect(partialReport["status"] as? String == "partial")
        #expect(jobField(partialReport, 1, "status") == "succeeded")
        #expect(stats(partialReport, 1)["created"] == 3)
        let text = try syncwright(["run", "continue-first"] + home.args)
        #expect(text.stdout.contains(": partial (manual, revision "))
        #expect(text.stdout.contains("broken: connection missing: cannot read"))
    }

    @Test func previewWritesNothingAndRecordsNothing() throws {
        let home = try Home(try runFixture())
        _ = try home.run("chain")
        try home.fixture.write(["data/hr.csv": RunFixture.hr.replacingOccurrences(of: "Engineer", with: "CTO")
            + "5,fnew,Fay,New,Intern,,active\n"])
        try home.fixture.commit("changes")
        #expect(try syncwright(["apply"] + home.args).status == 0)
        let corp = home.bytes("corp.ldif"), partner = home.bytes("partner.ldif")
        let historyBefore = try syncwright(["history", "--format", "json"] + home.args).stdout
        let preview = try syncwright(["run", "full", "--preview"] + home.args)
        #expect(preview.status == 0, "\(preview.stderr)")
        #expect(preview.stdout.contains("hr-to-corp: read 4; 1 to create, 1 to update, 0 to rename, 0 to delete, 2 unchanged, 0 skipped, 0 failed"))
        #expect(preview.stdout.contains("  ~ uid=ajohnson,ou=People,dc=corp title: Engineer → CTO"))
        #expect(preview.stdout.contains("  + uid=fnew,ou=People,dc=corp"))
        // The next job sees what the first would have written.
        #expect(preview.stdout.contains("corp-to-partner: read 4; 1 to create"))
        #expect(home.bytes("corp.ldif") == corp)
        #expect(home.bytes("partner.ldif") == partner)
        #expect(home.bytes("export/people.csv") == nil)
        #expect(try syncwright(["history", "--format", "json"] + home.args).stdout == historyBefore)
    }

    @Test func aCSVDestinationJoinsMultipleValues() throws {
        let home = try Home(try runFixture())
        let (result, _) = try home.run("full")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try home.file("export/people.csv") == """
            id;name;phones
            1;Alice Johnson;+49 1,+49 2
            2;Bob Smith, Jr;
            3;Dörte Müller;

            """)
    }

    @Test func historyAndStatusCountRuns() throws {
        let home = try Home(try runFixture())
        let (_, first) = try home.run("chain")
        _ = try home.run("abort-first")
        let (_, last) = try home.run("chain")
        let all = try syncwright(["history", "--format", "json"] + home.args)
        let runs = try #require((try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]])
        #expect(runs.count == 3)
        #expect(runs.first?["runId"] as? String == last["runId"] as? String)
        #expect(runs.last?["runId"] as? String == first["runId"] as? String)
        let keys = Set(runs.first?.keys.map { $0 } ?? [])
        #expect(keys == ["runId", "collection", "trigger", "revision", "status", "startedAt", "finishedAt", "jobs"])
        let job = try #require((runs.first?["jobs"] as? [[String: Any]])?.first)
        #expect(Set(job.keys) == ["name", "status", "stats", "durationMs"])
        let chainOnly = try syncwright(["history", "chain"] + home.args)
        #expect(chainOnly.stdout.split(separator: "\n").count == 3) // header + 2 runs

        let status = try syncwright(["status", "--format", "json"] + home.args)
        let collections = try #require((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["collections"] as? [[String: Any]])
        let chain = try #require(collections.first { $0["name"] as? String == "chain" })
        #expect(chain["timesRun"] as? Int == 2)
        #expect(chain["lastOutcome"] as? String == "succeeded")
        #expect(chain["lastRun"] as? String == last["startedAt"] as? String)
        let full = try #require(collections.first { $0["name"] as? String == "full" })
        #expect(full["timesRun"] as? Int == 0 && full["lastRun"] is NSNull)
    }

    @Test func runningSomethingUnknownSaysWhatIsApplied() throws {
        let home = try Home(try runFixture())
        let result = try syncwright(["run", "nightly"] + home.args)
        #expect(result.status == 1)
        #expect(result.stderr == "error: no collection named 'nightly' is applied (applied: abort-first, chain, continue-first, full)\n")
    }
}

@Suite struct ProgressTests {
    /// 25,000 rows: the engine reports progress every 10,000 objects.
    func bigHome() throws -> Home {
        var rows = "id,login,given,sn,title,phones,status\n"
        for i in 0..<25_000 { rows += "\(i + 10),u\(i),G,S,T,,active\n" }
        return try Home(try runFixture(hr: rows, jobOptions: "delete: false"))
    }

    @Test func withoutATerminalARunPrintsNoProgress() throws {
        let home = try bigHome()
        let result = try syncwright(["run", "chain"] + home.args)
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        #expect(!result.stdout.contains("\r"))
    }

    @Test func onATerminalARunShowsALiveProgressLine() throws {
        let home = try bigHome()
        // `script` gives the command a pseudo-terminal and records what it printed there.
        let command = ([binary, "run", "chain"] + home.args).map { "'\($0)'" }.joined(separator: " ")
        let result = try runProcess("/usr/bin/script", ["-qefc", command, "/dev/null"])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("hr-to-corp: reading 10000 objects"))
        #expect(result.stdout.contains("hr-to-corp: writing 10000 of 25000 objects (40%"), "a total and a percentage")
        #expect(result.stdout.contains("/s)"))
        #expect(result.stdout.contains("\r\u{1B}[K")) // the line is redrawn, then cleared
        #expect(result.stdout.contains("Run ") && result.stdout.contains(" of chain: succeeded"))
    }
}
