import Foundation
import TestSupport
import Testing

/// Two jobs copying a CSV into the home: `plain` runs at once, `guarded` needs bob's approval.
func workflowFixture(workflow: String = "{ approvers: [bob@corp.example, \"Carol <carol@corp.example>\"] }") throws -> GitFixture {
    func job(_ name: String, _ extra: String) -> String {
        """
        apiVersion: syncwright.dev/v1
        kind: Job
        metadata: { name: \(name) }
        spec:
          source: { connection: people }
          destination: { connection: \(name)-out }
          mappings:
            - { source: id, destination: id, key: true }
            - { source: name, destination: name }
        \(extra)

        """
    }
    return try GitFixture(files: [
        "connections.yaml": ["people", "plain-out", "guarded-out"].map { name in
            """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: \(name) }
            spec: { type: csv, \(name == "people" ? "repoPath: data/people.csv" : "path: \(name).csv") }

            """
        }.joined(separator: "---\n"),
        "data/people.csv": "id,name\n1,Ada\n2,Grace\n3,Edsger\n",
        "jobs/plain.yaml": job("plain", ""),
        "jobs/guarded.yaml": job("guarded", "  workflow: \(workflow)"),
        "collections/c.yaml": Fixtures.collection("c", jobs: ["plain", "guarded"]),
    ])
}

/// A home on `fixture`'s origin, with the manifests applied.
struct WorkflowHome {
    let fixture: GitFixture
    let folder: TemporaryFolder
    var home: [String] { ["--home", folder.sub("home")] }

    init(_ fixture: GitFixture) throws {
        self.fixture = fixture
        folder = try TemporaryFolder()
        try #require(try syncwright(["init", fixture.originURL] + home).status == 0)
        let apply = try syncwright(["apply"] + home)
        try #require(apply.status == 0, "\(apply.stderr)")
    }

    func cli(_ arguments: [String], env: [String: String] = [:]) throws -> ProcessResult {
        try syncwright(arguments + home, env: env)
    }

    /// Runs `c` by hand; returns the id of the request it raised.
    func runRaisingRequest() throws -> String {
        let run = try cli(["run", "c", "--format", "json"],
                          env: ["GIT_AUTHOR_NAME": "Alice Admin", "GIT_AUTHOR_EMAIL": "alice@corp.example"])
        #expect(run.status == 0, "a run awaiting approval exits 0: \(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(report["status"] as? String == "awaitingApproval")
        let jobs = try #require(report["jobs"] as? [[String: Any]])
        #expect(jobs.map { $0["status"] as? String } == ["succeeded", "awaitingApproval"])
        return try #require(jobs.last?["request"] as? String)
    }

    func requests() throws -> [[String: Any]] {
        let list = try cli(["requests", "--format", "json"])
        #expect(list.status == 0, "\(list.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])
        return try #require(document["requests"] as? [[String: Any]])
    }

    func request(_ id: String) throws -> [String: Any] {
        try #require(try requests().first { $0["id"] as? String == id })
    }

    func lines(_ file: String) -> [String] {
        ((try? String(contentsOfFile: folder.sub("home/\(file)"), encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    /// A file on the origin's reports branch, read with git.
    func reportsFile(_ path: String) throws -> String {
        try fixture.git(["show", "reports:\(path)"], in: fixture.originPath)
    }

    func reconcileOnce() throws -> ProcessResult {
        let result = try cli(["reconcile", "--once"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        return result
    }

    /// Commits an Approval in someone's name, as a merged pull request would.
    func commitApproval(_ file: String, name: String, request: String, decision: String = "approve",
                        author: String) throws {
        try fixture.write(["approvals/\(file).yaml": """
            apiVersion: syncwright.dev/v1
            kind: Approval
            metadata: { name: \(name) }
            spec: { request: \(request), decision: \(decision), reason: "seen" }

            """])
        try fixture.commit("\(decision) \(request)", author: author)
    }
}

@Suite struct WithdrawnApprovalTests {
    /// A non-approver's decision is reverted, and an approver merges the same file again, both
    /// between two applies: the file reads as it did, but its new writer is weighed.
    @Test func anApprovalWithdrawnAndReAddedUnchangedIsWeighed() throws {
        let w = try WorkflowHome(try workflowFixture())
        let id = try w.runRaisingRequest()
        try w.commitApproval("approve-\(id)", name: "approve-\(id)", request: id, author: "Mallory <mallory@corp.example>")
        #expect(try w.cli(["apply"]).status == 0)
        #expect(try w.request(id)["status"] as? String == "pending", "a non-approver's decision does not count")

        try w.fixture.remove("approvals/approve-\(id).yaml")
        try w.fixture.commit("withdraw the decision", author: "Mallory <mallory@corp.example>")
        try w.commitApproval("approve-\(id)", name: "approve-\(id)", request: id, author: "Bob <bob@corp.example>")
        let apply = try w.cli(["apply"])
        #expect(apply.status == 0, "\(apply.stderr)")
        let request = try w.request(id)
        #expect(request["status"] as? String == "approved", "\(request)")
        #expect(request["decidedBy"] as? String == "Bob <bob@corp.example>")
    }
}

@Suite struct WorkflowTests {
    @Test func aManualRunRaisesARequestWithAPreviewAndRunsTheOtherJobs() throws {
        let w = try WorkflowHome(try workflowFixture())
        let dryRun = try w.cli(["run", "c", "--preview"])
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("guarded: read 3; 3 to create"), "a preview shows what the job would do: \(dryRun.stdout)")
        #expect(dryRun.stdout.contains("under a workflow: a run would raise a request for bob@corp.example, "
                                        + "Carol <carol@corp.example> instead of running it"))
        #expect(try w.requests().isEmpty, "a preview raises no request")
        let id = try w.runRaisingRequest()
        #expect(id.hasPrefix("req-") && id == id.lowercased() && id.count <= 55, "usable inside a manifest name: \(id)")
        #expect(w.lines("plain-out.csv").count == 4, "the job without workflow ran")
        #expect(w.lines("guarded-out.csv").isEmpty, "the job with workflow did not")

        let request = try w.request(id)
        #expect(request["status"] as? String == "pending")
        #expect(request["job"] as? String == "guarded" && request["collection"] as? String == "c")
        #expect(request["requestedAt"] is String)
        #expect(request["requestedBy"] as? String == "Alice Admin <alice@corp.example>", "who asked: the git identity")
        let revision = try w.fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(request["revision"] as? String == revision)
        let preview = try #require(request["preview"] as? [String: Any])
        #expect(preview["read"] as? Int == 3 && preview["create"] as? Int == 3)
        #expect((preview["changes"] as? [String])?.first?.hasPrefix("+ ") == true, "\(preview)")

        // Published: the page, the README's pending list, and the run's summary pointing at it.
        let page = try w.reportsFile("requests/\(id).md")
        #expect(page.contains("# Request \(id): pending") && page.contains("| 3 | 3 | 0 | 0 | 0 | 0 | 0 | 0 |"), "\(page)")
        #expect(try w.reportsFile("README.md").contains("- [\(id)](requests/\(id).md): pending job guarded of c"))
        let status = try w.cli(["status", "--format", "json"])
        #expect(status.stdout.contains("\"id\" : \"\(id)\""), "status lists the pending request: \(status.stdout)")

        // Running again while it is pending raises another request.
        let second = try w.runRaisingRequest()
        #expect(second != id)
        #expect(try w.requests().filter { $0["status"] as? String == "pending" }.count == 2)
    }

    @Test func onlyAnApproversApprovalRunsTheJob() throws {
        let w = try WorkflowHome(try workflowFixture())
        let id = try w.runRaisingRequest()

        // Mallory merges an approval: it is applied, recorded as ignored, and nothing runs.
        try w.commitApproval("mallory", name: "approve-\(id)", request: id, author: "Mallory <mallory@corp.example>")
        _ = try w.reconcileOnce()
        #expect(try w.request(id)["status"] as? String == "pending")
        #expect(w.lines("guarded-out.csv").isEmpty)
        #expect(try w.reportsFile("requests/\(id).md").contains("(ignored: mallory@corp.example is not an approver)"))
        let refused = try w.cli(["approve", id, "--author", "Mallory <mallory@corp.example>"])
        #expect(refused.status == 1 && refused.stderr.contains("mallory@corp.example is not an approver of job guarded"),
                "\(refused.stderr)")

        // Bob approves through the CLI (his identity from his git config): the commit is his.
        let bobHome = try TemporaryFolder()
        try "[user]\n\tname = Bob Approver\n\temail = Bob@Corp.example\n".write(toFile: bobHome.sub(".gitconfig"), atomically: true, encoding: .utf8)
        let approve = try w.cli(["approve", id, "--reason", "checked the preview"],
                                env: ["HOME": bobHome.path, "GIT_AUTHOR_NAME": "", "GIT_AUTHOR_EMAIL": ""])
        #expect(approve.status == 0, "\(approve.stderr)")
        #expect(approve.stdout.contains("Pushed approvals/approve-\(id)-2.yaml to main"), "\(approve.stdout)")
        #expect(try w.fixture.git(["log", "-1", "--format=%an <%ae>", "main"], in: w.fixture.originPath)
                == "Bob Approver <Bob@Corp.example>\n")

        let pass = try w.reconcileOnce()
        #expect(pass.stdout.contains("Ran approved requests: \(id)."), "\(pass.stdout)")
        #expect(w.lines("guarded-out.csv").count == 4, "the approved job wrote its destination")
        let request = try w.request(id)
        #expect(request["status"] as? String == "executed")
        #expect(request["decidedBy"] as? String == "Bob Approver <Bob@Corp.example>")
        #expect(request["reason"] as? String == "checked the preview")
        let runId = try #require(request["executedRunId"] as? String)
        let report = try w.reportsFile("runs/c/\(runId)/report.json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any])
        #expect(json["trigger"] as? String == "approval" && json["request"] as? String == id)
        #expect((json["jobs"] as? [[String: Any]])?.map { $0["name"] as? String } == ["guarded"], "only the approved job runs")
        #expect(try w.reportsFile("requests/\(id).md").contains("# Request \(id): executed"))
        #expect(try w.reportsFile("README.md").contains("## Pending requests\n\nNone."))

        // Approving it again is refused, and a second pass runs nothing more.
        let again = try w.cli(["approve", id, "--author", "Bob <bob@corp.example>"])
        #expect(again.status == 1 && again.stderr.contains("request \(id) is already executed"), "\(again.stderr)")
        _ = try w.reconcileOnce()
        #expect(try w.cli(["history", "c", "--format", "json"]).stdout.components(separatedBy: "\"trigger\" : \"approval\"").count == 2)
    }

    @Test func anApprovalGivenWhileTheReconcilerRunsIsCarriedOut() throws {
        let w = try WorkflowHome(try workflowFixture())
        let id = try w.runRaisingRequest()
        let reconciler = try Background(["reconcile", "--interval", "1s"] + w.home, folder: w.folder)
        defer { if reconciler.process.isRunning { kill(reconciler.process.processIdentifier, SIGKILL) } }
        Thread.sleep(forTimeInterval: 1)
        // approve and requests do not claim the home: they work beside the running reconciler.
        let approve = try w.cli(["approve", id, "--author", "Carol <carol@corp.example>"])
        #expect(approve.status == 0, "\(approve.stderr)")
        var status = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            status = try w.request(id)["status"] as? String ?? ""
            if status == "executed" { break }
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(status == "executed", "the reconciler applied the approval and ran the job: \(reconciler.stderr)")
        #expect(w.lines("guarded-out.csv").count == 4)
        kill(reconciler.process.processIdentifier, SIGTERM)
        #expect(reconciler.wait(seconds: 15) == 0)
        #expect(reconciler.stderr.contains("approved=1"), "the pass that ran it says so: \(reconciler.stderr)")
    }

    @Test func aDenialRecordsTheReasonAndRunsNothing() throws {
        let w = try WorkflowHome(try workflowFixture())
        let id = try w.runRaisingRequest()
        let missingReason = try w.cli(["deny", id])
        #expect(missingReason.status == 1 && missingReason.stderr.contains("--reason"), "\(missingReason.stderr)")
        let deny = try w.cli(["deny", id, "--reason", "HR has not signed off", "--author", "Carol <carol@corp.example>"])
        #expect(deny.status == 0, "\(deny.stderr)")
        _ = try w.reconcileOnce()
        let request = try w.request(id)
        #expect(request["status"] as? String == "denied" && request["reason"] as? String == "HR has not signed off")
        #expect(w.lines("guarded-out.csv").isEmpty)
        let page = try w.reportsFile("requests/\(id).md")
        #expect(page.contains("# Request \(id): denied") && page.contains("| Reason | HR has not signed off |"), "\(page)")
        #expect(page.contains("| Decided by | Carol <carol@corp.example>"))
    }

    @Test func aSpecChangeExpiresTheRequest() throws {
        let w = try WorkflowHome(try workflowFixture())
        let id = try w.runRaisingRequest()
        let job = try String(contentsOfFile: (w.fixture.workTree as NSString).appendingPathComponent("jobs/guarded.yaml"), encoding: .utf8)
        try w.fixture.write(["jobs/guarded.yaml": job.replacingOccurrences(of: "destination: name }", with: "destination: fullName }")])
        try w.fixture.commit("guarded writes fullName")
        // Bob approves what he saw, in the same pass that applies the change.
        try w.commitApproval("bob", name: "approve-\(id)", request: id, author: "Bob <bob@corp.example>")
        _ = try w.reconcileOnce()
        let request = try w.request(id)
        #expect(request["status"] as? String == "expired")
        #expect((request["note"] as? String)?.contains("job guarded changed in revision") == true, "\(request)")
        #expect(w.lines("guarded-out.csv").isEmpty, "the approver approved something else: nothing runs")
        #expect(try w.reportsFile("requests/\(id).md").contains("(ignored: the request is already expired)"))
    }

    @Test func badDecisionsChangeNothing() throws {
        let w = try WorkflowHome(try workflowFixture())
        let unknown = try w.cli(["approve", "req-20200101-000000-abcd", "--author", "Bob <bob@corp.example>"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no request has the id 'req-20200101-000000-abcd' (no request is pending)"),
                "\(unknown.stderr)")
        let id = try w.runRaisingRequest()
        let badAuthor = try w.cli(["approve", id, "--author", "bob"])
        #expect(badAuthor.status == 1 && badAuthor.stderr.contains("is not of the form \"Name <email>\""), "\(badAuthor.stderr)")
        let noIdentity = try TemporaryFolder()
        let anonymous = try w.cli(["approve", id], env: ["HOME": noIdentity.path, "GIT_CONFIG_NOSYSTEM": "1",
                                                          "GIT_AUTHOR_NAME": "", "GIT_AUTHOR_EMAIL": ""])
        #expect(anonymous.status == 1 && anonymous.stderr.contains("no git identity is configured"), "\(anonymous.stderr)")
        let before = try w.fixture.git(["rev-parse", "main"], in: w.fixture.originPath)

        // A deny without a reason, merged by hand, is an invalid revision: nothing is applied.
        try w.fixture.write(["approvals/bad.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Approval
            metadata: { name: deny-it }
            spec: { request: \(id), decision: deny }

            """])
        try w.fixture.commit("deny without a reason", author: "Bob <bob@corp.example>")
        let pass = try w.cli(["reconcile", "--once"])
        #expect(pass.status == 1)
        let validate = try w.cli(["validate"])
        #expect(validate.stderr.contains("approvals/bad.yaml:4:7: spec.reason: a deny needs a reason"), "\(validate.stderr)")
        #expect(try w.request(id)["status"] as? String == "pending")
        #expect(before != (try w.fixture.git(["rev-parse", "main"], in: w.fixture.originPath)), "the bad commit is on main")
    }
}
