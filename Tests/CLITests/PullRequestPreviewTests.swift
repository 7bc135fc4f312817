import Foundation
import TestSupport
import Testing

/// `plan --preview`, read as a pull request's reviewer reads it: each preview must list exactly
/// the object changes that the following `apply` and `run` make, and must write nothing itself.
struct PreviewedPullRequest {
    let home: Home
    let collection: String

    /// Commits `files` (removing `removed`), plans the head with --preview as JSON, and returns
    /// the exit status and the document.
    func propose(_ files: [String: String], _ message: String) throws -> (Int32, [String: Any]) {
        try home.fixture.write(files)
        try home.fixture.commit(message)
        let result = try syncwright(["plan", "--preview", "--format", "json", "--limit", "1000"] + home.args)
        let json = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(!json.isEmpty, "plan --preview printed no JSON: \(result.stderr)")
        return (result.status, json)
    }

    /// The previewed jobs: name → (why, preview).
    static func jobs(_ document: [String: Any]) -> [String: (because: String, preview: [String: Any])] {
        var out: [String: (String, [String: Any])] = [:]
        for job in ((document["preview"] as? [String: Any])?["jobs"] as? [[String: Any]]) ?? [] {
            let preview = job["preview"] as? [String: Any] ?? [:]
            out[preview["job"] as? String ?? ""] = (job["because"] as? String ?? "", preview)
        }
        return out
    }

    /// Applies and runs the head; checks that every previewed job made exactly the changes the
    /// preview listed (its log lines and its counts), and returns the run's report.
    @discardableResult
    func applyAndRunMatching(_ document: [String: Any]) throws -> [String: Any] {
        let applied = try syncwright(["apply"] + home.args)
        #expect(applied.status == 0, "\(applied.stderr)")
        let (run, report) = try home.run(collection)
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let runId = report["runId"] as? String ?? ""
        let reported = (report["jobs"] as? [[String: Any]]) ?? []
        for (name, (_, preview)) in Self.jobs(document) {
            #expect(preview["moreChanges"] as? Int == 0)
            let previewed = ((preview["lines"] as? [String]) ?? []).filter { !$0.hasPrefix("    ") }.sorted()
            let logs = try syncwright(["logs", runId, name] + home.args)
            let written = logs.stdout.split(separator: "\n").map(String.init).sorted()
            #expect(previewed == written, "job \(name): previewed \(previewed), the run wrote \(written)")
            let stats = reported.first { $0["name"] as? String == name }?["stats"] as? [String: Int] ?? [:]
            #expect(stats["created"] == preview["create"] as? Int, "job \(name) created")
            #expect(stats["updated"] == (preview["update"] as? Int ?? 0) + (preview["rename"] as? Int ?? 0), "job \(name) updated")
            #expect(stats["deleted"] == preview["delete"] as? Int, "job \(name) deleted")
        }
        return report
    }
}

@Suite struct PullRequestPreviewTests {
    static let teams = """
        name,members
        engineering,ajohnson;dmuller
        sales,bsmith

        """

    /// A job added, a mapping changed, and only the data file changed, on a real slapd: each
    /// preview writes nothing (ldapsearch sees the same directory) and lists what the run then does.
    @Test func eachPreviewListsWhatTheRunThenWritesToSlapd() throws {
        let world = try GroupsWorld()
        let home = world.home
        // Only corp and only users: the partner jobs go, and the groups job is proposed below.
        let documents = try String(contentsOfFile: home.fixture.workTree + "/jobs.yaml", encoding: .utf8).components(separatedBy: "---\n")
        let groupsJob = try #require(documents.first { $0.contains("metadata: { name: groups }") })
        let corpOnly = documents.filter { !$0.contains("metadata: { name: users-to-partner }") && !$0.contains("metadata: { name: groups-to-partner }") }
        try home.fixture.write(["jobs.yaml": corpOnly.filter { $0 != groupsJob }.joined(separator: "---\n").replacingOccurrences(
            of: "jobs: [ { job: users }, { job: groups, onFailure: continue }, { job: users-to-partner }, { job: groups-to-partner } ]",
            with: "jobs: [ { job: users } ]")])
        try home.fixture.commit("only users")
        let applied = try syncwright(["apply"] + home.args)
        #expect(applied.status == 0, "\(applied.stderr)")
        let first = try home.run("directory").0
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let pr = PreviewedPullRequest(home: home, collection: "directory")
        func snapshot() throws -> String { try world.server.search("dc=corp,dc=example") }

        // 1. A pull request that adds a job, and lists it in the collection.
        let before = try snapshot()
        var (status, document) = try pr.propose(["jobs.yaml": corpOnly.joined(separator: "---\n").replacingOccurrences(
            of: "jobs: [ { job: users }, { job: groups, onFailure: continue }, { job: users-to-partner }, { job: groups-to-partner } ]",
            with: "jobs: [ { job: users }, { job: groups, onFailure: continue } ]")], "add groups")
        #expect(status == 2)
        var previewed = PreviewedPullRequest.jobs(document)
        #expect(Set(previewed.keys) == ["groups"], "\(previewed.keys)")
        #expect(previewed["groups"]?.because == "new")
        #expect(previewed["groups"]?.preview["create"] as? Int == 3)
        #expect(try snapshot() == before, "plan --preview wrote to the directory")
        try pr.applyAndRunMatching(document)
        #expect(try world.values("cn=engineering,\(GroupsWorld.groups)", "member") == [world.person("ajohnson"), world.person("dmuller")])

        // 2. A pull request that changes a mapping: every cn is rewritten.
        (status, document) = try pr.propose(["jobs.yaml": try String(contentsOfFile: home.fixture.workTree + "/jobs.yaml", encoding: .utf8)
            .replacingOccurrences(of: #"{ destination: cn, value: "{{given}} {{sn}}" }"#, with: #"{ destination: cn, value: "{{sn}}, {{given}}" }"#)],
            "cn: surname first")
        #expect(status == 2)
        previewed = PreviewedPullRequest.jobs(document)
        #expect(previewed["users"]?.because == "changed")
        #expect(previewed["users"]?.preview["update"] as? Int == 4)
        #expect(((previewed["users"]?.preview["lines"] as? [String]) ?? []).contains(
            "~ \(world.person("ajohnson")) cn: Alice Johnson → Johnson, Alice"))
        // The groups job looks its members up through users, so it is previewed too: unchanged.
        #expect(previewed["groups"]?.because == "looks references up through users")
        try pr.applyAndRunMatching(document)
        #expect(try world.values(world.person("ajohnson"), "cn") == ["Johnson, Alice"])

        // 3. A pull request that changes only data/hr.csv: one row edited, one added, one removed.
        let hr = GroupsWorld.hr.replacingOccurrences(of: "3,cnguyen,Chi,Nguyen,1\n", with: "")
            .replacingOccurrences(of: "2,bsmith,Bob,Smith,1", with: "2,bsmith,Bob,Smythe,1") + "5,eadams,Eve,Adams,2\n"
        let text = try { () throws -> String in
            try home.fixture.write(["data/hr.csv": hr])
            try home.fixture.commit("hr: Bob's name, Eve joins, Chi leaves")
            return try syncwright(["plan"] + home.args).stdout
        }()
        #expect(text.contains("data/hr.csv: 4 rows (+1 −1 ~1)"), "\(text)")
        let result = try syncwright(["plan", "--preview", "--format", "json", "--limit", "1000"] + home.args)
        #expect(result.status == 2, "\(result.stderr)")
        document = (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? [:]
        previewed = PreviewedPullRequest.jobs(document)
        #expect(previewed["users"]?.because == "data file data/hr.csv changed")
        #expect(previewed["users"]?.preview["create"] as? Int == 1)
        #expect(previewed["users"]?.preview["delete"] as? Int == 1)
        let dataFiles = document["dataFiles"] as? [[String: Any]] ?? []
        #expect(dataFiles.first?["path"] as? String == "data/hr.csv" && dataFiles.first?["changed"] as? Int == 1)
        try pr.applyAndRunMatching(document)
        #expect(try world.server.dns(GroupsWorld.people) == ["uid=ajohnson", "uid=bsmith", "uid=dmuller", "uid=eadams"]
            .map { "\($0),\(GroupsWorld.people)" })
        #expect(try world.values(world.person("bsmith"), "sn") == ["Smythe"])

        // Now in step: nothing would change, even previewing every job.
        let settled = try syncwright(["plan", "--preview", "--all"] + home.args)
        #expect(settled.status == 0, "\(settled.stdout)\(settled.stderr)")
        #expect(settled.stdout.contains("Preview: 2 jobs: +0 ~0 −0 objects."), "\(settled.stdout)")
    }

    /// Four LDAP jobs chained, corp then partner: a pull request that adds, renames and removes
    /// people previews in each job exactly what the run then writes, though the later jobs read
    /// a corp directory the preview never wrote.
    @Test func aChainOverLDAPPreviewsEveryJobExactly() throws {
        let world = try GroupsWorld()
        #expect(try world.home.run("directory").0.status == 0)
        let pr = PreviewedPullRequest(home: world.home, collection: "directory")
        let before = try world.server.search("dc=corp,dc=example") + world.server.search("dc=partner,dc=example")
        let hr = GroupsWorld.hr.replacingOccurrences(of: "3,cnguyen,Chi,Nguyen,1\n", with: "")
            .replacingOccurrences(of: "1,ajohnson,Alice,Johnson,", with: "1,ajones,Alice,Jones,") + "5,eadams,Eve,Adams,2\n"
        let teams = GroupsWorld.teams.replacingOccurrences(of: "ajohnson", with: "ajones") + "new-hires,eadams,1\n"
        let (status, document) = try pr.propose(["data/hr.csv": hr, "data/teams.csv": teams], "Alice marries, Eve joins, Chi leaves")
        #expect(status == 2)
        #expect(try world.server.search("dc=corp,dc=example") + world.server.search("dc=partner,dc=example") == before,
                "plan --preview wrote to slapd")
        let previewed = PreviewedPullRequest.jobs(document)
        #expect(Set(previewed.keys) == ["users", "groups", "users-to-partner", "groups-to-partner"])
        #expect(previewed["users-to-partner"]?.because == "reads corp, which users would change")
        // Partner sees corp as the run will leave it: Eve created, Alice renamed, Chi deleted.
        let partnerLines = (previewed["users-to-partner"]?.preview["lines"] as? [String]) ?? []
        #expect(partnerLines.contains("+ \(world.partner("eadams"))"), "\(partnerLines)")
        #expect(partnerLines.contains("- \(world.partner("cnguyen"))"), "\(partnerLines)")
        #expect(partnerLines.contains("> \(world.partner("ajohnson")) → \(world.partner("ajones"))"), "\(partnerLines)")
        #expect(previewed["groups-to-partner"]?.preview["create"] as? Int == 1, "new-hires reaches partner")
        try pr.applyAndRunMatching(document)
        #expect(try world.values("cn=new-hires,\(GroupsWorld.partnerGroups)", "member") == [world.partner("eadams")])
        let settled = try syncwright(["plan", "--preview", "--all"] + world.home.args)
        #expect(settled.status == 0, "\(settled.stdout)")
    }

    /// Two file jobs chained: the second reads what the first writes, so a new row in the data
    /// file shows as a create in both, though the first's LDIF file is not written.
    @Test func chainedJobsSeeEachOthersChangesAndTheLDIFFilesStayAsTheyAre() throws {
        let folder = try TemporaryFolder()
        let corp = folder.sub("corp.ldif"), partner = folder.sub("partner.ldif")
        let fixture = try Fixtures.csvToLDIF(csv: "id,login\n1,ajohnson\n2,bsmith\n", out: corp, job: "users",
                                             extraMappings: [#"{ destination: userPassword, value: "pw-{{login}}" }"#])
        try fixture.write([
            "partner.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: partner }
                spec: { type: ldif, path: \(partner) }
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: to-partner }
                spec:
                  source: { connection: dst }
                  destination: { connection: partner, objectClass: [inetOrgPerson], container: "ou=People,dc=partner", rdn: uid }
                  mappings:
                    - { source: employeeNumber, destination: employeeNumber, key: true }
                    - { source: uid, destination: uid }
                    - { source: uid, destination: cn }
                    - { source: uid, destination: sn }
                  delete: true

                """,
            "collection.yaml": Fixtures.collection("c", jobs: ["users", "to-partner"]),
        ])
        try fixture.commit("partner")
        let home = try Home(fixture)
        #expect(try syncwright(["apply"] + home.args).status == 0)
        #expect(try home.run("c").0.status == 0)
        let corpBefore = FileManager.default.contents(atPath: corp), partnerBefore = FileManager.default.contents(atPath: partner)

        let pr = PreviewedPullRequest(home: home, collection: "c")
        let (status, document) = try pr.propose(["data/in.csv": "id,login\n1,ajohnson\n2,bsmith\n3,cchen\n"], "cchen joins")
        #expect(status == 2)
        let previewed = PreviewedPullRequest.jobs(document)
        #expect(previewed["users"]?.because == "data file data/in.csv changed")
        // A secret is masked wherever the preview shows it.
        #expect(((previewed["users"]?.preview["lines"] as? [String]) ?? []).contains("    + userPassword: ••••••"))
        let text = try syncwright(["plan", "--preview"] + home.args).stdout
        let markdown = try syncwright(["plan", "--preview", "--format", "markdown"] + home.args).stdout
        #expect(text.contains("userPassword: ••••••") && markdown.contains("userPassword: ••••••"))
        #expect(!text.contains("pw-cchen") && !markdown.contains("pw-cchen"))
        #expect(previewed["to-partner"]?.because == "reads dst, which users would change")
        #expect(previewed["to-partner"]?.preview["lines"] as? [String] == [
            "+ uid=cchen,ou=People,dc=partner", "    + objectClass: inetOrgPerson", "    + employeeNumber: 3",
            "    + uid: cchen", "    + cn: cchen", "    + sn: cchen"])
        #expect(FileManager.default.contents(atPath: corp) == corpBefore && FileManager.default.contents(atPath: partner) == partnerBefore,
                "plan --preview wrote an LDIF file")
        try pr.applyAndRunMatching(document)
        // python-ldap reads what the run wrote.
        let oracle = try runProcess("/usr/bin/python3", ["-c", """
            import sys, ldif
            records = ldif.LDIFRecordList(open(sys.argv[1], 'rb')); records.parse()
            print("\\n".join(sorted(dn for dn, _ in records.all_records)))
            """, partner])
        #expect(oracle.stdout == "uid=ajohnson,ou=People,dc=partner\nuid=bsmith,ou=People,dc=partner\nuid=cchen,ou=People,dc=partner\n",
                "\(oracle.stdout)\(oracle.stderr)")
    }

    /// A job that exists already but is newly listed in a collection is previewed there.
    @Test func aJobNewlyListedInACollectionIsPreviewed() throws {
        let folder = try TemporaryFolder()
        let fixture = try Fixtures.csvToLDIF(csv: "id,login\n1,ajohnson\n2,bsmith\n", out: folder.sub("out.ldif"), job: "users")
        try fixture.write(["other.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata: { name: others }
            spec:
              source: { connection: src }
              destination: { connection: dst, objectClass: [inetOrgPerson], container: "ou=Others,dc=corp", rdn: uid }
              mappings:
                - { source: id, destination: employeeNumber, key: true }
                - { source: login, destination: uid }

            """])
        try fixture.commit("others, in no collection")
        let home = try Home(fixture)
        #expect(try syncwright(["apply"] + home.args).status == 0)
        #expect(try home.run("c").0.status == 0)
        let (status, document) = try PreviewedPullRequest(home: home, collection: "c")
            .propose(["collection.yaml": Fixtures.collection("c", jobs: ["users", "others"])], "run others too")
        #expect(status == 2)
        let previewed = PreviewedPullRequest.jobs(document)
        #expect(Set(previewed.keys) == ["others"])
        #expect(previewed["others"]?.because == "added to collection c")
        #expect(previewed["others"]?.preview["create"] as? Int == 2)
        #expect((document["preview"] as? [String: Any])?["unchangedJobs"] as? Int == 1)
    }

    /// A pull-request comment: summary first, guards before the tables, details per job, and
    /// within GitHub's 65,536 characters however many jobs change.
    @Test func theMarkdownLeadsWithGuardsAndStaysWithinAComment() throws {
        let folder = try TemporaryFolder()
        let out = folder.sub("out.ldif")
        let rows = (1...3000).map { "\($0),user\($0)" }.joined(separator: "\n")
        let fixture = try Fixtures.csvToLDIF(csv: "id,login\n\(rows)\n", out: out, job: "users",
                                               extraMappings: ["{ source: login, destination: cn }", "{ source: login, destination: sn }"])
        let home = try Home(fixture)
        #expect(try syncwright(["apply"] + home.args).status == 0)
        #expect(try home.run("c").0.status == 0)
        // Every cn changes (3,000 updates), and a second job would delete past its threshold.
        try fixture.write([
            "job.yaml": try String(contentsOfFile: fixture.workTree + "/job.yaml", encoding: .utf8)
                .replacingOccurrences(of: "{ source: login, destination: cn }", with: #"{ destination: cn, value: "User {{login}} of the corp" }"#),
            "cleanup.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: cleanup }
                spec:
                  source: { connection: src, filter: 'id == "1"' }
                  destination: { connection: dst, objectClass: [inetOrgPerson], container: "ou=People,dc=corp", rdn: uid }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }
                  delete: true
                  deleteThreshold: { count: 10 }

                """,
        ])
        try fixture.commit("cn sentences, and a cleanup that would delete everything")
        let result = try syncwright(["plan", "--preview", "--format", "markdown", "--limit", "5000"] + home.args)
        #expect(result.status == 1, "a guard would trip: \(result.stderr)")
        let comment = result.stdout
        #expect(comment.utf8.count <= 65_536, "\(comment.utf8.count) bytes")
        let lines = comment.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[2] == "**2 jobs: +0 ~3000 −0 objects; 1 guard would trip** · manifests: 1 to create, 1 to update, 0 to delete")
        let guardAt = comment.range(of: "#### ⛔ Before anything else")?.lowerBound
        let tableAt = comment.range(of: "#### Collection `c`")?.lowerBound
        #expect(guardAt != nil && tableAt != nil && guardAt! < tableAt!)
        #expect(comment.contains("- `cleanup`: a guard would trip: would delete 2999, threshold 10"))
        #expect(comment.contains("| ✏️ | `users` | changed | 0 | 3000 | 0 | 0 | 0 | 0 |"))
        // users' 3,000 lines do not fit: its details are left out, with a count, and the rest stays.
        #expect(comment.contains("job detail left out to stay within a comment's 65,536 characters") ||
                comment.contains("job details left out to stay within a comment's 65,536 characters"), "\(comment.suffix(2000))")
        #expect(comment.contains("#### Manifests"))
        // With room, every job has its details.
        let small = try syncwright(["plan", "--preview", "--format", "markdown", "--limit", "3"] + home.args).stdout
        #expect(small.contains("<details><summary><code>users</code>: +0 ~3000 −0</summary>"))
        #expect(small.contains("… and 2997 more changes"))
        #expect(!small.contains("left out"))
    }
}

/// The generic CI recipe of docs/pull-requests.md, run as written: in a checkout, against slapd.
@Suite struct DocumentedCIRecipeTests {
    static func recipe() throws -> String {
        let doc = try String(contentsOfFile: packageRoot + "/docs/pull-requests.md", encoding: .utf8)
        let section = try #require(doc.range(of: "### Generic CI")).upperBound
        let start = try #require(doc.range(of: "```sh\n", range: section..<doc.endIndex)).upperBound
        let end = try #require(doc.range(of: "\n```", range: start..<doc.endIndex)).lowerBound
        return String(doc[start..<end])
    }

    /// Runs the recipe in `world`'s checkout for base..head; its exit status and the comment it posted.
    static func runRecipe(_ world: GroupsWorld, base: String, head: String) throws -> (Int32, String) {
        let folder = try TemporaryFolder()
        try recipe().write(toFile: folder.sub("preview.sh"), atomically: true, encoding: .utf8)
        let stub = folder.sub("bin")
        try FileManager.default.createDirectory(atPath: stub, withIntermediateDirectories: true)
        try "#!/bin/sh\ncp \"$1\" \"\(folder.sub("posted.md"))\"\n".write(toFile: stub + "/post-comment", atomically: true, encoding: .utf8)
        chmod(stub + "/post-comment", 0o755)
        let path = [URL(fileURLWithPath: binary).deletingLastPathComponent().path, stub,
                    ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"].joined(separator: ":")
        let result = try runProcess("/bin/bash", [folder.sub("preview.sh")], in: world.home.fixture.workTree, environment: [
            "PATH": path, "BASE_SHA": base, "HEAD_SHA": head, "LINK_BASE": "https://git.example/config/blob/\(head)/", "NO_COLOR": "1",
        ])
        let posted = (try? String(contentsOfFile: folder.sub("posted.md"), encoding: .utf8)) ?? ""
        #expect(!posted.isEmpty, "nothing posted: \(result.stdout)\(result.stderr)")
        return (result.status, posted)
    }

    @Test func theGenericRecipePostsThePreviewAndFailsOnlyOnAProblem() throws {
        let world = try GroupsWorld()
        #expect(try world.home.run("directory").0.status == 0)
        let fixture = world.home.fixture
        let base = try fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try fixture.write(["data/hr.csv": GroupsWorld.hr + "5,eadams,Eve,Adams,2\n"])
        let head = try fixture.commit("Eve joins").trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try world.server.search("dc=corp,dc=example")
        let (status, comment) = try Self.runRecipe(world, base: base, head: head)
        #expect(status == 0, "\(comment)")
        // Chained over LDAP: the new user is copied to partner too, though corp does not hold her yet.
        #expect(comment.contains("**4 jobs: +2 ~0 −0 objects** · manifests: 0 to create, 0 to update, 0 to delete, 1 data file changed"), "\(comment)")
        #expect(comment.contains("| ✏️ | `users-to-partner` | reads corp, which users would change | 1 | 0 |"), "\(comment)")
        #expect(comment.contains("+ uid=eadams,\(GroupsWorld.partnerPeople)"), "\(comment)")
        #expect(comment.contains("| ✏️ | `users` | data file data/hr.csv changed | 1 |"), "\(comment)")
        #expect(comment.contains("+ uid=eadams,\(GroupsWorld.people)"))
        #expect(comment.contains("`data/hr.csv`: 5 rows (+1 −0 ~0)"))
        #expect(try world.server.search("dc=corp,dc=example") == before, "the recipe wrote to the directory")

        // An invalid head: the comment lists its problems, linked, and the check fails.
        try fixture.write(["jobs.yaml": try String(contentsOfFile: fixture.workTree + "/jobs.yaml", encoding: .utf8)
            .replacingOccurrences(of: "  delete: true\n---", with: "  delet: true\n---")])
        let bad = try fixture.commit("typo").trimmingCharacters(in: .whitespacesAndNewlines)
        let (failed, problems) = try Self.runRecipe(world, base: base, head: bad)
        #expect(failed == 1)
        #expect(problems.contains("are invalid"), "\(problems)")
        #expect(problems.contains("https://git.example/config/blob/\(bad)/jobs.yaml#L"), "\(problems)")
    }
}
