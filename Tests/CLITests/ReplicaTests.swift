import Foundation
import TestSupport
import Testing

/// Several reconcilers on one PostgreSQL store, as the built binary runs them: each runs
/// scheduled fires, one leads (applies, publishes, notifies), and another takes the lead when it goes.
@Suite(.serialized) struct ReplicaTests {
    /// A reconciler started in the background, its log in a file.
    final class Replica {
        let process: Process
        let log: String
        let home: String

        /// With `skew` (like `+10m`), it runs under libfaketime's `faketime` wrapper, with its
        /// wall clock that far off (monotonic time is left alone).
        init(home: String, folder: TemporaryFolder, name: String, interval: String = "1s", skew: String? = nil,
             listen: Bool = false) throws {
            self.home = home
            log = folder.sub("\(name).log")
            FileManager.default.createFile(atPath: log, contents: nil)
            process = Process()
            let arguments = ["reconcile", "--interval", interval, "--home", home] + (listen ? ["--listen", "127.0.0.1:0"] : [])
            var environment = ProcessInfo.processInfo.environment
            environment["NO_COLOR"] = "1"
            if let skew {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/faketime")
                process.arguments = ["-f", skew, binary] + arguments
                environment["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
            } else {
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments = arguments
            }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
        }

        var text: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        /// `http://HOST:PORT`, from the line `--listen` logs once it serves.
        func endpoint() throws -> String {
            var address: String?
            _ = ReplicaTests.wait(30) {
                address = text.split(separator: "\n").first { $0.contains("serving /metrics") }
                    .flatMap { line in line.range(of: "address=").map { String(line[$0.upperBound...].prefix { !$0.isWhitespace }) } }
                return address != nil
            }
            guard let address else { throw ProcessFailure(description: "not serving: \(text)") }
            return "http://\(address)"
        }

        /// (status, body) of GET `path`, read by the tests' own Python client.
        func get(_ path: String) throws -> (status: Int, body: [String: String]) {
            let out = try runChecked("/usr/bin/python3", [OperationsEndpointTests.client, "get", try endpoint() + path])
            let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
            return (object["status"] as? Int ?? 0, object["body"] as? [String: String] ?? [:])
        }

        /// One sample of /metrics, parsed by prometheus_client.
        func metric(_ name: String) throws -> Double? {
            let out = try runChecked("/usr/bin/python3", [OperationsEndpointTests.client, "scrape", try endpoint() + "/metrics"])
            let samples = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] ?? []
            return samples.first { $0["name"] as? String == name }?["value"] as? Double
        }

        func kill(_ signal: Int32) { Foundation.kill(process.processIdentifier, signal) }

        deinit {
            // The faketime wrapper runs the reconciler as its child: that goes first.
            let pid = process.processIdentifier
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            for child in children.split(separator: " ").compactMap({ Int32($0) }) { Foundation.kill(child, SIGKILL) }
            if process.isRunning {
                Foundation.kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    /// Homes `names` made from `fixture` with `--state url --state-lease lease`.
    static func homes(_ fixture: GitFixture, _ names: [String], url: String, lease: String = "3s", in folder: TemporaryFolder)
        throws -> [String] {
        try names.map { name in
            let home = folder.sub(name)
            let made = try syncwright(["init", fixture.originURL, "--state", url, "--state-lease", lease, "--home", home])
            guard made.status == 0 else { throw ProcessFailure(description: "init \(name): \(made.stderr)") }
            return home
        }
    }

    /// Waits up to `seconds` for `condition`; true once it held.
    static func wait(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    static func json(_ arguments: [String]) throws -> [String: Any] {
        let result = try syncwright(arguments + ["--format", "json"])
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        else { throw ProcessFailure(description: "\(arguments): \(result.stderr)") }
        return object
    }

    static func replicas(_ home: String) throws -> [[String: Any]] {
        try json(["status", "--home", home])["replicas"] as? [[String: Any]] ?? []
    }

    static func runs(_ home: String) throws -> [[String: Any]] {
        try json(["history", "--limit", "1000", "--home", home])["runs"] as? [[String: Any]] ?? []
    }

    /// The run ids that have a page on the reports branch (each once, or the list shows it twice).
    static func publishedRuns(_ fixture: GitFixture) throws -> [String] {
        let tree = try runProcess("/usr/bin/git", ["--git-dir", fixture.originPath, "ls-tree", "-r", "--name-only", "reports"])
        return tree.stdout.split(separator: "\n").compactMap { path in
            let parts = path.split(separator: "/")
            return parts.count == 4 && parts[0] == "runs" && parts[3] == "summary.md" ? String(parts[2]) : nil
        }
    }

    /// A leader on `homes[0]` (waited for until it leads), then a follower on `homes[1]`.
    static func leaderAndFollower(_ homes: [String], folder: TemporaryFolder, listen: Bool = false) throws -> (Replica, Replica) {
        let a = try Replica(home: homes[0], folder: folder, name: "a")
        #expect(try wait(30) { try replicas(homes[1]).first?["holdsStore"] as? Bool == true }, "\(a.text)")
        let b = try Replica(home: homes[1], folder: folder, name: "b", listen: listen)
        #expect(try wait(30) { b.text.contains(Self.following) }, "\(b.text)")
        return (a, b)
    }

    /// What a replica that follows logs once it joined.
    static let following = "joined the state store as a replica: this one runs scheduled fires, and syncwright reconcile on "

    /// Waits until a job writes `folder/out/NAME` (its temp file exists).
    ///
    /// With `again` (a collection that fires over and over), a file already written whole is
    /// removed, so that the next run writes it again: a run that finds its destination
    /// unchanged writes nothing, and on a loaded machine the first run's write may be over
    /// before the test looks.
    static func waitUntilWriting(_ folder: TemporaryFolder, _ name: String = "people.ldif", again: Bool = false) -> Bool {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.sub("out"))) ?? []
            if names.contains(where: { $0.hasPrefix(".\(name).tmp-") }) { return true }
            if again, names.contains(name) { try? FileManager.default.removeItem(atPath: folder.sub("out/\(name)")) }
            usleep(5_000)
        }
        return false
    }

    /// The first run `home`'s store records as lost with its replica, waited for.
    static func lostRun(_ home: String) throws -> [String: Any]? {
        var lost: [String: Any]?
        _ = try wait(60) {
            lost = try runs(home).first { $0["reason"] as? String == "replicaLost" }
            return lost != nil
        }
        return lost
    }

    /// The LDAP connection `corp` to `slapd`'s dc=corp,dc=example, as its sync account (the
    /// password in a file of `folder`).
    static func corp(_ slapd: Slapd, _ folder: TemporaryFolder) throws -> String {
        let password = folder.sub("ldap-password")
        try Slapd.syncPassword.write(toFile: password, atomically: true, encoding: .utf8)
        return """
            apiVersion: syncwright.dev/v1
            kind: Connection
            metadata: { name: corp }
            spec:
              type: ldap
              url: \(slapd.url)
              baseDN: dc=corp,dc=example
              bindDN: \(Slapd.syncDN("dc=corp,dc=example"))
              passwordFrom: { file: \(password) }

            """
    }

    /// A job `name` writing the CSV connection `source`'s rows into `corp` as people.
    static func peopleJob(_ name: String, from source: String) -> String {
        """
        apiVersion: syncwright.dev/v1
        kind: Job
        metadata: { name: \(name) }
        spec:
          source: { connection: \(source) }
          destination: { connection: corp, objectClass: [inetOrgPerson], container: "ou=People,dc=corp,dc=example", rdn: uid }
          mappings:
            - { source: id, destination: employeeNumber, key: true }
            - { source: login, destination: uid }
            - { source: login, destination: cn }
            - { source: login, destination: sn }
          delete: false

        """
    }

    /// Gives `home` one run slot (`maxConcurrentRuns: 1` in its config.yaml).
    static func oneRunSlot(_ home: String) throws {
        let config = (home as NSString).appendingPathComponent("config.yaml")
        try (try String(contentsOfFile: config, encoding: .utf8) + "maxConcurrentRuns: 1\n").write(toFile: config, atomically: true,
                                                                                                  encoding: .utf8)
    }

    /// Takes the lock a job writing the file destination `file` takes (`flock` on `.NAME.lock`
    /// beside it), as another process would; closing the descriptor frees it.
    static func lock(destination file: String) throws -> Int32 {
        let folder = (file as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let fd = open((folder as NSString).appendingPathComponent(".\((file as NSString).lastPathComponent).lock"),
                      O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else { throw ProcessFailure(description: "cannot lock \(file)") }
        return fd
    }

    /// A collection `c` copying `rows` CSV rows into the LDIF file `out`, fired by `trigger`.
    static func fixture(rows: Int, out: String, trigger: String) throws -> GitFixture {
        var csv = "id,login\n"
        for i in 1...rows { csv += "a\(i),user\(i)\n" }
        let fixture = try Fixtures.csvToLDIF(csv: csv, out: out, job: "load")
        try fixture.write(["schedule.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: often }
            spec:
              targets: [c]
              timezone: UTC
              triggers:
                - \(trigger)

            """])
        try fixture.commit("schedule")
        return fixture
    }

    /// A follower killed while it writes: the leader records its run as lost, and the next fires
    /// run on the leader. The leader is kept busy (its one run slot waits on a file the test
    /// locks), so that the fires go to the follower: a replica claims no more than it can run.
    @Test func aReplicaKilledMidRunIsAccountedForByTheLeader() throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let folder = try TemporaryFolder("replicas")
        let out = folder.sub("out/people.ldif"), held = folder.sub("out/held.ldif")
        let fixture = try Self.fixture(rows: 150_000, out: out, trigger: "every: 4s")
        try fixture.write([
            "data/few.csv": "id,login\n1,one\n",
            "held.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: few }
                spec: { type: csv, repoPath: data/few.csv }
                ---
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: held }
                spec: { type: ldif, path: \(held) }
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: hold }
                spec:
                  source: { connection: few }
                  destination: { connection: held, objectClass: [inetOrgPerson], container: "ou=People,dc=corp", rdn: uid }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }

                """,
            "held-collection.yaml": Fixtures.collection("held", jobs: ["hold"]),
        ])
        try fixture.commit("a collection that waits on a locked file")
        let homes = try Self.homes(fixture, ["a", "b"], url: url, in: folder)
        try Self.oneRunSlot(homes[0])
        // The test holds the file's lock, so the leader's run of `held` waits with its one slot taken.
        let locked = try Self.lock(destination: held)
        var unlocked = false
        func unlock() {
            if !unlocked { close(locked) }
            unlocked = true
        }
        defer { unlock() }

        let a = try Replica(home: homes[0], folder: folder, name: "a")
        #expect(try Self.wait(30) { try Self.replicas(homes[1]).first?["holdsStore"] as? Bool == true }, "\(a.text)")
        // A run asked for on another replica's home is handed to the leader, through the store:
        // it takes the leader's one slot, waiting on the locked file.
        let handed = try syncwright(["run", "held", "--no-wait", "--home", homes[1]])
        #expect(handed.status == 0 && handed.stdout.contains("to the reconciler on ") && handed.stdout.contains(
            "(pid \(a.process.processIdentifier))"), "\(handed.stdout)\(handed.stderr)")
        let owner = { (collection: String) in try server.psql("SELECT r.pid FROM runsInProgress p JOIN replicas r ON r.id = p.owner "
            + "WHERE p.collection = '\(collection)'", database: url) }
        try #require(try Self.wait(30) { try owner("held") == "\(a.process.processIdentifier)\n" }, "\(a.text)")
        let b = try Replica(home: homes[1], folder: folder, name: "b")
        #expect(try Self.wait(30) { b.text.contains(Self.following) }, "\(b.text)")
        let listed = try Self.replicas(homes[1])
        #expect(listed.count == 2 && listed.map { $0["holdsStore"] as? Bool } == [true, false], "\(listed)")

        // The follower claims the fires the busy leader leaves, and is killed while it writes.
        try #require(Self.waitUntilWriting(folder, again: true), "the follower was never seen writing: \(b.text)")
        #expect(try owner("c") == "\(b.process.processIdentifier)\n", "the follower runs c: \(a.text)")
        b.kill(SIGKILL)
        b.process.waitUntilExit()
        let killedAt = Date()
        let lost = try Self.lostRun(homes[0])
        let tookOver = Date().timeIntervalSince(killedAt)
        let run = try #require(lost, "no run was recorded as lost: \(a.text)")
        #expect(run["status"] as? String == "failed" && run["collection"] as? String == "c")
        let jobs = try #require(run["jobs"] as? [[String: Any]])
        #expect((jobs.first?["error"] as? String)?.hasPrefix("replicaLost: the replica that ran it (syncwright reconcile on ") == true,
                "\(jobs)")
        #expect((jobs.first?["error"] as? String)?.contains("(pid \(b.process.processIdentifier))") == true, "\(jobs)")
        #expect(tookOver < 20, "recorded \(tookOver) s after the kill, with a lease of 3 s")

        // Once the leader's slot is free, the next fires run on it, each once, and each run is published once.
        unlock()
        #expect(try Self.wait(120) {
            try Self.runs(homes[0]).contains { $0["collection"] as? String == "c" && $0["status"] as? String == "succeeded"
                && ($0["startedAt"] as? String ?? "") > "\(run["startedAt"] ?? "")" }
        }, "\(a.text)")
        a.kill(SIGTERM)
        a.process.waitUntilExit()
        #expect(a.process.terminationStatus == 0, "\(a.text)")
        let runs = try Self.runs(homes[0])
        let fires = runs.compactMap { $0["scheduledFor"] as? String }
        #expect(Set(fires).count == fires.count, "a fire time ran twice: \(fires)")
        #expect(runs.contains { $0["collection"] as? String == "held" && $0["status"] as? String == "succeeded" },
                "the handed run ended once its file was free")
        let published = try Self.publishedRuns(fixture)
        #expect(published.sorted() == runs.compactMap { $0["runId"] as? String }.sorted(), "each run published once: \(published)")
        #expect(try String(contentsOfFile: out, encoding: .utf8).components(separatedBy: "\ndn: ").count - 1 == 150_000)
        let waiting = try server.psql("SELECT count(*) FROM runRequests WHERE status IN ('queued', 'started')", database: url)
        #expect(waiting == "0\n", "the handed run ended")
    }

    /// A leader paused past its lease (a stopped VM) finds, when it continues, that the replica
    /// that took the lead recorded its run; it writes nothing over that, and stops.
    @Test func aPausedHolderWritesNothingOverTheReplicaThatTookOver() throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let folder = try TemporaryFolder("paused")
        let out = folder.sub("out/people.ldif")
        let fixture = try Self.fixture(rows: 150_000, out: out, trigger: "atStartup: true")
        let homes = try Self.homes(fixture, ["a", "b"], url: url, in: folder)
        // The leader's one run waits on the file, which the test holds until the follower is
        // there: on a loaded machine the run could otherwise be over before then.
        let locked = try Self.lock(destination: out)
        let (a, b) = try Self.leaderAndFollower(homes, folder: folder)
        close(locked)
        try #require(Self.waitUntilWriting(folder), "the leader was never seen writing: \(a.text)")
        a.kill(SIGSTOP)
        let run = try #require(try Self.lostRun(homes[1]), "b recorded nothing: \(b.text)")
        a.kill(SIGCONT)
        #expect(Self.wait(60) { !a.process.isRunning }, "the woken holder went on: \(a.text)")
        #expect(!a.process.isRunning && a.process.terminationStatus == 1)
        #expect(a.text.contains("lost its lease on the state store"), "\(a.text)")
        let after = try Self.runs(homes[1]).filter { $0["runId"] as? String == run["runId"] as? String }
        #expect(after.count == 1 && after.first?["status"] as? String == "failed" && after.first?["reason"] as? String == "replicaLost",
                "the run as b recorded it stands: \(after)")
        b.kill(SIGTERM)
        b.process.waitUntilExit()
        #expect(try Self.publishedRuns(fixture).filter { $0 == run["runId"] as? String }.count == 1)
    }

    /// Fire times are decided by the store's clock: a replica whose own clock runs 10 minutes
    /// ahead (libfaketime) fires nothing early. The same replica on a store of its own does
    /// (which shows the test can tell).
    @Test func aSkewedClockFiresNothingEarly() throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let folder = try TemporaryFolder("skew")
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let at = Date().addingTimeInterval(300)
        let parts = utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: at)
        let once = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!,
                          parts.second!)
        let fixture = try Self.fixture(rows: 3, out: folder.sub("out.ldif"), trigger: "once: \"\(once)\"")
        let shared = try Self.homes(fixture, ["shared"], url: url, in: folder)[0]
        let own = folder.sub("own")
        #expect(try syncwright(["init", fixture.originURL, "--home", own]).status == 0)
        // Applied by a command on the right clock: the fire time is 5 minutes ahead, for both.
        for home in [shared, own] {
            let applied = try syncwright(["apply", "--home", home])
            try #require(applied.status == 0, "\(applied.stderr)")
        }
        let onOwn = try Replica(home: own, folder: folder, name: "own", skew: "+10m")
        #expect(try Self.wait(30) { try !Self.runs(own).isEmpty }, "the skewed clock fires on a store of its own: \(onOwn.text)")
        let onShared = try Replica(home: shared, folder: folder, name: "shared", skew: "+10m")
        #expect(try Self.wait(30) { onShared.text.components(separatedBy: " pass").count > 4 }, "\(onShared.text)")
        #expect(try Self.runs(shared).isEmpty, "fired early: \(onShared.text)")
        let schedules = try Self.json(["status", "--home", shared])["schedules"] as? [[String: Any]] ?? []
        #expect((schedules.first?["nextRun"] as? String)?.hasPrefix(once) == true, "\(schedules)")
    }

    /// The database restarted while a replica works: it reconnects, keeps its lease, and its
    /// runs go on being recorded.
    @Test func aRestartedDatabaseIsReconnectedTo() throws {
        let server = try PostgresServer()
        try server.psql("CREATE DATABASE s")
        let folder = try TemporaryFolder("pg-restart")
        let fixture = try Self.fixture(rows: 2_000, out: folder.sub("out.ldif"), trigger: "every: 1s")
        let home = try Self.homes(fixture, ["a"], url: server.url(database: "s"), lease: "15s", in: folder)[0]
        let a = try Replica(home: home, folder: folder, name: "a")
        #expect(try Self.wait(30) { try Self.runs(home).count >= 2 }, "\(a.text)")
        for _ in 0..<2 {
            try server.restart()
            usleep(1_500_000)
        }
        let before = try Self.runs(home).count
        #expect(try Self.wait(30) { try Self.runs(home).count >= before + 3 }, "runs go on after the restarts: \(a.text)")
        #expect(a.process.isRunning, "\(a.text)")
        a.kill(SIGTERM)
        a.process.waitUntilExit()
        #expect(a.process.terminationStatus == 0, "\(a.text)")
        let statuses = Set(try Self.runs(home).compactMap { $0["status"] as? String })
        #expect(statuses.isSubset(of: ["succeeded", "failed", "aborted"]), "\(statuses)")
        #expect(try server.psql("SELECT count(*) FROM runsInProgress", database: "s") == "0\n", "no run left unaccounted for")
    }

    /// The database goes away between a run's write and its recording, and comes back: the run
    /// is recorded once it can be, and its collection is not left "running" for as long as the
    /// replica lives (it was, when the recording failed once: every later fire was skipped as
    /// running on another replica).
    @Test func aRunFinishedWhileTheDatabaseIsDownIsRecordedWhenItReturns() throws {
        let server = try PostgresServer()
        try server.psql("CREATE DATABASE s")
        let folder = try TemporaryFolder("pg-record")
        let out = folder.sub("out/people.ldif")
        let fixture = try Self.fixture(rows: 10, out: out, trigger: "every: 2s")
        let home = try Self.homes(fixture, ["a"], url: server.url(database: "s"), lease: "15s", in: folder)[0]
        // The first run waits on its file, which the test holds, with its run begun.
        let locked = try Self.lock(destination: out)
        let a = try Replica(home: home, folder: folder, name: "a")
        try #require(try Self.wait(30) { try server.psql("SELECT count(*) FROM runsInProgress", database: "s") == "1\n" }, "\(a.text)")
        server.stop()
        close(locked) // the run writes its file now, and cannot record itself
        #expect(Self.wait(30) { a.text.contains("recording a finished run failed; trying again") }, "\(a.text)")
        try server.start()
        #expect(try Self.wait(30) {
            try Self.runs(home).filter { $0["collection"] as? String == "c" && $0["status"] as? String == "succeeded" }.count >= 3
        }, "the run was recorded, and fires went on: \(a.text)")
        #expect(!a.text.contains("still running on another replica"), "\(a.text)")
        a.kill(SIGTERM)
        a.process.waitUntilExit()
        #expect(a.process.terminationStatus == 0, "\(a.text)")
        #expect(try server.psql("SELECT count(*) FROM runsInProgress", database: "s") == "0\n", "no run left unaccounted for")
        #expect(try String(contentsOfFile: out, encoding: .utf8).components(separatedBy: "\ndn: ").count - 1 == 10)
    }

    /// `init --state`: bad settings are refused before anything is made.
    @Test func badStateSettingsAreRefusedAndNothingIsMade() throws {
        let folder = try TemporaryFolder("state-init")
        let fixture = try GitFixture()
        try fixture.write(["README.md": "x"])
        try fixture.commit("x")
        let cases: [([String], String)] = [
            (["--state", "postgresql://sync:pw@127.0.0.1/s"], "state.postgres.url: the URL carries a password"),
            (["--state", "mysql://db/s"], "state.postgres.url: 'mysql://db/s' is not a postgresql:// URL"),
            (["--state", "postgresql://sync@db.corp.example/s"], "state.postgres: the server db.corp.example would be reached without checking its certificate"),
            (["--state", "postgresql://sync@127.0.0.1/s", "--state-lease", "1s"], "state.postgres.lease: '1s' is not a duration between 3s and 1h"),
            (["--state-lease", "10s"], "--state-lease needs --state"),
            (["--state", "postgresql://sync@127.0.0.1:\(try Slapd.freePort())/s"], "cannot open the state store postgresql://sync@127.0.0.1:"),
        ]
        for (index, (options, message)) in cases.enumerated() {
            let home = folder.sub("h\(index)")
            let result = try syncwright(["init", fixture.originURL, "--home", home] + options)
            #expect(result.status != 0)
            #expect(result.stderr.contains(message), "\(options): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: home), "\(options) left \(home) behind")
        }
    }

    /// Three replicas, 50 collections firing every 5 s into ten shared LDIF files for about a
    /// minute, and the leader killed halfway: the replicas share the runs, every fire time is
    /// handled once (the store's fires), every run is published once, and no write to a shared
    /// file is lost.
    @Test func threeReplicasRunEachFireOnceThroughAFailover() throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let folder = try TemporaryFolder("three")
        let fixture = try GitFixture()
        var files: [String: String] = [:]
        var connections = ""
        for d in 0..<10 {
            connections += "apiVersion: syncwright.dev/v1\nkind: Connection\nmetadata: { name: out\(d) }\n"
                + "spec: { type: ldif, path: \(folder.sub("out/d\(d).ldif")) }\n---\n"
        }
        for c in 0..<50 {
            files["data/c\(c).csv"] = "id,login\n" + (1...10).map { "c\(c)-\($0),c\(c)user\($0)\n" }.joined()
            connections += "apiVersion: syncwright.dev/v1\nkind: Connection\nmetadata: { name: src\(c) }\n"
                + "spec: { type: csv, repoPath: data/c\(c).csv }\n---\n"
            files["jobs/c\(c).yaml"] = """
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: load-c\(c) }
                spec:
                  source: { connection: src\(c) }
                  destination: { connection: out\(c % 10), objectClass: [inetOrgPerson], container: "ou=People,dc=corp", rdn: uid }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }
                  delete: false

                """
            files["collections/c\(c).yaml"] = Fixtures.collection("c\(c)", jobs: ["load-c\(c)"])
        }
        files["connections.yaml"] = String(connections.dropLast(4))
        files["schedule.yaml"] = """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: often }
            spec:
              targets: [\((0..<50).map { "c\($0)" }.joined(separator: ", "))]
              timezone: UTC
              triggers:
                - every: 5s

            """
        try fixture.write(files)
        try fixture.commit("fifty collections")
        let homes = try Self.homes(fixture, ["a", "b", "c"], url: url, in: folder)
        var replicas = [try Replica(home: homes[0], folder: folder, name: "a")]
        #expect(try Self.wait(30) { try Self.replicas(homes[1]).first?["holdsStore"] as? Bool == true }, "\(replicas[0].text)")
        replicas.append(try Replica(home: homes[1], folder: folder, name: "b"))
        replicas.append(try Replica(home: homes[2], folder: folder, name: "c"))
        let recordedRuns = { Int((try? server.psql("SELECT count(*) FROM runs", database: url))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0 }
        #expect(Self.wait(90) { recordedRuns() >= 250 }, "five rounds of fires before the kill")
        for replica in replicas {
            #expect(replica.text.contains("run started"), "each replica ran some of the fires: \(replica.text)")
        }
        replicas[0].kill(SIGKILL)
        replicas[0].process.waitUntilExit()
        let before = recordedRuns()
        #expect(Self.wait(90) { recordedRuns() >= before + 250 }, "\(replicas[1].text)\(replicas[2].text)")
        let tookOver = replicas.dropFirst().filter { $0.text.contains("took the lead over from syncwright reconcile on") }
        #expect(tookOver.count == 1, "one follower took the lead over")
        for replica in replicas.dropFirst() { replica.kill(SIGTERM) }
        for replica in replicas.dropFirst() {
            replica.process.waitUntilExit()
            #expect(replica.process.terminationStatus == 0, "\(replica.text)")
        }

        // The oracle is the store itself, read with psql, and the reports branch, read with git.
        let twice = try server.psql("SELECT target, fireTime FROM fires GROUP BY target, fireTime HAVING count(*) > 1", database: url)
        #expect(twice.isEmpty, "fire times handled twice: \(twice)")
        let started = try server.psql("SELECT count(*) FROM fires WHERE outcome = 'started'", database: url)
        let recorded = try server.psql("SELECT count(*) FROM runs WHERE report LIKE '%\"trigger\":\"schedule\"%'", database: url)
        #expect(started == recorded, "every started fire has its run recorded: \(started) fires, \(recorded) runs")
        let runs = try Self.runs(homes[1])
        let published = try Self.publishedRuns(fixture)
        #expect(Set(published).count == published.count && published.sorted() == runs.compactMap { $0["runId"] as? String }.sorted(),
                "\(published.count) pages for \(runs.count) runs")
        for d in 0..<10 {
            let text = try String(contentsOfFile: folder.sub("out/d\(d).ldif"), encoding: .utf8)
            #expect(text.components(separatedBy: "\ndn: ").count - 1 == 50, "d\(d).ldif keeps the 50 entries of its 5 collections")
        }
    }

    /// A follower serves its endpoints: alive, ready once it fetched (the leader applies), not
    /// holding the lead; once it takes the lead, holding it. A follower told to stop exits 0.
    @Test func aFollowerAnswersItsEndpoints() throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let folder = try TemporaryFolder("follower-endpoints")
        let fixture = try Self.fixture(rows: 3, out: folder.sub("out.ldif"), trigger: "every: 2s")
        let homes = try Self.homes(fixture, ["a", "b", "c"], url: url, in: folder)
        let (a, b) = try Self.leaderAndFollower(homes, folder: folder, listen: true)
        #expect(try Self.wait(30) { try b.get("/readyz").status == 200 }, "\(b.text)")
        let health = try b.get("/healthz"), ready = try b.get("/readyz")
        #expect(health.status == 200 && health.body["status"] == "ok", "\(health)")
        #expect(ready.body["reason"]?.hasPrefix("the last fetch succeeded; this replica runs scheduled fires, and syncwright reconcile on ")
                == true, "\(ready)")
        #expect(try b.metric("syncwright_store_held") == 0)

        // The leader stops cleanly: it gives the lead back, and the follower takes it at its next beat.
        a.kill(SIGTERM)
        a.process.waitUntilExit()
        #expect(a.process.terminationStatus == 0, "\(a.text)")
        #expect(try Self.wait(30) { try b.metric("syncwright_store_held") == 1 }, "\(b.text)")
        #expect(b.text.contains("took the lead: the replica that held it gave it back"), "\(b.text)")
        #expect(try b.get("/readyz").body["reason"] == "the last fetch and apply succeeded" || Self.wait(10) {
            (try? b.get("/readyz").body["reason"]) == "the last fetch and apply succeeded"
        })

        let c = try Replica(home: homes[2], folder: folder, name: "c")
        #expect(Self.wait(30) { c.text.contains(Self.following) }, "\(c.text)")
        let asked = Date()
        c.kill(SIGTERM)
        c.process.waitUntilExit()
        #expect(c.process.terminationStatus == 0 && Date().timeIntervalSince(asked) < 10, "\(c.text)")
        #expect(try Self.replicas(homes[1]).map { $0["id"] as? String }.count == 1, "the stopped follower is forgotten")
        b.kill(SIGTERM)
        b.process.waitUntilExit()
        #expect(b.process.terminationStatus == 0, "\(b.text)")
    }

    /// A leader paused in the middle of writing a directory (LDAP, written chunk by chunk) writes
    /// no further chunk once it wakes past its lease: it knows by its own clock that the lease
    /// ran out, and stops at the next safe point, before the store refuses it anything.
    @Test func aPausedHolderWritesNoFurtherChunkToADirectory() throws {
        let slapd = try Slapd(suffixes: ["dc=corp,dc=example"])
        let url = try PostgresServer.shared.get().createDatabase()
        let folder = try TemporaryFolder("paused-ldap")
        let rows = 20_000
        let fixture = try GitFixture()
        try fixture.write([
            "data/people.csv": "id,login\n" + (1...rows).map { "\($0),user\($0)\n" }.joined(),
            "connections.yaml": Fixtures.connection("people", repoPath: "data/people.csv") + "---\n" + (try Self.corp(slapd, folder)),
            "job.yaml": Self.peopleJob("load", from: "people"),
            "collection.yaml": Fixtures.collection("c", jobs: ["load"]),
        ])
        try fixture.commit("people into ldap")
        let homes = try Self.homes(fixture, ["a", "b"], url: url, in: folder)
        let (a, b) = try Self.leaderAndFollower(homes, folder: folder)
        let handed = try syncwright(["run", "c", "--no-wait", "--home", homes[1]])
        try #require(handed.status == 0, "\(handed.stderr)")
        let people = "ou=People,dc=corp,dc=example"
        try #require(Self.wait(120) { ((try? slapd.dns(people).count) ?? 0) >= 2_000 }, "the holder never wrote: \(a.text)")
        a.kill(SIGSTOP)
        let paused = try slapd.dns(people).count
        let run = try #require(try Self.lostRun(homes[1]), "b recorded nothing: \(b.text)")
        a.kill(SIGCONT)
        #expect(Self.wait(60) { !a.process.isRunning }, "the woken holder went on: \(a.text)")
        let after = try slapd.dns(people).count
        #expect(paused < rows && after <= paused + 1_000, "\(paused) entries when paused, \(after) after it woke: at most the chunk in flight")
        #expect(!a.process.isRunning && a.process.terminationStatus == 1, "\(a.text)")
        #expect(try Self.runs(homes[1]).filter { $0["runId"] as? String == run["runId"] as? String }.first?["reason"] as? String
                == "replicaLost")
        b.kill(SIGTERM)
        b.process.waitUntilExit()
    }

    /// One run per destination across replicas: two collections write one LDAP directory, and
    /// each of two replicas has one run slot, so the two runs run at once, one on each replica.
    /// slapd's own createTimestamp shows that their writes did not interleave: the second
    /// waited for the first's claim on the destination.
    @Test func aDestinationIsWrittenByOneRunAtATimeAcrossReplicas() throws {
        let slapd = try Slapd(suffixes: ["dc=corp,dc=example"], sizeLimit: 100_000)
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let folder = try TemporaryFolder("one-destination")
        let rows = 6_000
        let fixture = try GitFixture()
        var files = [
            "connections.yaml": Fixtures.connection("one", repoPath: "data/one.csv") + "---\n"
                + Fixtures.connection("two", repoPath: "data/two.csv") + "---\n" + (try Self.corp(slapd, folder)),
        ]
        for (index, name) in ["one", "two"].enumerated() {
            files["data/\(name).csv"] = "id,login\n" + (1...rows).map { "\(index * rows + $0),\(name)-\($0)\n" }.joined()
            files["jobs/\(name).yaml"] = Self.peopleJob("load-\(name)", from: name)
            files["collections/\(name).yaml"] = Fixtures.collection(name, jobs: ["load-\(name)"])
        }
        try fixture.write(files)
        try fixture.commit("two collections, one directory")
        let homes = try Self.homes(fixture, ["a", "b"], url: url, in: folder)
        for home in homes { try Self.oneRunSlot(home) }
        let (a, b) = try Self.leaderAndFollower(homes, folder: folder)
        // Scheduled once both replicas run, 8 s ahead: each claims one of the two fires.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate]
        let once = formatter.string(from: Date().addingTimeInterval(8))
        try fixture.write(["schedule.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Schedule
            metadata: { name: both }
            spec:
              targets: [one, two]
              timezone: UTC
              triggers:
                - once: "\(once)"

            """])
        try fixture.commit("schedule")
        let done = { try Self.runs(homes[0]).filter { $0["status"] as? String == "succeeded" } }
        #expect(try Self.wait(120) { try done().count >= 2 }, "\(a.text)\(b.text)")
        for replica in [a, b] { replica.kill(SIGTERM) }
        for replica in [a, b] { replica.process.waitUntilExit() }
        #expect(a.text.contains("run started") && b.text.contains("run started"), "one run on each replica: \(a.text)\(b.text)")
        let runs = try done()
        try #require(runs.count == 2, "\(runs)")
        let (first, second) = (runs[0], runs[1])
        let overlap = (first["startedAt"] as? String ?? "") <= (second["finishedAt"] as? String ?? "")
            && (second["startedAt"] as? String ?? "") <= (first["finishedAt"] as? String ?? "")
        #expect(overlap, "the two runs ran at the same time: \(runs)")

        // slapd's oracle: the seconds in which each collection's entries were created.
        var seconds: [String: Set<String>] = ["one": [], "two": []]
        var uid = ""
        for line in try slapd.search("ou=People,dc=corp,dc=example", "(uid=*)", ["uid", "createTimestamp"]).split(separator: "\n") {
            if line.hasPrefix("uid: ") { uid = String(line.dropFirst(5)) }
            if line.hasPrefix("createTimestamp: ") {
                seconds[String(uid.prefix { $0 != "-" }), default: []].insert(String(line.dropFirst(17)))
            }
        }
        #expect(try slapd.dns("ou=People,dc=corp,dc=example").count == 2 * rows)
        let shared = seconds["one", default: []].intersection(seconds["two", default: []])
        #expect(seconds["one", default: []].count >= 2 && seconds["two", default: []].count >= 2,
                "each run wrote for more than a second, so the test can tell: \(seconds.mapValues(\.count))")
        #expect(shared.count <= 1, "the two runs wrote the directory at the same time in \(shared.sorted())")
    }

    /// A follower runs a fire of a revision the leader applied from a fetch newer than its own:
    /// it fetches that revision first, since the run reads the repository's files at it. The
    /// follower fetches once an hour here, and the leader is kept busy (its one slot waits on a
    /// locked file), so the fire is the follower's.
    @Test func aFollowerFetchesTheRevisionTheLeaderApplied() throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let folder = try TemporaryFolder("follower-fetch")
        let held = folder.sub("out/held.ldif"), late = folder.sub("out/late.ldif")
        let fixture = try Fixtures.csvToLDIF(csv: "id,login\n1,one\n", out: held, job: "hold")
        let homes = try Self.homes(fixture, ["a", "b"], url: url, in: folder)
        try Self.oneRunSlot(homes[0])
        let locked = try Self.lock(destination: held)
        defer { close(locked) }
        let a = try Replica(home: homes[0], folder: folder, name: "a")
        #expect(try Self.wait(30) { try Self.replicas(homes[1]).first?["holdsStore"] as? Bool == true }, "\(a.text)")
        #expect(try syncwright(["run", "c", "--no-wait", "--home", homes[1]]).status == 0)
        let b = try Replica(home: homes[1], folder: folder, name: "b", interval: "1h")
        // Its first pass fetched: the next fetch of its own is an hour away.
        #expect(Self.wait(30) { b.text.contains("fetched=yes") }, "\(b.text)")

        // A new revision: a collection whose data file only it has, due 6 s on.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate]
        try fixture.write([
            "data/late.csv": "id,login\n7,seven\n",
            "late.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: late-src }
                spec: { type: csv, repoPath: data/late.csv }
                ---
                apiVersion: syncwright.dev/v1
                kind: Connection
                metadata: { name: late-dst }
                spec: { type: ldif, path: \(late) }
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: late }
                spec:
                  source: { connection: late-src }
                  destination: { connection: late-dst, objectClass: [inetOrgPerson], container: "ou=People,dc=corp", rdn: uid }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }
                ---
                apiVersion: syncwright.dev/v1
                kind: Schedule
                metadata: { name: soon }
                spec:
                  targets: [late]
                  timezone: UTC
                  triggers:
                    - once: "\(formatter.string(from: Date().addingTimeInterval(6)))"

                """,
            "late-collection.yaml": Fixtures.collection("late", jobs: ["late"]),
        ])
        try fixture.commit("a late collection")
        #expect(try Self.wait(60) { try Self.runs(homes[1]).contains { $0["collection"] as? String == "late" } }, "\(a.text)\(b.text)")
        let run = try Self.runs(homes[1]).first { $0["collection"] as? String == "late" }
        #expect(run?["status"] as? String == "succeeded", "\(String(describing: run))")
        #expect(b.text.contains("fetching: the leader applied a revision this replica has not fetched yet"), "\(b.text)")
        #expect(b.text.contains("collection=late"), "the follower ran it: \(b.text)")
        #expect((try? String(contentsOfFile: late, encoding: .utf8))?.contains("uid=seven,ou=People,dc=corp") == true)
        for replica in [a, b] { replica.kill(SIGTERM) }
        for replica in [a, b] { replica.process.waitUntilExit() }
    }
}
