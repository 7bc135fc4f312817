import Foundation
import TestSupport
import Testing

/// Policies over what a run is about to write, against a real slapd (read back with
/// ldapsearch): a limit or a protection stops the job before it writes anything.
@Suite(.serialized) struct RunPolicyTests {
    static func policy(_ body: String) -> String {
        "apiVersion: syncwright.dev/v1\nkind: Policy\nmetadata: { name: guard }\nspec:\n" + body
    }

    /// The LDAP world after a first run (three people in corp and in partner), with `policy`
    /// applied, the jobs' own delete threshold out of the way, and both jobs deleting.
    func world(_ policy: String) throws -> LDAPWorld {
        let world = try LDAPWorld(threshold: 100)
        let (first, _) = try world.home.run("domains")
        try #require(first.status == 0, "\(first.stderr)")
        // The partner copy deletes too, so that a leaver is two deletes in one run.
        let jobs = try String(contentsOfFile: world.home.fixture.workTree + "/jobs.yaml", encoding: .utf8)
            .replacingOccurrences(of: "    - { source: title, destination: title }\n---", with: "    - { source: title, destination: title }\n  delete: true\n---")
        try world.home.fixture.write(["policies/guard.yaml": Self.policy(policy), "jobs.yaml": jobs])
        try world.home.fixture.commit("a policy")
        let applied = try syncwright(["apply"] + world.home.args)
        try #require(applied.status == 0, "\(applied.stderr)")
        return world
    }

    static let twoLeavers = LDAPWorld.hr.split(separator: "\n").filter { !$0.hasPrefix("1,") && !$0.hasPrefix("3,") }
        .joined(separator: "\n") + "\n"
    static let oneLeaver = LDAPWorld.hr.split(separator: "\n").filter { !$0.hasPrefix("3,") }.joined(separator: "\n") + "\n"

    @Test func aJobOverItsDeleteLimitWritesNothing() throws {
        let world = try world("  limits:\n    - { name: few-deletes, match: { connection: corp }, maxDeletes: 1 }\n")
        try world.change(Self.twoLeavers, "two leavers")
        let (result, report) = try world.home.run("domains")
        #expect(result.status == 1)
        #expect(jobField(report, 0, "error") == "policy guard, limit few-deletes: the job would delete 2, at most 1; nothing was changed")
        #expect(try world.server.dns(LDAPWorld.corp).count == 3, "nothing deleted")
        #expect(jobField(report, 1, "status") == "notRun")
        // One leaver is within the limit.
        try world.change(Self.oneLeaver, "one leaver")
        let (_, after) = try world.home.run("domains")
        #expect(stats(after, 0)["deleted"] == 1)
        #expect(try world.server.dns(LDAPWorld.corp).count == 2)
    }

    /// A run after one leaver, under a ready-made policy from `policies/` (edited by `adapt`).
    func runUnderReadyMade(_ file: String, adapt: (String) -> String = { $0 }) throws -> (LDAPWorld, ProcessResult, [String: Any]) {
        let readyMade = try String(contentsOfFile: packageRoot + "/policies/\(file)", encoding: .utf8)
        let world = try world("  rules: []\n") // replaced by the ready-made file
        try world.home.fixture.write(["policies/guard.yaml": adapt(readyMade)])
        try world.home.fixture.commit("a ready-made policy")
        try world.change(Self.oneLeaver, "one leaver")
        let (result, report) = try world.home.run("domains")
        return (world, result, report)
    }

    @Test func theReadyMadeDeleteLimitStopsARunOverFivePercent() throws {
        let (world, result, report) = try runUnderReadyMade("delete-limits.yaml")
        #expect(result.status == 1)
        #expect(jobField(report, 0, "error") == "policy delete-limits, limit five-percent-per-run: this run's jobs would delete 1 of 3 (33%), "
            + "at most 5%; nothing was changed")
        #expect(try world.server.dns(LDAPWorld.corp).count == 3)
    }

    @Test func theReadyMadeProtectionsStopADeleteUnderTheContainer() throws {
        let (world, result, report) = try runUnderReadyMade("protected-objects.yaml") {
            $0.replacingOccurrences(of: "ou=Service Accounts,dc=corp,dc=example", with: LDAPWorld.corp)
        }
        #expect(result.status == 1)
        #expect(jobField(report, 0, "error") == "policy protected-objects, protect service-accounts: would delete uid=dmuller,\(LDAPWorld.corp), "
            + "under \(LDAPWorld.corp); nothing was changed")
        #expect(try world.server.dns(LDAPWorld.corp).count == 3)
    }

    @Test func aPerRunLimitCountsEveryJobOfTheRun() throws {
        // One leaver: corp loses one, then partner loses its copy; together two, over the limit.
        let world = try world("  limits:\n    - { name: run-deletes, maxDeletes: 1, per: run }\n")
        try world.change(Self.oneLeaver, "one leaver")
        let (result, report) = try world.home.run("domains")
        #expect(result.status == 1)
        #expect(stats(report, 0)["deleted"] == 1, "the first job is within the limit")
        #expect(jobField(report, 1, "error") == "policy guard, limit run-deletes: this run's jobs would delete 2, at most 1; nothing was changed")
        #expect(try world.server.dns(LDAPWorld.corp).count == 2)
        #expect(try world.server.dns(LDAPWorld.partner).count == 3, "the second job wrote nothing")
    }

    @Test func aPercentLimitComparesWithTheObjectsManaged() throws {
        let world = try world("  limits:\n    - { name: share, match: { connection: corp }, maxDeletePercent: 50 }\n")
        try world.change(Self.twoLeavers, "two leavers")
        let (result, report) = try world.home.run("domains")
        #expect(result.status == 1)
        #expect(jobField(report, 0, "error") == "policy guard, limit share: the job would delete 2 of 3 (66%), at most 50%; nothing was changed")
        #expect(try world.server.dns(LDAPWorld.corp).count == 3)
    }

    @Test func protectedAttributesAndContainersAreNeverWritten() throws {
        let world = try world("""
              protect:
                - { name: titles, match: { connection: corp }, neverWrite: [title] }
                - { name: partner-people, match: { jobs: "corp-*" }, neverDeleteUnder: ["OU=People, dc=partner,dc=example"] }

            """)
        try world.change(LDAPWorld.hr.replacingOccurrences(of: "Engineer", with: "Principal Engineer"), "promotion")
        let (result, report) = try world.home.run("domains")
        #expect(result.status == 1)
        #expect(jobField(report, 0, "error") == "policy guard, protect titles: would write title on uid=ajohnson,\(LDAPWorld.corp); nothing was changed")
        #expect(try world.entry("uid=ajohnson,\(LDAPWorld.corp)", ["title"]) == ["dn: uid=ajohnson,\(LDAPWorld.corp)", "title: Engineer"])

        // A leaver: corp may delete, but the partner's copy is under a protected container
        // (named in another case and spacing: DNs are compared normalized).
        try world.change(Self.oneLeaver, "one leaver")
        let (second, after) = try world.home.run("domains")
        #expect(second.status == 1)
        #expect(stats(after, 0)["deleted"] == 1)
        let error = jobField(after, 1, "error") as? String ?? ""
        #expect(error.hasPrefix("policy guard, protect partner-people: would delete cn=") && error.hasSuffix(
            ",\(LDAPWorld.partner), under OU=People, dc=partner,dc=example; nothing was changed"), "\(error)")
        #expect(try world.server.dns(LDAPWorld.partner).count == 3)
    }
}

/// Sync windows end to end: a window that is closed all week refuses a manual run (unless
/// overridden, which the report records) and skips a scheduled fire, with the reason. The hours
/// themselves are checked on fixed instants in `SyncWindowTests`.
@Suite struct SyncWindowRunTests {
    static let closedAllWeek = """
        apiVersion: syncwright.dev/v1
        kind: Policy
        metadata: { name: quiet }
        spec:
          windows:
            - name: never
              match: { connection: dst }
              timeZone: UTC
              deny: [ { days: [Mon, Tue, Wed, Thu, Fri, Sat, Sun], from: "00:00", to: "24:00" } ]

        """

    func home() throws -> (Home, String) {
        let folder = try TemporaryFolder()
        let out = folder.sub("out.ldif")
        let fixture = try Fixtures.csvToLDIF(csv: "id,login\n1,ann\n", out: out, job: "users")
        try fixture.write(["policies/quiet.yaml": Self.closedAllWeek])
        try fixture.commit("a window")
        return (try Home(fixture), out)
    }

    @Test func aManualRunIsRefusedUnlessOverriddenAndTheOverrideIsRecorded() throws {
        let (home, out) = try home()
        let (refused, _) = try home.run("c")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("collection c was not run: job users writes dst, and policy quiet's window never "
            + "(no writes Mon, Tue, Wed, Thu, Fri, Sat, Sun 00:00–24:00 (UTC)) is closed at "), "\(refused.stderr)")
        #expect(refused.stderr.contains("; run it inside the window, or give --override-window to run it now"))
        #expect(!FileManager.default.fileExists(atPath: out), "nothing written")
        #expect(try syncwright(["history", "--format", "json"] + home.args).stdout.contains("\"runId\"") == false, "no run recorded")

        let (overridden, report) = try home.run("c", ["--override-window"])
        #expect(overridden.status == 0, "\(overridden.stderr)")
        #expect((report["windowOverride"] as? String)?.hasPrefix("run with --override-window: job users writes dst, and policy quiet's window never") == true,
                "\(report)")
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains("uid: ann"))
        let runId = try #require(report["runId"] as? String)
        let summary = try home.fixture.git(["show", "reports:runs/c/\(runId)/summary.md"], in: home.fixture.originPath)
        #expect(summary.contains("| Sync window | run with --override-window: job users writes dst"), "\(summary)")
    }

    @Test func aScheduledFireOutsideTheWindowIsSkippedWithTheReason() throws {
        let (home, out) = try home()
        try home.fixture.write(["schedule.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: start }
            spec: { targets: [c], triggers: [ { atStartup: true } ] }

            """])
        try home.fixture.commit("a schedule")
        let pass = try syncwright(["reconcile", "--once"] + home.args)
        #expect(pass.status == 0, "\(pass.stderr)")
        let fires = try runProcess("/usr/bin/sqlite3", [home.folder.sub("home/state.sqlite"), "SELECT outcome, note FROM fires"])
        #expect(fires.stdout.hasPrefix("skipped|outside the sync window: job users writes dst, and policy quiet's window never"), "\(fires.stdout)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let runs = try runProcess("/usr/bin/sqlite3", [home.folder.sub("home/state.sqlite"), "SELECT count(*) FROM runs"])
        #expect(runs.stdout == "0\n")
    }
}

/// A guard that stops a job asks instead of only refusing: a request for that exact change set,
/// which an approver's Approval lets through once; a non-approver's is ignored; a change set that
/// moved expires it. Against a real slapd, read back with ldapsearch.
@Suite(.serialized) struct GuardRequestTests {
    static let limit = "  limits:\n    - { name: few-deletes, match: { connection: corp }, maxDeletes: 1, approvers: [ops@corp.example] }\n"

    func requests(_ world: LDAPWorld) throws -> [[String: Any]] {
        let listed = try syncwright(["requests", "--format", "json"] + world.home.args)
        let document = (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8))) as? [String: Any]
        return document?["requests"] as? [[String: Any]] ?? []
    }

    /// An Approval in its own file, committed by `author` (as a merged pull request would be).
    func approve(_ world: LDAPWorld, _ id: String, as author: String) throws {
        let who = author.split(separator: " ").first.map { $0.lowercased() } ?? "someone"
        try world.home.fixture.write(["approvals/\(id)-\(who).yaml": """
            apiVersion: syncwright.dev/v1
            kind: Approval
            metadata: { name: \(id)-\(who) }
            spec: { request: \(id), decision: approve, reason: "the two leavers are real" }

            """])
        try world.home.fixture.commit("approve \(id)", author: author)
    }

    @Test func anApproverLetsTheStoppedChangeSetThroughOnceAndOnlyThatOne() throws {
        let world = try RunPolicyTests().world(Self.limit)
        try world.change(RunPolicyTests.twoLeavers, "two leavers")
        let (stopped, report) = try world.home.run("domains")
        #expect(stopped.status == 1)
        let error = jobField(report, 0, "error") ?? ""
        #expect(error.hasPrefix("policy guard, limit few-deletes: the job would delete 2, at most 1; nothing was changed; request req-"), "\(error)")
        #expect(error.contains("asks ops@corp.example to let this change set through once"))
        let id = try #require(jobField(report, 0, "request"))
        var pending = try #require(try requests(world).first { $0["id"] as? String == id })
        #expect(pending["status"] as? String == "pending")
        #expect(pending["guardTripped"] as? String == "policy guard, limit few-deletes: the job would delete 2, at most 1; nothing was changed")
        #expect((pending["preview"] as? [String: Any])?["delete"] as? Int == 2)
        #expect(try world.server.dns(LDAPWorld.corp).count == 3)

        // The same run again: the same change set, the same request (not a second one).
        let (_, again) = try world.home.run("domains")
        #expect(jobField(again, 0, "request") == id)
        #expect(try requests(world).filter { $0["guardTripped"] != nil }.count == 1)

        // A non-approver's Approval is ignored.
        try approve(world, id, as: "Mallory <mallory@corp.example>")
        _ = try syncwright(["reconcile", "--once"] + world.home.args)
        pending = try #require(try requests(world).first { $0["id"] as? String == id })
        #expect(pending["status"] as? String == "pending")
        #expect(try world.server.dns(LDAPWorld.corp).count == 3)

        // An approver's: the next pass runs the job once, with the limit lifted.
        try approve(world, id, as: "Ops <ops@corp.example>")
        let pass = try syncwright(["reconcile", "--once"] + world.home.args)
        #expect(pass.status == 0, "\(pass.stderr)")
        let executed = try #require(try requests(world).first { $0["id"] as? String == id })
        #expect(executed["status"] as? String == "executed", "\(executed)")
        #expect(try world.server.dns(LDAPWorld.corp) == ["uid=bsmith,\(LDAPWorld.corp)"])

        // Once: the two come back, leave again, and the same two deletes are stopped again.
        try world.change(LDAPWorld.hr, "the two are back")
        let (back, _) = try world.home.run("domains")
        #expect(back.status == 0, "\(back.stderr)")
        try world.change(RunPolicyTests.twoLeavers, "the two leave again")
        let (after, next) = try world.home.run("domains")
        #expect(after.status == 1)
        let second = try #require(jobField(next, 0, "request"))
        #expect(second != id)
        #expect(try world.server.dns(LDAPWorld.corp).count == 3)
    }

    @Test func aDeleteThresholdAsksTheJobsWorkflowApprovers() throws {
        let world = try LDAPWorld(threshold: 1)
        let (first, _) = try world.home.run("domains")
        try #require(first.status == 0, "\(first.stderr)")
        let jobs = try String(contentsOfFile: world.home.fixture.workTree + "/jobs.yaml", encoding: .utf8)
            .replacingOccurrences(of: "  deleteThreshold: { count: 1 }\n", with: "  deleteThreshold: { count: 1 }\n  workflow: { approvers: [ops@corp.example] }\n")
        try world.home.fixture.write(["jobs.yaml": jobs])
        try world.home.fixture.commit("hr-to-corp under workflow")
        try world.change(RunPolicyTests.twoLeavers, "two leavers")
        // The manual run asks the workflow first; its approval runs the job, and the threshold stops it.
        let (_, asked) = try world.home.run("domains")
        let workflowRequest = try #require(jobField(asked, 0, "request"))
        try approve(world, workflowRequest, as: "Ops <ops@corp.example>")
        _ = try syncwright(["reconcile", "--once"] + world.home.args)
        #expect(try world.server.dns(LDAPWorld.corp).count == 3)
        let guardRequest = try #require(try requests(world).first { $0["guardTripped"] != nil })
        #expect(guardRequest["guardTripped"] as? String == "would delete 2, threshold 1; nothing was changed (raise deleteThreshold if that is expected)")
        #expect(guardRequest["approvers"] as? [String] == ["ops@corp.example"])
        // Its approval lets the two deletes through once.
        try approve(world, try #require(guardRequest["id"] as? String), as: "Ops <ops@corp.example>")
        _ = try syncwright(["reconcile", "--once"] + world.home.args)
        #expect(try world.server.dns(LDAPWorld.corp) == ["uid=bsmith,\(LDAPWorld.corp)"])
    }

    @Test func aChangeSetThatMovedExpiresTheApprovedRequestAndAsksAgain() throws {
        let world = try RunPolicyTests().world(Self.limit)
        try world.change(RunPolicyTests.twoLeavers, "two leavers")
        let (_, report) = try world.home.run("domains")
        let id = try #require(jobField(report, 0, "request"))
        try approve(world, id, as: "Ops <ops@corp.example>")
        #expect(try syncwright(["apply"] + world.home.args).status == 0)
        #expect(try requests(world).first { $0["id"] as? String == id }?["status"] as? String == "approved")
        // Before the reconciler runs it, a third person leaves: three deletes, not the two approved.
        try world.change(LDAPWorld.hr.split(separator: "\n").prefix(1).joined() + "\n4,eold,Evan,Old,Retired,,inactive\n5,x,X,Y,Z,,active\n",
                         "three leavers and a new hire")
        _ = try syncwright(["reconcile", "--once"] + world.home.args)
        let expired = try #require(try requests(world).first { $0["id"] as? String == id })
        #expect(expired["status"] as? String == "expired", "\(expired)")
        #expect((expired["note"] as? String)?.hasPrefix("the change set moved after the request was approved") == true)
        #expect(try world.server.dns(LDAPWorld.corp).count == 3, "nothing deleted")
        let fresh = try requests(world).filter { $0["status"] as? String == "pending" && $0["guardTripped"] != nil }
        #expect(fresh.count == 1 && (fresh.first?["preview"] as? [String: Any])?["delete"] as? Int == 3, "\(fresh)")
    }
}
