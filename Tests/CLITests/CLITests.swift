import Foundation
import TestSupport
import Testing

@Suite struct EndToEndTests {
    @Test func initPlanApplyEditDeleteAndABadCommit() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder()
        let home = ["--home", folder.sub("home")]

        let initResult = try syncwright(["init", fixture.originURL] + home)
        #expect(initResult.status == 0, "\(initResult.stderr)")

        let firstPlan = try syncwright(["plan"] + home)
        #expect(firstPlan.status == 2)
        #expect(firstPlan.stdout.contains("+ JobCollection nightly-directory-sync  (collections/nightly-directory-sync.yaml)"))
        #expect(firstPlan.stdout.contains("Plan: 28 to create, 0 to update, 0 to delete."))

        let apply = try syncwright(["apply"] + home)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("28 created, 0 updated, 0 deleted."))

        let unchanged = try syncwright(["plan"] + home)
        #expect(unchanged.status == 0)
        #expect(unchanged.stdout.contains("No changes."))

        // An edit shows as the changed field.
        let job = fixture.workTree + "/jobs/hr-users-to-corp.yaml"
        let text = try String(contentsOfFile: job, encoding: .utf8)
        try text.replacingOccurrences(of: "delete: false", with: "delete: true").write(toFile: job, atomically: true, encoding: .utf8)
        try fixture.commit("hr-users-to-corp deletes leavers")
        let edited = try syncwright(["plan", "--format", "json"] + home)
        #expect(edited.status == 2)
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(edited.stdout.utf8)) as? [String: Any])
        let changes = try #require(plan["changes"] as? [[String: Any]])
        #expect(changes.count == 1)
        #expect(changes.first?["name"] as? String == "hr-users-to-corp")
        #expect(changes.first?["action"] as? String == "update")
        let fields = try #require(changes.first?["fields"] as? [[String: Any]])
        #expect(fields.first?["path"] as? String == "spec.delete")
        #expect(fields.first?["old"] as? Bool == false)
        #expect(fields.first?["new"] as? Bool == true)
        #expect(plan["summary"] as? [String: Int] == ["create": 0, "update": 1, "delete": 0])
        #expect(try syncwright(["apply"] + home).status == 0)

        // Removing a manifest deletes the stored object.
        try fixture.remove("policies/protect-deletes.yaml")
        try fixture.commit("drop the policy")
        let pruned = try syncwright(["apply"] + home)
        #expect(pruned.status == 0)
        #expect(pruned.stdout.contains("- Policy protect-deletes  (was policies/protect-deletes.yaml)"))
        #expect(pruned.stdout.contains("0 created, 0 updated, 1 deleted."))

        // A bad commit applies nothing and names the place.
        let statusBefore = try syncwright(["status", "--format", "json"] + home).stdout
        let sqliteBefore = try runProcess("/usr/bin/sqlite3", [folder.sub("home/state.sqlite"), "SELECT kind, name, hash FROM objects ORDER BY 1, 2"]).stdout
        try fixture.write(["schedules/nightly.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: nightly }
            spec:
              targets: [nightly-directory-sync]
              triggers: [ { cron: "30 26 * * *" } ]

            """])
        try fixture.commit("broken schedule")
        let bad = try syncwright(["apply"] + home)
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("schedules/nightly.yaml:6:23: spec.triggers[0].cron: hour field '26': 26 is out of range 0-23"))
        #expect(bad.stderr.hasSuffix("has 1 problem; nothing was applied\n"))
        #expect(bad.stdout.isEmpty)
        #expect(try syncwright(["status", "--format", "json"] + home).stdout == statusBefore)
        let sqliteAfter = try runProcess("/usr/bin/sqlite3", [folder.sub("home/state.sqlite"), "SELECT kind, name, hash FROM objects ORDER BY 1, 2"]).stdout
        #expect(sqliteAfter == sqliteBefore)
        #expect(try syncwright(["plan"] + home).status == 1)
    }

    @Test func statusListsCollectionsAsJSON() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder()
        let env = ["SYNCWRIGHT_HOME": folder.sub("from-env")]
        #expect(try syncwright(["init", fixture.originURL], env: env).status == 0)
        let empty = try syncwright(["status"], env: env)
        #expect(empty.stdout == "Nothing applied yet: run `syncwright apply`.\n")
        #expect(try syncwright(["apply"], env: env).status == 0)
        let result = try syncwright(["status", "--format", "json"], env: env)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let collections = try #require(document["collections"] as? [[String: Any]])
        #expect(collections.map { $0["name"] as? String } == ["corp-to-partner-ad", "nightly-directory-sync", "partner-ad-passwords",
                                                               "two-domain-sync"])
        let jobs = try #require(collections.first { $0["name"] as? String == "nightly-directory-sync" }?["jobs"] as? [[String: String]])
        #expect(jobs.map { $0["job"] } == ["hr-users-to-corp", "hr-groups-to-corp", "corp-users-to-partner", "hr-contractors-to-corp"])
        let head = try fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(document["appliedRevision"] as? String == head)
    }

    @Test func everyHomeCommandExplainsAMissingHome() throws {
        let folder = try TemporaryFolder()
        for command in [["plan"], ["apply"], ["status"], ["validate"]] {
            let result = try syncwright(command + ["--home", folder.sub("none")])
            #expect(result.status == 1)
            let hint = command == ["validate"] ? ", or `syncwright validate --path .` to check the manifests in this folder without a home" : ""
            #expect(result.stderr == "error: no Syncwright home at \(folder.sub("none")): run `syncwright init <repo-url>` first\(hint)\n")
        }
    }

    @Test func initRefusesAnExistingHomeWithoutForce() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder()
        #expect(try syncwright(["init", fixture.originURL, "--home", folder.sub("h")]).status == 0)
        let again = try syncwright(["init", fixture.originURL, "--home", folder.sub("h")])
        #expect(again.status == 1)
        #expect(again.stderr == "error: \(folder.sub("h")) is already a Syncwright home; use --force to replace it\n")
        #expect(try syncwright(["init", fixture.originURL, "--home", folder.sub("h"), "--force"]).status == 0)
        let missing = try syncwright(["init", "file:///nonexistent/repo.git", "--home", folder.sub("x")])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("error: cloning file:///nonexistent/repo.git failed: "))
        #expect(!FileManager.default.fileExists(atPath: folder.sub("x")))
    }

    @Test func validateAFolderOrARef() throws {
        let examples = (packageRoot as NSString).appendingPathComponent("examples")
        let ok = try syncwright(["validate", "--path", examples])
        #expect(ok.status == 0)
        #expect(ok.stdout == "Valid: 28 objects in \(examples) (9 Connection, 2 NotificationChannel, 10 Job, 1 JobCollectionTemplate, "
                + "4 JobCollection, 1 Schedule, 1 Policy).\n")

        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.sub("repo/jobs"), withIntermediateDirectories: true)
        try "apiVersion: syncwright.dev/v1\nkind: Job\nmetadata: { name: x }\nspec: { sourc: {} }\n"
            .write(toFile: folder.sub("repo/jobs/x.yaml"), atomically: true, encoding: .utf8)
        let bad = try syncwright(["validate", "--path", folder.sub("repo")])
        #expect(bad.status == 1)
        #expect(bad.stderr.components(separatedBy: "\n").filter { $0.hasPrefix("jobs/x.yaml:") } == [
            "jobs/x.yaml:4:7: spec.destination: required field is missing",
            "jobs/x.yaml:4:7: spec.mappings: required field is missing",
            "jobs/x.yaml:4:7: spec.source: required field is missing",
            "jobs/x.yaml:4:9: spec.sourc: unknown field (expected one of: allowEmptySource, create, delete, deleteThreshold, "
                + "destination, mappings, secretAttributes, source, workflow)",
        ])

        // A column the repository's CSV file does not have is a validate error, at its mapping.
        let typo = folder.sub("typo")
        try FileManager.default.copyItem(atPath: examples, toPath: typo)
        let jobPath = (typo as NSString).appendingPathComponent("jobs/hr-users-to-corp.yaml")
        let job = try String(contentsOfFile: jobPath, encoding: .utf8)
        try job.replacingOccurrences(of: "{ source: surname, destination: sn }", with: "{ source: surnmae, destination: sn }")
            .write(toFile: jobPath, atomically: true, encoding: .utf8)
        let misspelt = try syncwright(["validate", "--path", typo])
        #expect(misspelt.status == 1)
        #expect(misspelt.stderr.contains("jobs/hr-users-to-corp.yaml:19:17: spec.mappings[3].source: names 'surnmae', which "
                                         + "data/hr-export.csv (connection hr-export) does not have (did you mean 'surname'?)"),
                "\(misspelt.stderr)")

        let both = try syncwright(["validate", "--path", examples, "--ref", "main"])
        #expect(both.status == 1)
        #expect(both.stderr.contains("give --ref or --path, not both"))

        let fixture = try examplesFixture()
        #expect(try syncwright(["init", fixture.originURL, "--home", folder.sub("h")]).status == 0)
        #expect(try syncwright(["validate", "--home", folder.sub("h")]).status == 0)
        let unknownRef = try syncwright(["validate", "--ref", "release-9", "--home", folder.sub("h")])
        #expect(unknownRef.status == 1)
        #expect(unknownRef.stderr == "error: ref 'release-9' names no branch, tag or commit in \(fixture.originURL)\n")
    }

    @Test func anInvalidHeadGetsAMarkdownCommentWithLinksToItsLines() throws {
        let fixture = try examplesFixture()
        try fixture.git(["checkout", "-q", "-b", "broken"])
        let job = fixture.workTree + "/jobs/hr-groups-to-corp.yaml"
        let text = try String(contentsOfFile: job, encoding: .utf8)
        try text.replacingOccurrences(of: "resolve: { job: hr-users-to-corp, by: login }", with: "resolve: { job: hr-users, by: login }")
            .write(toFile: job, atomically: true, encoding: .utf8)
        try fixture.commit("a typo", push: false)
        let base = "https://git.example/config/blob/abc123/"
        let diff = try syncwright(["diff", "main", "HEAD", "--format", "markdown", "--link-base", base], in: fixture.workTree)
        #expect(diff.status == 1)
        #expect(diff.stdout.contains("1 problem; nothing can be planned until they are fixed."), "\(diff.stdout)")
        #expect(diff.stdout.contains("- [`jobs/hr-groups-to-corp.yaml:23:23`](\(base)jobs/hr-groups-to-corp.yaml#L23) "
                                     + "`spec.mappings[2].resolve.job`: no Job named 'hr-users' exists"), "\(diff.stdout)")
        #expect(diff.stderr.contains("jobs/hr-groups-to-corp.yaml:23:23: spec.mappings[2].resolve.job: no Job named 'hr-users' exists"))
        // plan says the same of a revision it was asked to plan.
        try fixture.git(["push", "-q", "origin", "broken"])
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder, apply: false)
        let plan = try syncwright(["plan", "--ref", "broken", "--format", "markdown"] + home.arguments)
        #expect(plan.status == 1)
        #expect(plan.stdout.contains("- `jobs/hr-groups-to-corp.yaml:23:23` `spec.mappings[2].resolve.job`: no Job named 'hr-users' exists"), "\(plan.stdout)")
    }

    @Test func diffBetweenTwoCommitsInAnyClone() throws {
        let fixture = try examplesFixture()
        try fixture.git(["checkout", "-q", "-b", "feature"])
        let schedule = fixture.workTree + "/schedules/nightly.yaml"
        let text = try String(contentsOfFile: schedule, encoding: .utf8)
        try text.replacingOccurrences(of: "30 2 * * *", with: "0 3 * * 1-5").write(toFile: schedule, atomically: true, encoding: .utf8)
        try fixture.commit("run at three on weekdays", push: false)

        let markdown = try syncwright(["diff", "main", "HEAD", "--format", "markdown"], in: fixture.workTree + "/jobs")
        #expect(markdown.status == 2)
        #expect(markdown.stdout.contains("| update | Schedule | `nightly` | `schedules/nightly.yaml` | `spec.triggers[0].cron` |"))
        #expect(markdown.stdout.contains(#"| `spec.triggers[0].cron` | `"30 2 * * *"` | `"0 3 * * 1-5"` |"#))

        let same = try syncwright(["diff", "HEAD", "HEAD"], in: fixture.workTree)
        #expect(same.status == 0)
        #expect(same.stdout.contains("No changes."))

        try fixture.remove("jobs/hr-users-to-corp.yaml")
        try fixture.commit("oops", push: false)
        let broken = try syncwright(["diff", "main", "HEAD"], in: fixture.workTree)
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("templates/hr-to-directories.yaml:9:14: spec.jobs[0].job: no Job named 'hr-users-to-corp' exists"))

        let outside = try TemporaryFolder()
        let noRepo = try syncwright(["diff", "main", "HEAD"], in: outside.path)
        #expect(noRepo.status == 1)
        #expect(noRepo.stderr.hasPrefix("error: finding a git repository at or above"))
    }

    @Test func helpExplainsEveryCommand() throws {
        let root = try syncwright(["--help"])
        #expect(root.status == 0)
        for command in ["init", "validate", "plan", "apply", "diff", "run", "reconcile", "history", "status", "requests",
                        "approve", "deny", "schema"] {
            #expect(root.stdout.contains(command))
            let help = try syncwright([command, "--help"])
            #expect(help.status == 0, "\(command)")
            #expect(help.stdout.contains("USAGE: syncwright \(command)"))
        }
        let planHelp = try syncwright(["plan", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(planHelp.contains("Exit codes: 0 nothing would change, 2 something would, 1 error (with --preview: also when a job would fail or a guard would trip"))
        #expect(planHelp.contains("Nothing is written to any directory or to the state."))
        let unknown = try syncwright(["plan", "--format", "yaml"])
        #expect(unknown.status == 1)
        let runHelp = try syncwright(["run", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(runHelp.contains("--preview computes everything and writes nothing"))
        #expect(try syncwright(["run"]).status == 1) // the collection is required
        let approveHelp = try syncwright(["approve", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(approveHelp.contains("The decision counts only when that author is one of the job's approvers"))
        #expect(try syncwright(["requests", "--status", "maybe"]).status == 1)
    }
}
