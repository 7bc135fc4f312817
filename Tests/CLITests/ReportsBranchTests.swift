import Foundation
import TestSupport
import Testing

/// Reads the origin's reports branch with the git CLI: the independent oracle.
struct ReportsBranch {
    let fixture: GitFixture
    var origin: String { fixture.originPath }

    func git(_ arguments: [String]) throws -> String { try fixture.git(arguments, in: origin) }
    func show(_ path: String) throws -> String { try git(["show", "reports:\(path)"]) }
    func files() throws -> [String] { try git(["ls-tree", "-r", "--name-only", "reports"]).split(separator: "\n").map(String.init) }
    func runFolders(_ collection: String) throws -> [String] {
        try git(["ls-tree", "--name-only", "reports:runs/\(collection)"]).split(separator: "\n").map(String.init)
    }
    func commitCount() throws -> Int { Int(try git(["rev-list", "--count", "reports"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
    func mergeCount() throws -> Int { Int(try git(["rev-list", "--count", "--merges", "reports"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
}

@Suite struct ReportsBranchTests {
    @Test func runsAndAppliesArePublishedToTheOrigin() throws {
        let home = try Home(try runFixture())
        let branch = ReportsBranch(fixture: home.fixture)
        let revision = try home.fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        // The apply made by Home(_:) is already there.
        let applies = try branch.files().filter { $0.hasPrefix("applies/") }
        #expect(applies.count == 1)
        #expect(applies.first?.hasSuffix("-\(revision.prefix(7)).md") == true)
        #expect(try branch.show(applies[0]).contains("| Author | Ada Admin <ada@corp.example> |"))
        #expect(try branch.show(applies[0]).contains("| create | Job | `hr-to-corp` |"))

        let (result, report) = try home.run("chain")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("Published 1 report to reports (commit "))
        let runID = try #require(report["runId"] as? String)
        let folder = "runs/chain/\(runID)"
        #expect(try branch.files().filter { $0.hasPrefix(folder) }.sorted()
                == ["\(folder)/corp-to-partner.log", "\(folder)/hr-to-corp.log", "\(folder)/report.json", "\(folder)/summary.md"])
        // report.json is the run's own report: the same document `history --format json` lists.
        let published = try JSONSerialization.jsonObject(with: Data(try branch.show("\(folder)/report.json").utf8)) as? [String: Any]
        let history = try JSONSerialization.jsonObject(with: Data(try syncwright(["history", "--format", "json"] + home.args).stdout.utf8))
        let listed = ((history as? [String: Any])?["runs"] as? [[String: Any]])?.first
        #expect(NSDictionary(dictionary: published ?? [:]).isEqual(to: listed ?? [:]))
        #expect(published?["revision"] as? String == revision)
        #expect(stats(published ?? [:], 0) == ["read": 3, "created": 3, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0, "failed": 0, "unresolved": 0])
        // One log line per object.
        #expect(try branch.show("\(folder)/hr-to-corp.log")
                == "+ uid=ajohnson,ou=People,dc=corp\n+ uid=bsmith,ou=People,dc=corp\n+ uid=dmuller,ou=People,dc=corp\n")
        let summary = try branch.show("\(folder)/summary.md")
        #expect(summary.contains("| Manifest revision | `\(revision)` |"))
        #expect(summary.contains("| hr-to-corp | succeeded | 3 | 3 | 0 | 0 | 0 | 0 | 0 |"))
        #expect(try branch.show("README.md").contains("| chain | [\(runID)](runs/chain/\(runID)/summary.md) | **succeeded** |"))
        // The commit says what it holds, with trailers.
        #expect(try branch.git(["log", "-1", "--format=%s", "reports"]) == "run chain \(runID): succeeded (2 jobs, +6 ~0 -0)\n")
        #expect(try branch.git(["log", "-1", "--format=%(trailers:key=Syncwright-Revision,valueonly)%(trailers:key=Syncwright-Run,valueonly)", "reports"])
                .split(separator: "\n") == [Substring(revision), Substring(runID)])
        #expect(try branch.git(["log", "-1", "--format=%an <%ae>", "reports"]) == "Syncwright <syncwright@localhost>\n")

        // An update is logged as old → new, and a second apply gets its own page.
        try home.fixture.write(["data/hr.csv": RunFixture.hr.replacingOccurrences(of: "Engineer", with: "Principal Engineer")])
        let second = try home.fixture.commit("promotion")
        #expect(try syncwright(["apply"] + home.args).stdout.contains("Published 1 report to reports"))
        #expect(try branch.files().contains { $0.hasPrefix("applies/") && $0.hasSuffix("-\(second.prefix(7)).md") })
        let (_, updated) = try home.run("chain")
        let updateID = try #require(updated["runId"] as? String)
        #expect(try branch.show("runs/chain/\(updateID)/hr-to-corp.log")
                == "~ uid=ajohnson,ou=People,dc=corp title: Engineer → Principal Engineer\n")
        #expect(try branch.show("README.md").contains("| chain | [\(updateID)](runs/chain/\(updateID)/summary.md) | **succeeded** | "))
        #expect(try branch.show("README.md").contains(" | 2 |\n"))
        #expect(try branch.mergeCount() == 0)
        #expect(try branch.commitCount() == 4)
        // A preview publishes nothing.
        _ = try home.run("chain", ["--preview"])
        #expect(try branch.commitCount() == 4)
    }

    @Test func theLogIsCappedAndTheCountsStayExact() throws {
        let home = try Home(try runFixture())
        let config = home.folder.sub("home/config.yaml")
        try (try String(contentsOfFile: config, encoding: .utf8) + "jobLogLines: 2\n").write(toFile: config, atomically: true, encoding: .utf8)
        let (result, report) = try home.run("chain")
        #expect(result.status == 0, "\(result.stderr)")
        let runID = try #require(report["runId"] as? String)
        let branch = ReportsBranch(fixture: home.fixture)
        #expect(try branch.show("runs/chain/\(runID)/hr-to-corp.log") == """
            + uid=ajohnson,ou=People,dc=corp
            + uid=bsmith,ou=People,dc=corp
            … 1 more changes not kept in this log; the counts are exact

            """)
        let published = try JSONSerialization.jsonObject(with: Data(try branch.show("runs/chain/\(runID)/report.json").utf8)) as? [String: Any]
        #expect(stats(published ?? [:], 0)["created"] == 3)
    }

    @Test func noSecretValueReachesTheBranch() throws {
        let csv = { (password: String, pin: String) in "id,login,pw,pin\n1,ajohnson,\(password),\(pin)\n2,bsmith,Bob-\(password),\(pin)-2\n" }
        let fixture = try GitFixture(files: [
            "all.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: hr }
                spec: { type: csv, repoPath: data/hr.csv, secretAttributes: [roomCode] }
                ---
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: corp }
                spec: { type: ldif, path: corp.ldif }
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: accounts }
                spec:
                  source: { connection: hr }
                  destination: { connection: corp, objectClass: [inetOrgPerson], container: "ou=People,dc=corp", rdn: uid }
                  secretAttributes: [pinCode]
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }
                    - { source: pw, destination: userPassword }
                    - { source: pin, destination: pinCode }
                    - { source: pin, destination: roomCode }
                    - { destination: carLicense, generate: password }
                ---
                apiVersion: syncwright.dev/v1
                kind: JobCollection
                metadata: { name: accounts }
                spec: { jobs: [ { job: accounts } ] }

                """,
            "data/hr.csv": csv("Hunter2-Initial", "4711-PIN"),
        ])
        let home = try Home(fixture)
        #expect(try home.run("accounts").0.status == 0)
        try fixture.write(["data/hr.csv": csv("Hunter3-Changed", "0815-PIN")])
        try fixture.commit("rotate")
        #expect(try syncwright(["apply"] + home.args).status == 0)
        let preview = try syncwright(["run", "accounts", "--preview"] + home.args)
        #expect(preview.stdout.contains("~ uid=ajohnson,ou=People,dc=corp userPassword: •••••• → ••••••"), "\(preview.stdout)")
        let (result, report) = try home.run("accounts")
        #expect(result.status == 0, "\(result.stderr)")
        let runID = try #require(report["runId"] as? String)
        let branch = ReportsBranch(fixture: fixture)
        let log = try branch.show("runs/accounts/\(runID)/accounts.log")
        #expect(log.contains("~ uid=ajohnson,ou=People,dc=corp userPassword: •••••• → ••••••"))
        #expect(log.contains("~ uid=ajohnson,ou=People,dc=corp pinCode: •••••• → ••••••"))
        #expect(log.contains("~ uid=ajohnson,ou=People,dc=corp roomCode: •••••• → ••••••"))

        // The destination holds the real values; the reports branch, in every commit, holds none.
        let corp = try home.file("corp.ldif")
        #expect(corp.contains("userPassword: Hunter3-Changed\n"))
        let generated = try #require(corp.split(separator: "\n").first { $0.hasPrefix("carLicense:") })
        let generatedValue = generated.hasPrefix("carLicense:: ")
            ? String(decoding: Data(base64Encoded: String(generated.dropFirst(13))) ?? Data(), as: UTF8.self)
            : String(generated.dropFirst(12))
        #expect(generatedValue.count >= 12)
        let commits = try branch.git(["rev-list", "reports"]).split(separator: "\n").map(String.init)
        #expect(commits.count == 4)
        for secret in ["Hunter2-Initial", "Hunter3-Changed", "4711-PIN", "0815-PIN", generatedValue] {
            let grep = try runProcess("/usr/bin/git", ["grep", "-F", "-e", secret] + commits, in: branch.origin)
            #expect(grep.status == 1, "\(secret) found on the reports branch: \(grep.stdout)")
            #expect(!preview.stdout.contains(secret))
        }
    }

    @Test func anUnreachableOriginQueuesTheReportUntilReconcile() throws {
        let home = try Home(try runFixture())
        let branch = ReportsBranch(fixture: home.fixture)
        let away = home.fixture.originPath + ".away"
        try FileManager.default.moveItem(atPath: home.fixture.originPath, toPath: away)
        let (result, report) = try home.run("chain")
        #expect(result.status == 0) // the run itself succeeded
        #expect(result.stderr.contains("warning: could not publish to the reports branch of \(home.fixture.originURL)"), "\(result.stderr)")
        #expect(result.stderr.contains("1 report stays queued for the next run, apply or reconcile"))
        // Said once, with what to check, not libgit2's bare words.
        #expect(result.stderr.components(separatedBy: "reports not published").count == 1, "\(result.stderr)")
        #expect(result.stderr.components(separatedBy: "warning:").count == 2, "\(result.stderr)")
        #expect(result.stderr.contains("check that \(home.fixture.originURL) exists and can be reached from here"), "\(result.stderr)")
        let runID = try #require(report["runId"] as? String)
        let status = try syncwright(["status"] + home.args)
        #expect(status.stdout.contains("1 report not yet published to reports"))
        let json = try JSONSerialization.jsonObject(with: Data(try syncwright(["status", "--format", "json"] + home.args).stdout.utf8)) as? [String: Any]
        #expect(json?["unpublishedReports"] as? Int == 1)

        try FileManager.default.moveItem(atPath: away, toPath: home.fixture.originPath)
        let reconcile = try syncwright(["reconcile", "--once"] + home.args)
        #expect(reconcile.status == 0, "\(reconcile.stderr)")
        #expect(reconcile.stdout.contains("nothing to apply"))
        #expect(reconcile.stdout.contains("Published 1 report to reports"))
        #expect(try branch.files().contains("runs/chain/\(runID)/report.json"))
        #expect(try syncwright(["status"] + home.args).stdout.contains("not yet published") == false)
        // Nothing is published twice.
        let again = try syncwright(["reconcile", "--once"] + home.args)
        #expect(!again.stdout.contains("Published"))
        #expect(try branch.runFolders("chain") == [runID])
    }

    @Test func aRemoteThatRefusesIsReportedAtOnceWithItsReason() throws {
        let home = try Home(try runFixture())
        let hook = home.fixture.originPath + "/hooks/pre-receive"
        try "#!/bin/sh\necho 'reports are frozen today' >&2\nexit 1\n".write(toFile: hook, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook)
        let started = Date()
        let (result, _) = try home.run("chain")
        #expect(result.status == 0)
        #expect(result.stderr.contains("warning: could not publish to the reports branch"), "\(result.stderr)")
        #expect(result.stderr.contains("the remote refused refs/heads/reports: pre-receive hook declined"), "\(result.stderr)")
        #expect(result.stderr.contains("1 report stays queued"))
        #expect(Date().timeIntervalSince(started) < 20) // no ten rounds of backoff for a refusal that stays
        try FileManager.default.removeItem(atPath: hook)
        #expect(try syncwright(["reconcile", "--once"] + home.args).stdout.contains("Published 1 report"))
    }

    @Test func twoHomesPublishingAtOnceGetEveryReportIn() throws {
        let fixture = try runFixture()
        let homes = [try Home(fixture), try Home(fixture)]
        let perHome = 20
        nonisolated(unsafe) var runIDs: [[String]] = [[], []]
        nonisolated(unsafe) var problems: [String] = []
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            for _ in 0..<perHome {
                do {
                    let (result, report) = try homes[index].run("chain")
                    lock.withLock {
                        if result.status != 0 || result.stderr.contains("warning") { problems.append(result.stderr) }
                        if let id = report["runId"] as? String { runIDs[index].append(id) }
                    }
                } catch {
                    lock.withLock { problems.append("\(error)") }
                }
            }
        }
        #expect(problems.isEmpty, "\(problems)")
        let branch = ReportsBranch(fixture: fixture)
        #expect(try branch.runFolders("chain").sorted() == (runIDs[0] + runIDs[1]).sorted())
        #expect(runIDs.joined().count == 2 * perHome)
        #expect(try branch.mergeCount() == 0)
        #expect(try branch.commitCount() == 2 * perHome + 2) // and the two applies
        #expect(try branch.show("README.md").contains(" | \(2 * perHome) |\n"))
    }

    @Test func theReportsBranchMustNotBeTheConfigBranch() throws {
        let fixture = try runFixture()
        let folder = try TemporaryFolder()
        let result = try syncwright(["init", fixture.originURL, "--reports-branch", "main", "--home", folder.sub("home")])
        #expect(result.status == 1)
        #expect(result.stderr == "error: reportsBranch: 'main' is also the config branch; reports need a branch of their own\n")
        #expect(!FileManager.default.fileExists(atPath: folder.sub("home")))

        let home = try Home(fixture)
        let config = home.folder.sub("home/config.yaml")
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "reportsBranch: reports", with: "reportsBranch: main")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let run = try syncwright(["run", "chain"] + home.args)
        #expect(run.status == 1)
        #expect(run.stderr == "error: \(config): reportsBranch: 'main' is also the config branch; reports need a branch of their own\n")
    }
}
