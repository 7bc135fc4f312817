import Foundation
import TestSupport
import Testing

/// What the first hour looks like: messages that say what is true for the command at hand.
@Suite struct ClarityTests {
    static let badJob = """
        apiVersion: syncwright.dev/v1
        kind: Job
        metadata: { name: hr-users-to-corp }
        spec: { sourc: {} }

        """

    @Test func aRejectedRevisionIsSaidAtTheTopOfStatusAndTheReadme() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder("rejected")
        let home = ["--home", folder.sub("h")]
        #expect(try syncwright(["init", fixture.originURL] + home).status == 0)
        #expect(try syncwright(["reconcile", "--once"] + home).status == 0)
        let good = try fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try fixture.write(["jobs/hr-users-to-corp.yaml": Self.badJob])
        let bad = try fixture.commit("break a job")
        let rejected = try syncwright(["reconcile", "--once"] + home)
        #expect(rejected.status == 1)

        let status = try syncwright(["status"] + home)
        #expect(status.stdout.hasPrefix("REJECTED: revision \(bad.prefix(7)) ("), "\(status.stdout)")
        #expect(status.stdout.contains("has 4 problems; see rejected/"))
        #expect(status.stdout.contains("Nothing of it was applied: revision \(good.prefix(7)) keeps running."))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(try syncwright(["status", "--format", "json"] + home).stdout.utf8)) as? [String: Any])
        let facts = try #require(json["rejected"] as? [String: Any])
        #expect(facts["revision"] as? String == bad && facts["problems"] as? Int == 4 && facts["running"] as? String == good)
        let readme = try fixture.git(["show", "reports:README.md"], in: fixture.originPath)
        #expect(readme.contains("> **Rejected:** revision \(bad.prefix(7)) was rejected at "), "\(readme)")
        #expect(readme.contains("4 problems ([problems](rejected/"))
        #expect(readme.contains("revision \(good.prefix(7)) keeps running"))

        // Fixed: applied, and the banner goes.
        let original = try String(contentsOfFile: (packageRoot as NSString).appendingPathComponent("examples/jobs/hr-users-to-corp.yaml"),
                                  encoding: .utf8)
        try fixture.write(["jobs/hr-users-to-corp.yaml": original])
        try fixture.commit("fix the job")
        #expect(try syncwright(["reconcile", "--once"] + home).status == 0)
        #expect(!(try syncwright(["status"] + home).stdout.contains("REJECTED")))
        #expect(!(try fixture.git(["show", "reports:README.md"], in: fixture.originPath).contains("Rejected:")))
    }

    @Test func validateAndDiffSayWhatTheyDid() throws {
        let folder = try TemporaryFolder("clarity")
        try FileManager.default.createDirectory(atPath: folder.sub("repo/jobs"), withIntermediateDirectories: true)
        try Self.badJob.write(toFile: folder.sub("repo/jobs/x.yaml"), atomically: true, encoding: .utf8)
        let validate = try syncwright(["validate", "--path", folder.sub("repo")])
        #expect(validate.status == 1)
        #expect(validate.stderr.contains("error: the folder \(folder.sub("repo")) has 4 problems\n"), "\(validate.stderr)")
        #expect(!validate.stderr.contains("nothing was applied"))

        let fixture = try examplesFixture()
        let base = try fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try fixture.write(["collections/extra.yaml": Fixtures.collection("extra", jobs: ["hr-users-to-corp"])])
        try fixture.commit("add a collection", push: false)
        let diff = try syncwright(["diff", base, "HEAD"], in: fixture.workTree)
        #expect(diff.status == 2)
        #expect(diff.stdout.hasPrefix("Plan: revision ") && diff.stdout.contains(" against base \(base.prefix(7))"), "\(diff.stdout)")

        try fixture.write(["jobs/hr-users-to-corp.yaml": Self.badJob])
        try fixture.commit("break it", push: false)
        let markdown = try syncwright(["diff", base, "HEAD", "--format", "markdown"], in: fixture.workTree)
        #expect(markdown.status == 1)
        #expect(markdown.stdout.hasPrefix("### Syncwright: the manifests at `"), "a pull-request bot gets a comment: \(markdown.stdout)")
        #expect(markdown.stdout.contains("- `jobs/hr-users-to-corp.yaml:4:9` `spec.sourc`: unknown field"))
        #expect(markdown.stderr.contains("error: the head revision "))
        // The invalid job is reported once, by its own errors, not as missing from the collections.
        #expect(!markdown.stdout.contains("no Job named"), "\(markdown.stdout)")
    }

    @Test func withoutAHomeInAClonePointsAtValidatePath() throws {
        let fixture = try examplesFixture()
        let result = try syncwright(["validate"], in: fixture.workTree)
        #expect(result.status == 1)
        #expect(result.stderr.contains("or `syncwright validate --path .` to check the manifests in this folder without a home"),
                "\(result.stderr)")
    }

    @Test func unknownNamesGetADidYouMean() throws {
        let folder = try TemporaryFolder("did-you-mean")
        try FileManager.default.copyItem(atPath: (packageRoot as NSString).appendingPathComponent("examples"), toPath: folder.sub("repo"))
        let collection = folder.sub("repo/templates/hr-to-directories.yaml")
        let text = try String(contentsOfFile: collection, encoding: .utf8)
        try text.replacingOccurrences(of: "job: hr-users-to-corp", with: "job: hr-user-to-corp")
            .write(toFile: collection, atomically: true, encoding: .utf8)
        let schedule = folder.sub("repo/schedules/nightly.yaml")
        let scheduleText = try String(contentsOfFile: schedule, encoding: .utf8)
        try scheduleText.replacingOccurrences(of: "Europe/Berlin", with: "Europe/Berln")
            .write(toFile: schedule, atomically: true, encoding: .utf8)
        let result = try syncwright(["validate", "--path", folder.sub("repo")])
        #expect(result.stderr.contains("no Job named 'hr-user-to-corp' exists (did you mean 'hr-users-to-corp'?)"), "\(result.stderr)")
        #expect(result.stderr.contains("unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"), "\(result.stderr)")
    }
}
