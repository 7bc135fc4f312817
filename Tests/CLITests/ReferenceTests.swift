import Foundation
import TestSupport
import Testing

/// Users, managers and groups, from CSV into corp and from corp into partner, on a throwaway
/// slapd (two suffixes as two domains), checked with ldapsearch.
struct GroupsWorld {
    static let people = "ou=People,dc=corp,dc=example"
    static let groups = "ou=Groups,dc=corp,dc=example"
    static let partnerPeople = "ou=People,dc=partner,dc=example"
    static let partnerGroups = "ou=Groups,dc=partner,dc=example"
    /// Bob's manager is Alice, who comes after him (created in the same run); Dörte's is Chi.
    static let hr = """
        id,login,given,sn,manager
        2,bsmith,Bob,Smith,1
        1,ajohnson,Alice,Johnson,
        3,cnguyen,Chi,Nguyen,1
        4,dmuller,Dörte,Müller,3

        """
    /// `ghost` names no user; `owner` is an employeeNumber, looked up in the directory.
    static let teams = """
        name,members,owner
        engineering,ajohnson;dmuller;ghost,1
        sales,bsmith,2
        everyone,ajohnson;bsmith;cnguyen;dmuller,9

        """

    let server: Slapd
    let secrets: TemporaryFolder
    let home: Home

    init(membership: String = "authoritative", onUnresolved: String = "skipValue", teams: String = Self.teams,
         corpExtra: String = "", by: String = "login") throws {
        server = try Slapd()
        for suffix in ["dc=corp,dc=example", "dc=partner,dc=example"] {
            try server.add("dn: ou=Groups,\(suffix)\nobjectClass: organizationalUnit\nou: Groups\n\n", suffix: suffix)
        }
        secrets = try TemporaryFolder()
        try Slapd.syncPassword.write(toFile: secrets.sub("pw"), atomically: true, encoding: .utf8)
        let fixture = try GitFixture(files: [
            "connections.yaml": LDAPWorld.connections(
                ("corp", server.url, "dc=corp,dc=example", secrets.sub("pw"), corpExtra),
                ("partner", server.url, "dc=partner,dc=example", secrets.sub("pw"), ""))
                + """
                ---
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: teams }
                spec: { type: csv, repoPath: data/teams.csv }

                """,
            "data/hr.csv": Self.hr,
            "data/teams.csv": teams,
            "jobs.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: users }
                spec:
                  source: { connection: hr }
                  destination: { connection: corp, objectClass: [inetOrgPerson], container: "\(Self.people)", rdn: uid }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }
                    - { destination: cn, value: "{{given}} {{sn}}" }
                    - { source: sn, destination: sn }
                    - { source: manager, destination: manager, resolve: { job: users } }
                  delete: true
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: groups }
                spec:
                  source: { connection: teams }
                  destination: { connection: corp, objectClass: [groupOfNames], container: "\(Self.groups)", rdn: cn }
                  mappings:
                    - { source: name, destination: cn, key: true }
                    - { source: members, destination: member, delimiter: ";", resolve: { job: users, by: \(by) },
                        membership: \(membership), onUnresolved: \(onUnresolved) }
                    - { source: owner, destination: owner, resolve: { attribute: employeeNumber, base: "\(Self.people)" } }
                  delete: true
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: users-to-partner }
                spec:
                  source: { connection: corp, base: "\(Self.people)", filter: 'exists(employeeNumber)' }
                  destination: { connection: partner, objectClass: [inetOrgPerson], container: "\(Self.partnerPeople)", rdn: uid }
                  mappings:
                    - { source: employeeNumber, destination: employeeNumber, key: true }
                    - { source: uid, destination: uid }
                    - { source: cn, destination: cn }
                    - { source: sn, destination: sn }
                  delete: true
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: groups-to-partner }
                spec:
                  source: { connection: corp, base: "\(Self.groups)", filter: 'exists(member)' }
                  destination: { connection: partner, objectClass: [groupOfNames], container: "\(Self.partnerGroups)", rdn: cn }
                  mappings:
                    - { source: cn, destination: cn, key: true }
                    - { source: member, destination: member, resolve: { job: users-to-partner, from: dn } }
                  delete: true
                ---
                apiVersion: syncwright.dev/v1
                kind: JobCollection
                metadata: { name: directory }
                spec:
                  jobs: [ { job: users }, { job: groups, onFailure: continue }, { job: users-to-partner }, { job: groups-to-partner } ]

                """,
        ])
        home = try Home(fixture)
    }

    /// The values of `attribute` of the entry at `dn`, as ldapsearch prints them (sorted).
    func values(_ dn: String, _ attribute: String) throws -> [String] {
        try server.search(dn, "(objectClass=*)", [attribute], scope: "base").split(separator: "\n")
            .filter { $0.lowercased().hasPrefix(attribute.lowercased() + ":") }
            .map { line in
                let value = line.drop { $0 != ":" }.dropFirst()
                return value.hasPrefix(": ")
                    ? String(decoding: Data(base64Encoded: String(value.dropFirst(2))) ?? Data(), as: UTF8.self)
                    : String(value.dropFirst())
            }
            .sorted()
    }

    func person(_ login: String) -> String { "uid=\(login),\(Self.people)" }
    func partner(_ login: String) -> String { "uid=\(login),\(Self.partnerPeople)" }

    func change(_ files: [String: String], _ message: String) throws {
        try home.fixture.write(files)
        try home.fixture.commit(message)
        let applied = try syncwright(["apply"] + home.args)
        #expect(applied.status == 0, "\(applied.stderr)")
    }

    func ldapmodify(_ ldif: String) throws {
        let file = secrets.sub("modify-\(UUID().uuidString.prefix(6)).ldif")
        try ldif.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try runProcess("/usr/bin/ldapmodify", ["-x", "-H", server.url, "-D", Slapd.rootDN("dc=corp,dc=example"),
                                                             "-w", Slapd.rootPassword, "-f", file])
        #expect(result.status == 0, "\(result.stderr)")
    }
}

@Suite(.serialized) struct ReferenceTests {
    @Test func managersAndMembersResolveWithinAndAcrossDomainsThenNothingChanges() throws {
        let world = try GroupsWorld()
        let (first, report) = try world.home.run("directory")
        #expect(first.status == 0, "\(first.stdout)")
        // Bob's manager Alice was created after him, in the same job: written in a second pass.
        #expect(try world.values(world.person("bsmith"), "manager") == [world.person("ajohnson")])
        #expect(try world.values(world.person("dmuller"), "manager") == [world.person("cnguyen")])
        #expect(try world.values(world.person("ajohnson"), "manager") == [])
        #expect(stats(report, 0)["created"] == 4 && stats(report, 0)["updated"] == 0)
        // Members by login; `ghost` names nobody: left out, counted, logged.
        #expect(try world.values("cn=engineering,\(GroupsWorld.groups)", "member") == [world.person("ajohnson"), world.person("dmuller")])
        #expect(try world.values("cn=everyone,\(GroupsWorld.groups)", "member").count == 4)
        #expect(stats(report, 1)["unresolved"] == 2) // ghost, and owner 9
        #expect(try world.values("cn=sales,\(GroupsWorld.groups)", "owner") == [world.person("bsmith")])
        #expect(try world.values("cn=everyone,\(GroupsWorld.groups)", "owner") == [])
        let runId = try #require(report["runId"] as? String)
        let log = try syncwright(["logs", runId, "groups"] + world.home.args).stdout
        #expect(log.contains("? #1 member: 1 value left out: 'ghost' names no object of job users (by login)"), "\(log)")
        // Domain to domain: corp's member DNs become partner's.
        #expect(try world.values("cn=engineering,\(GroupsWorld.partnerGroups)", "member") == [world.partner("ajohnson"), world.partner("dmuller")])
        #expect(stats(report, 3)["unresolved"] == 0)

        let (again, second) = try world.home.run("directory")
        #expect(again.status == 0, "\(again.stderr)")
        for job in 0..<4 { #expect(stats(second, job)["updated"] == 0 && stats(second, job)["created"] == 0, "job \(job): \(stats(second, job))") }
    }

    @Test func aRenamedUserIsRewrittenInEveryGroupAndManagerInTheSameRun() throws {
        let world = try GroupsWorld()
        #expect(try world.home.run("directory").0.status == 0)
        try world.change(["data/hr.csv": GroupsWorld.hr.replacingOccurrences(of: "ajohnson", with: "ajones"),
                          "data/teams.csv": GroupsWorld.teams.replacingOccurrences(of: "ajohnson", with: "ajones")], "Alice is now ajones")
        let (result, report) = try world.home.run("directory")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try world.server.dns(GroupsWorld.people).contains(world.person("ajones")))
        // No value anywhere still names the old DN (slapd here has no referential-integrity overlay).
        #expect(try world.server.search("dc=corp,dc=example", "(|(member=\(world.person("ajohnson")))(manager=\(world.person("ajohnson"))))", ["1.1"]).isEmpty)
        #expect(try world.values(world.person("bsmith"), "manager") == [world.person("ajones")])
        #expect(try world.values(world.person("cnguyen"), "manager") == [world.person("ajones")])
        #expect(try world.values("cn=engineering,\(GroupsWorld.groups)", "member") == [world.person("ajones"), world.person("dmuller")])
        #expect(try world.values("cn=engineering,\(GroupsWorld.partnerGroups)", "member") == [world.partner("ajones"), world.partner("dmuller")])
        #expect(try world.server.search("dc=partner,dc=example", "(member=\(world.partner("ajohnson")))", ["1.1"]).isEmpty)
        #expect(stats(report, 0)["updated"] == 3) // the rename, and two managers
    }

    @Test func authoritativeRemovesWhatTheSourceDoesNotHoldAndAdditiveOnlyAdds() throws {
        for membership in ["authoritative", "additive"] {
            let world = try GroupsWorld(membership: membership)
            #expect(try world.home.run("directory").0.status == 0)
            // Someone adds Chi to sales by hand; HR drops Dörte from engineering and adds Bob.
            try world.ldapmodify("dn: cn=sales,\(GroupsWorld.groups)\nchangetype: modify\nadd: member\nmember: \(world.person("cnguyen"))\n\n")
            try world.change(["data/teams.csv": GroupsWorld.teams.replacingOccurrences(of: "ajohnson;dmuller;ghost", with: "ajohnson;bsmith")],
                             "engineering changes")
            let (result, _) = try world.home.run("directory")
            #expect(result.status == 0, "\(result.stderr)")
            let engineering = try world.values("cn=engineering,\(GroupsWorld.groups)", "member")
            let sales = try world.values("cn=sales,\(GroupsWorld.groups)", "member")
            if membership == "authoritative" {
                #expect(engineering == [world.person("ajohnson"), world.person("bsmith")])
                #expect(sales == [world.person("bsmith")])
            } else {
                #expect(engineering == [world.person("ajohnson"), world.person("bsmith"), world.person("dmuller")])
                #expect(sales == [world.person("bsmith"), world.person("cnguyen")])
            }
        }
    }

    @Test func aGroupWithNoMemberLeftFailsItsRowAndIsNeverEmptied() throws {
        let world = try GroupsWorld()
        #expect(try world.home.run("directory").0.status == 0)
        // Every member of sales leaves HR's list, and a new group names only unknown logins.
        try world.change(["data/teams.csv": GroupsWorld.teams.replacingOccurrences(of: "sales,bsmith,2", with: "sales,,2")
            + "ghosts,nobody;noone,1\n"], "empty groups")
        let (result, report) = try world.home.run("directory")
        #expect(result.status == 3, "\(result.stdout)") // partial
        #expect(stats(report, 1)["failed"] == 2)
        let reasons = ((report["jobs"] as? [[String: Any]])?[1]["failures"] as? [[String: String]])?.compactMap { $0["reason"] } ?? []
        #expect(reasons.allSatisfy { $0.contains("would have no member values, and an object of class groupOfNames needs at least one") }, "\(reasons)")
        #expect(try world.values("cn=sales,\(GroupsWorld.groups)", "member") == [world.person("bsmith")])
        #expect(!(try world.server.dns(GroupsWorld.groups).contains("cn=ghosts,\(GroupsWorld.groups)")))
    }

    @Test func failRowFailsARowWithAnUnresolvedValueAndWritesNoneOfIt() throws {
        let world = try GroupsWorld(onUnresolved: "failRow")
        let (result, report) = try world.home.run("directory")
        #expect(result.status == 3) // partial
        #expect(stats(report, 1)["failed"] == 1 && stats(report, 1)["created"] == 2)
        #expect(!(try world.server.dns(GroupsWorld.groups).contains("cn=engineering,\(GroupsWorld.groups)")))
        #expect(result.stdout.contains("'ghost' names no object of job users (by login) (onUnresolved: failRow)"), "\(result.stdout)")
    }

    @Test func aPreviewChainsReferencesToUsersNotYetCreatedAndShowsMembersGainedAndLost() throws {
        let world = try GroupsWorld()
        let preview = try syncwright(["run", "directory", "--preview", "--show", "20"] + world.home.args).stdout
        // The groups job resolves logins through the users job's plan: the four users it would
        // create count, so only `ghost` is left out of a member list. (Owners are looked up in
        // the directory as it is: none exists yet. The partner jobs read corp, still empty.)
        #expect(preview.contains("users: read 4; 4 to create"), "\(preview)")
        #expect(preview.contains("groups: read 3; 3 to create"), "\(preview)")
        #expect(preview.contains("? #1 member: 1 value left out: 'ghost' names no object of job users (by login)"), "\(preview)")
        #expect(!preview.contains("? #3 member"), "\(preview)")
        #expect(try world.server.dns(GroupsWorld.people).isEmpty)

        #expect(try world.home.run("directory").0.status == 0)
        try world.change(["data/hr.csv": GroupsWorld.hr + "5,eowen,Eve,Owen,1\n",
                          "data/teams.csv": GroupsWorld.teams.replacingOccurrences(of: "ajohnson;dmuller;ghost", with: "dmuller;eowen")],
                         "Eve joins engineering, Alice leaves it")
        let text = try syncwright(["run", "directory", "--preview"] + world.home.args)
        #expect(text.stdout.contains("~ cn=engineering,\(GroupsWorld.groups) member: added \(world.person("eowen")); removed \(world.person("ajohnson")) (2 values)"),
                "\(text.stdout)")
    }

    @Test func aByColumnNoRowHasFailsTheJobWithOneSentenceAndWritesNothing() throws {
        let world = try GroupsWorld(by: "logn")
        let (result, report) = try world.home.run("directory")
        #expect(result.status == 1, "\(result.stdout)") // a job failed (the users were written)
        #expect(jobField(report, 1, "status") == "failed")
        #expect(jobField(report, 1, "error") == "job groups: its reference to job users (by logn) could not be looked up, so nothing "
                + "was written: resolve by 'logn': no source row of job users has a field logn, so no value could resolve; "
                + "check the column's name in the job's source", "\(jobField(report, 1, "error") ?? "")")
        #expect(try world.server.dns(GroupsWorld.groups).isEmpty)
    }

    @Test func aCreateWithMoreValuesThanOneRequestCarriesIsSplitAndKeepsEveryValue() throws {
        let teams = "name,members,owner\neveryone,ajohnson;bsmith;cnguyen;dmuller,1\n"
        let world = try GroupsWorld(teams: teams, corpExtra: "maxValuesPerRequest: 2")
        let (result, report) = try world.home.run("directory")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(stats(report, 1)["created"] == 1)
        #expect(try world.values("cn=everyone,\(GroupsWorld.groups)", "member").count == 4)
        // A later change of three members goes in two modifies, and lands whole.
        try world.change(["data/teams.csv": "name,members,owner\neveryone,ajohnson,1\n"], "three leave")
        #expect(try world.home.run("directory").0.status == 0)
        #expect(try world.values("cn=everyone,\(GroupsWorld.groups)", "member") == [world.person("ajohnson")])
    }
}

/// The demo repository's managers and groups, into LDIF files: a file destination is a directory
/// too. The LDIF is read back with python-ldap (Debian's python3-ldap), an independent parser.
@Suite struct FileReferenceTests {
    static let people = "ou=People,dc=corp,dc=example"

    func entries(_ file: String) throws -> [String: [String: [String]]] {
        let script = """
            import json, sys, ldif
            records = ldif.LDIFRecordList(open(sys.argv[1], 'rb')); records.parse()
            print(json.dumps({dn: {k.lower(): [v.decode() for v in vs] for k, vs in attrs.items()} for dn, attrs in records.all_records}))
            """
        let result = try runProcess("/usr/bin/python3", ["-c", script, file])
        try #require(result.status == 0, "python-ldap failed: \(result.stderr)")
        return try JSONDecoder().decode([String: [String: [String]]].self, from: Data(result.stdout.utf8))
    }

    @Test func theDemoWritesManagersAndGroupsIntoLDIFAndLeavesOutWhoIsNoUser() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder("file-references")
        let home = try TestHome(fixture, in: folder)
        let run = try home.run(["run", "nightly-directory-sync", "--format", "json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(jobField(report, 1, "status") == "succeeded", "\(run.stdout)")
        // Evan is inactive and Femi a contractor: no user of hr-users-to-corp, so left out.
        #expect(stats(report, 1)["created"] == 4 && stats(report, 1)["unresolved"] == 2)
        let corp = try entries(home.file("directories/corp.ldif"))
        func user(_ login: String) -> String { "uid=\(login),\(Self.people)" }
        #expect(corp[user("ajohnson")]?["manager"] == [user("bsmith")])
        #expect(corp[user("bsmith")]?["manager"] == nil)
        #expect(corp[user("dmüller")]?["manager"] == [user("bsmith")])
        #expect(corp["cn=identity-team,ou=Groups,dc=corp,dc=example"]?["member"] == [user("dmüller"), user("ajohnson")])
        #expect(corp["cn=all-staff,ou=Groups,dc=corp,dc=example"]?["member"]?.count == 4)
        // Again: nothing changes.
        let again = try home.run(["run", "nightly-directory-sync", "--format", "json"])
        let second = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        #expect(stats(second, 0)["unchanged"] == 4 && stats(second, 1)["unchanged"] == 4)
    }
}
