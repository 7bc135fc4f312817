import Foundation
import TestSupport
import Testing

/// The seed's two-domain collection (`examples/ad/`), run by the built binary against two real
/// Samba AD domain controllers (CORP.TEST on 127.0.0.2, PARTNER.TEST on 127.0.0.3), and checked
/// with `ldapsearch` and binds of the accounts it made.
@Suite(.serialized) struct TwoDomainTests {
    /// The example's manifests, pointed at the test DCs. Each test has its own OUs and account
    /// names (`tag`), so that tests sharing the DCs never meet.
    struct World {
        let corp: SambaDC
        let partner: SambaDC
        let tag: String
        let folder: TemporaryFolder
        let fixture: GitFixture
        var staff: String { "OU=Staff\(tag),\(corp.baseDN)" }
        var groups: String { "OU=Groups\(tag),\(corp.baseDN)" }
        var people: String { "OU=Corp\(tag),\(partner.baseDN)" }
        var partnerGroups: String { "OU=Corp Groups\(tag),\(partner.baseDN)" }
        var hires: String { "OU=Hires\(tag),\(partner.baseDN)" }
        var passwords: String { folder.sub("partner-passwords.csv") }

        init(tag: String, extraManifests: [String: String] = [:]) throws {
            corp = try SambaDC.corp.get()
            partner = try SambaDC.partner.get()
            self.tag = tag
            folder = try TemporaryFolder("two-domain")
            let secret = folder.sub("admin-password")
            try SambaDC.adminPassword.write(toFile: secret, atomically: true, encoding: .utf8)
            let examples = (packageRoot as NSString).appendingPathComponent("examples/ad")
            var files: [String: String] = [:]
            for name in ["connections.yaml", "jobs.yaml"] {
                var text = try String(contentsOfFile: (examples as NSString).appendingPathComponent(name), encoding: .utf8)
                for (from, to) in [
                    ("ldaps://dc1.corp.example", corp.ldapsURL), ("ldaps://dc1.partner.example", partner.ldapsURL),
                    ("/etc/syncwright/corp-ca.pem", corp.tls.caFile), ("/etc/syncwright/partner-ca.pem", partner.tls.caFile),
                    ("CN=svc-syncwright,CN=Users,DC=corp,DC=example", corp.adminDN),
                    ("CN=svc-syncwright,CN=Users,DC=partner,DC=example", partner.adminDN),
                    ("{ env: CORP_AD_PASSWORD }", "{ file: \(secret) }"), ("{ env: PARTNER_AD_PASSWORD }", "{ file: \(secret) }"),
                    ("/run/secrets/partner-passwords.csv", folder.sub("partner-passwords.csv")),
                    ("OU=Staff,DC=corp,DC=example", "OU=Staff\(tag),DC=corp,DC=example"),
                    ("OU=Groups,DC=corp,DC=example", "OU=Groups\(tag),DC=corp,DC=example"),
                    ("OU=Corp,DC=partner,DC=example", "OU=Corp\(tag),DC=partner,DC=example"),
                    ("OU=Corp Groups,DC=partner,DC=example", "OU=Corp Groups\(tag),DC=partner,DC=example"),
                    ("DC=corp,DC=example", corp.baseDN), ("DC=partner,DC=example", partner.baseDN),
                ] {
                    text = text.replacingOccurrences(of: from, with: to)
                }
                files[name] = text
            }
            fixture = try GitFixture()
            try fixture.write(files.merging(extraManifests) { _, new in new })
            try fixture.commit("the two-domain example")
            // The OUs the collection writes into exist, as an administrator would make them.
            try corp.add([staff, groups].map { "dn: \($0)\nobjectClass: organizationalUnit\n" }.joined(separator: "\n"))
            try partner.add([people, partnerGroups, hires].map { "dn: \($0)\nobjectClass: organizationalUnit\n" }.joined(separator: "\n"))
        }

        /// A user of corp's Staff OU.
        func corpUser(_ cn: String, _ account: String, control: Int = 512, manager: String? = nil) -> String {
            """
            dn: CN=\(cn),\(staff)
            objectClass: user
            sAMAccountName: \(account)
            givenName: \(cn.split(separator: " ")[0])
            sn: \(cn.split(separator: " ").last ?? "")
            displayName: \(cn)
            mail: \(account)@corp.test
            title: Engineer
            userAccountControl: \(control)
            \(manager.map { "manager: CN=\($0),\(staff)\n" } ?? "")
            """
        }

        /// The partner accounts below `base`, by cn.
        func partnerEntries(_ base: String, _ filter: String = "(objectClass=user)") throws -> [String: [String: [String]]] {
            var out: [String: [String: [String]]] = [:]
            for (_, values) in try partner.entries(base, filter, [
                "cn", "sAMAccountName", "userPrincipalName", "mS-DS-ConsistencyGuid", "userAccountControl", "pwdLastSet", "manager",
                "member", "mail", "title", "uSNChanged", "distinguishedName",
            ]) {
                if let cn = values["cn"]?.first { out[cn] = values }
            }
            return out
        }

        /// corp's objectGUIDs, by cn, as base64.
        func corpGUIDs(_ base: String, _ filter: String) throws -> [String: String] {
            var out: [String: String] = [:]
            for (_, values) in try corp.entries(base, filter, ["cn", "objectGUID"]) {
                if let cn = values["cn"]?.first, let guid = values["objectguid"]?.first { out[cn] = guid }
            }
            return out
        }
    }

    /// Users keyed by corp's objectGUID, with generated passwords, managers and groups; a rerun
    /// that writes nothing; a rename and a disabled account in corp followed in partner;
    /// passwords from a file, one refused by the domain's policy; a leaver deleted.
    @Test func theTwoDomainCollectionKeepsPartnerInStepWithCorp() throws {
        let w = try World(tag: "1")
        try w.corp.add([
            w.corpUser("Alice Liddell", "alice1"),
            w.corpUser("Bob Hatter", "bob1", manager: "Alice Liddell"),
            w.corpUser("Carol Dormouse", "carol1", control: 514),
            """
            dn: CN=Team Blue,\(w.groups)
            objectClass: group
            sAMAccountName: blue1
            description: The blue team
            member: CN=Alice Liddell,\(w.staff)
            member: CN=Bob Hatter,\(w.staff)

            dn: CN=Team Red,\(w.groups)
            objectClass: group
            sAMAccountName: red1
            member: CN=Carol Dormouse,\(w.staff)
            member: \(w.corp.adminDN)

            """,
        ].joined(separator: "\n"))
        let home = try Home(w.fixture)
        let guids = try w.corpGUIDs(w.staff, "(objectClass=user)")

        // 0. A preview shows the binary key as a GUID (python's uuid, bytes_le, is the oracle),
        // masks the generated password, and writes nothing.
        let preview = try syncwright(["run", "corp-to-partner-ad", "--preview"] + home.args)
        #expect(preview.status == 0, "\(preview.stdout)\(preview.stderr)")
        let oracle = try runProcess("/usr/bin/python3", ["-c", "import base64, sys, uuid; print(uuid.UUID(bytes_le=base64.b64decode(sys.argv[1])))",
                                                         String((guids["Alice Liddell"] ?? "").dropFirst("base64:".count))])
        let guidText = oracle.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(guidText.count == 36 && preview.stdout.contains("+ mS-DS-ConsistencyGuid: \(guidText)"), "\(guidText): \(preview.stdout)")
        #expect(preview.stdout.contains("+ unicodePwd: ••••••"), "\(preview.stdout)")
        #expect(try w.partnerEntries(w.people).isEmpty, "a preview writes nothing")

        // 1. The first run creates everything.
        let (first, report) = try home.run("corp-to-partner-ad")
        #expect(first.status == 0 && report["status"] as? String == "succeeded", "\(first.stdout)\(first.stderr)")
        #expect(stats(report, 0)["created"] == 3 && stats(report, 1)["created"] == 2, "\(report)")
        #expect(stats(report, 1)["unresolved"] == 1, "the Administrator is not a user the job copies: \(report)")
        var users = try w.partnerEntries(w.people)
        #expect(Set(users.keys) == ["Alice Liddell", "Bob Hatter", "Carol Dormouse"], "\(users.keys)")
        for (cn, guid) in guids {
            // The key: corp's objectGUID, byte for byte, in the partner account.
            #expect(users[cn]?["ms-ds-consistencyguid"] == [guid], "\(cn): \(users[cn] ?? [:])")
        }
        let alice = "CN=Alice Liddell,\(w.people)", bob = "CN=Bob Hatter,\(w.people)", carol = "CN=Carol Dormouse,\(w.people)"
        #expect(users["Alice Liddell"]?["userprincipalname"] == ["alice1@partner.example"])
        #expect(users["Bob Hatter"]?["manager"] == [alice], "\(users["Bob Hatter"] ?? [:])")
        // Enabled accounts got a password (Samba would enable one without: pwdLastSet shows it
        // was set), and the disabled one stays disabled.
        #expect(users["Alice Liddell"]?["useraccountcontrol"] == ["512"] && users["Alice Liddell"]?["pwdlastset"] != ["0"])
        #expect(users["Bob Hatter"]?["useraccountcontrol"] == ["512"] && users["Bob Hatter"]?["pwdlastset"] != ["0"])
        #expect(users["Carol Dormouse"]?["useraccountcontrol"] == ["514"], "\(users["Carol Dormouse"] ?? [:])")
        var groups = try w.partnerEntries(w.partnerGroups, "(objectClass=group)")
        #expect(Set(groups["Team Blue"]?["member"] ?? []) == [alice, bob], "\(groups)")
        #expect(groups["Team Red"]?["member"] == [carol], "\(groups)")

        // 2. A rerun writes nothing: every count is unchanged, and no object's USN moved.
        let usns = users.mapValues { $0["usnchanged"] ?? [] }
        let (second, again) = try home.run("corp-to-partner-ad")
        #expect(second.status == 0 && again["status"] as? String == "succeeded", "\(second.stderr)")
        for job in 0..<2 {
            let counts = stats(again, job)
            #expect(counts["created"] == 0 && counts["updated"] == 0 && counts["deleted"] == 0 && counts["failed"] == 0, "\(again)")
        }
        #expect(stats(again, 0)["unchanged"] == 3 && stats(again, 1)["unchanged"] == 2, "\(again)")
        #expect(try w.partnerEntries(w.people).mapValues { $0["usnchanged"] ?? [] } == usns)

        // 3. In corp, Alice is renamed and Bob disabled: partner follows, and so do its groups.
        try w.corp.modify("""
            dn: CN=Alice Liddell,\(w.staff)
            changetype: modrdn
            newrdn: CN=Alice Pleasance
            deleteoldrdn: 1

            dn: CN=Bob Hatter,\(w.staff)
            changetype: modify
            replace: userAccountControl
            userAccountControl: 514

            """)
        let (third, changed) = try home.run("corp-to-partner-ad")
        #expect(third.status == 0 && changed["status"] as? String == "succeeded", "\(third.stderr)")
        #expect(stats(changed, 0)["updated"] == 2 && stats(changed, 0)["created"] == 0 && stats(changed, 0)["deleted"] == 0,
                "\(changed)")
        users = try w.partnerEntries(w.people)
        let renamed = "CN=Alice Pleasance,\(w.people)"
        #expect(Set(users.keys) == ["Alice Pleasance", "Bob Hatter", "Carol Dormouse"], "\(users.keys)")
        #expect(users["Alice Pleasance"]?["ms-ds-consistencyguid"] == [guids["Alice Liddell"] ?? "?"], "the same account, renamed")
        #expect(users["Bob Hatter"]?["useraccountcontrol"] == ["514"] && users["Bob Hatter"]?["manager"] == [renamed])
        groups = try w.partnerEntries(w.partnerGroups, "(objectClass=group)")
        #expect(Set(groups["Team Blue"]?["member"] ?? []) == [renamed, bob], "\(groups)")
        let (fourth, quiet) = try home.run("corp-to-partner-ad")
        #expect(fourth.status == 0 && stats(quiet, 0)["updated"] == 0 && stats(quiet, 1)["updated"] == 0, "\(quiet)")

        // 4. Passwords from a file: Alice's is set and she can bind with it; Carol's is refused
        // by the domain's policy, which fails that row only.
        try "sAMAccountName,password\nalice1,N3w-Secret-pass!\ncarol1,abc\n".write(toFile: w.passwords, atomically: true, encoding: .utf8)
        let (fifth, set) = try home.run("partner-ad-passwords")
        #expect(fifth.status != 0 && set["status"] as? String == "partial", "\(fifth.stdout)\(fifth.stderr)")
        #expect(stats(set, 0)["updated"] == 1 && stats(set, 0)["failed"] == 1, "\(set)")
        let reasons = ((set["jobs"] as? [[String: Any]])?[0]["failures"] as? [[String: String]]) ?? []
        #expect(reasons.count == 1 && reasons[0]["object"]?.lowercased() == carol.lowercased(), "\(reasons)")
        #expect(reasons.first?["reason"]?.contains("constraintViolation") == true
                && reasons.first?["reason"]?.contains("check_password_restrictions") == true, "\(reasons)")
        #expect(try w.partner.canBind(renamed, password: "N3w-Secret-pass!"))
        #expect(try !w.partner.canBind(renamed, password: "wrong-Passw0rd!"))
        for text in [fifth.stdout, fifth.stderr, try syncwright(["history", "--format", "json"] + home.args).stdout] {
            #expect(!text.contains("N3w-Secret-pass!") && !text.contains("'abc'"), "a password was shown")
        }
        // Nor is it kept: not in the state (SQLite, its log included), not in any report the
        // home's repository holds (read back through the git CLI, which inflates them).
        let homePath = home.folder.sub("home")
        for name in (try FileManager.default.subpathsOfDirectory(atPath: homePath)) where !name.hasPrefix("repo.git") {
            let bytes = FileManager.default.contents(atPath: (homePath as NSString).appendingPathComponent(name)) ?? Data()
            #expect(bytes.range(of: Data("N3w-Secret-pass!".utf8)) == nil, "the password is in \(name)")
        }
        let reports = try runProcess("/usr/bin/git", ["--git-dir", (homePath as NSString).appendingPathComponent("repo.git"),
                                                      "log", "-p", "--all"])
        #expect(reports.status == 0 && reports.stdout.contains("partner-ad-passwords"), "\(reports.stderr)")
        #expect(!reports.stdout.contains("N3w-Secret-pass!"), "a report holds the password")

        // 5. Carol leaves corp. One of three is more than the example's threshold (10%), so
        // nothing is deleted; with the threshold raised in a commit, her partner account (found
        // by her GUID) is deleted, and no other, and Team Red has no member left.
        try w.corp.modify("dn: CN=Carol Dormouse,\(w.staff)\nchangetype: delete\n")
        let (guarded, held) = try home.run("corp-to-partner-ad")
        #expect(guarded.status != 0 && jobField(held, 0, "error") == "would delete 1 of 3 (33%), threshold 10%; nothing was changed "
                + "(raise deleteThreshold if that is expected)", "\(held)")
        #expect(try w.partnerEntries(w.people).count == 3)
        let jobs = w.fixture.workTree + "/jobs.yaml"
        try String(contentsOfFile: jobs, encoding: .utf8)
            .replacingOccurrences(of: "deleteThreshold: { count: 25, percent: 10 }", with: "deleteThreshold: { count: 25, percent: 50 }")
            .write(toFile: jobs, atomically: true, encoding: .utf8)
        try w.fixture.commit("a leaver may be a third of a small domain")
        let applied = try syncwright(["apply"] + home.args)
        #expect(applied.status == 0, "\(applied.stderr)")
        let (sixth, left) = try home.run("corp-to-partner-ad")
        #expect(sixth.status == 0 && left["status"] as? String == "succeeded", "\(left)")
        // AD drops a deleted account from its groups by itself (in corp and in partner), so the
        // groups job finds nothing left to do.
        #expect(stats(left, 0)["deleted"] == 1 && stats(left, 0)["unchanged"] == 2 && stats(left, 1)["unchanged"] == 2, "\(left)")
        users = try w.partnerEntries(w.people)
        #expect(Set(users.keys) == ["Alice Pleasance", "Bob Hatter"], "\(users.keys)")
        groups = try w.partnerEntries(w.partnerGroups, "(objectClass=group)")
        #expect(groups["Team Red"] != nil && groups["Team Red"]?["member"] == nil, "\(groups)")
        #expect(Set(groups["Team Blue"]?["member"] ?? []) == [renamed, bob], "\(groups)")
    }

    /// New accounts from a file: created disabled, given their password, then enabled; a
    /// refused password leaves its account disabled and says so; names AD refuses are
    /// reported clearly.
    @Test func newAccountsFollowADsOrderAndItsNameRules() throws {
        let hires = """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: hires }
            spec: { type: csv, repoPath: hires.csv }
            ---
            apiVersion: syncwright.dev/v1
            kind: Job
            metadata: { name: hires-to-partner-ad }
            spec:
              source: { connection: hires }
              destination: { connection: partner-ad, objectClass: [user], container: "OU=Hires2,DC=partner,DC=test", rdn: cn }
              mappings:
                - { source: login, destination: sAMAccountName, key: true }
                - { source: name, destination: cn }
                - { source: password, destination: unicodePwd, newOnly: true }
                - { value: "512", destination: userAccountControl }
            ---
            apiVersion: syncwright.dev/v1
            kind: JobCollection
            metadata: { name: hires }
            spec: { jobs: [ { job: hires-to-partner-ad } ] }

            """
        let w = try World(tag: "2", extraManifests: [
            "hires.yaml": hires,
            "hires.csv": "login,name,password\nerin2,Erin Caterpillar,Str0ng-Passw0rd!\nfrank2,Frank Gryphon,abc\n"
                + "grace-with-a-long-account-name,Grace Mock,Str0ng-Passw0rd!\nadministrator,Someone Else,Str0ng-Passw0rd!\n",
        ])
        let home = try Home(w.fixture)
        let (result, report) = try home.run("hires")
        #expect(result.status != 0 && report["status"] as? String == "partial", "\(result.stdout)\(result.stderr)")
        #expect(stats(report, 0)["created"] == 1 && stats(report, 0)["failed"] == 3, "\(report)")
        let users = try w.partnerEntries(w.hires)
        // Erin: created, her password set, enabled; she can bind.
        #expect(users["Erin Caterpillar"]?["useraccountcontrol"] == ["512"] && users["Erin Caterpillar"]?["pwdlastset"] != ["0"],
                "\(users)")
        #expect(try w.partner.canBind("CN=Erin Caterpillar,\(w.hires)", password: "Str0ng-Passw0rd!"))
        // Frank: created, but his password was refused, so he stays disabled, and the report says so.
        #expect(users["Frank Gryphon"]?["useraccountcontrol"] == ["514"] && users["Frank Gryphon"]?["pwdlastset"] == ["0"],
                "\(users)")
        let failures = ((report["jobs"] as? [[String: Any]])?[0]["failures"] as? [[String: String]]) ?? []
        func reason(_ cn: String) -> String {
            failures.first { $0["object"]?.lowercased().hasPrefix("cn=\(cn.lowercased()),") == true }?["reason"] ?? "none"
        }
        #expect(reason("Frank Gryphon").hasPrefix("created disabled, but its password was not set, nor was it enabled, so it stays disabled: "
                                                  + "constraintViolation"), "\(failures)")
        // Grace: refused before anything was sent.
        #expect(reason("Grace Mock") == "sAMAccountName 'grace-with-a-long-account-name' has 30 characters, and Active Directory "
                + "takes at most 20; map a shorter value (for example {{login | left(20)}})", "\(failures)")
        #expect(users["Grace Mock"] == nil)
        // A name another account of the domain has: the server's reason, and what it means.
        #expect(reason("Someone Else").contains("already in use")
                && reason("Someone Else").hasSuffix("sAMAccountName is unique in the whole domain (not only in the container): "
                    + "another object has this one, so map a value that tells the two apart"), "\(failures)")
        #expect(users["Someone Else"] == nil)
        for text in [result.stdout, result.stderr] { #expect(!text.contains("Str0ng-Passw0rd!"), "a password was shown") }
    }
}
