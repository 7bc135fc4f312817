import Foundation
import TestSupport
import Testing

/// `reconcile --listen`, end to end: the endpoints are read by an independent client
/// (Tests/Fakes/operations_client.py: prometheus_client's parser, Python's hmac), and what they
/// say is checked against `history`, `git` and the behaviour they claim.
@Suite struct OperationsEndpointTests {
    static let client = (packageRoot as NSString).appendingPathComponent("Tests/Fakes/operations_client.py")
    static let secret = "hook-secret-31337"

    /// A `reconcile --listen 127.0.0.1:0` in the background; stopped with SIGTERM.
    final class Daemon: @unchecked Sendable {
        let process = Process()
        let log: String
        private(set) var address = ""
        var base: String { "http://\(address)" }

        /// `listen: false`: no --listen, so that the address comes from config.yaml.
        init(home: TestHome, folder: TemporaryFolder, interval: String, env: [String: String] = [:], listen: Bool = true) throws {
            log = folder.sub("reconcile-\(UUID().uuidString.prefix(6)).log")
            FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["reconcile"] + (listen ? ["--listen", "127.0.0.1:0"] : []) + ["--interval", interval] + home.arguments
            process.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let line = output().split(separator: "\n").first(where: { $0.contains("serving /metrics") }),
                   let range = line.range(of: "address=") {
                    address = String(line[range.upperBound...].prefix { !$0.isWhitespace })
                    return
                }
                guard process.isRunning else { break }
                usleep(50_000)
            }
            throw ProcessFailure(description: "reconcile --listen did not start: \(output())")
        }

        func output() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        /// SIGTERM, as systemd stops it; returns the exit status.
        @discardableResult
        func stop() -> Int32 {
            if process.isRunning {
                kill(process.processIdentifier, SIGTERM)
                process.waitUntilExit()
            }
            return process.terminationStatus
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }

        func scrape() throws -> [(name: String, labels: [String: String], value: Double)] {
            let out = try runChecked("/usr/bin/python3", [OperationsEndpointTests.client, "scrape", base + "/metrics"])
            let samples = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] ?? []
            return samples.map { ($0["name"] as? String ?? "", $0["labels"] as? [String: String] ?? [:], $0["value"] as? Double ?? .nan) }
        }

        func value(_ name: String, _ labels: [String: String] = [:]) throws -> Double? {
            try scrape().first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
        }

        func get(_ path: String) throws -> (status: Int, body: [String: String]) {
            let out = try runChecked("/usr/bin/python3", [OperationsEndpointTests.client, "get", base + path])
            let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
            return (object["status"] as? Int ?? 0, object["body"] as? [String: String] ?? [:])
        }

        func hook(_ arguments: [String]) throws -> [Int] {
            let out = try runChecked("/usr/bin/python3", [OperationsEndpointTests.client, "hook", base + "/hooks/git"] + arguments)
            return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [Int] ?? []
        }

        /// Polls until `condition` holds (or `seconds` pass); returns whether it held.
        func eventually(_ seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try condition() { return true }
                usleep(100_000)
            }
            return try condition()
        }
    }

    @Test func metricsAgreeWithHistoryAndGit() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder)
        let daemon = try Daemon(home: home, folder: folder, interval: "1h")
        // The atStartup trigger runs the collection once; wait for it, and for its report to be published.
        #expect(try daemon.eventually {
            try daemon.value("syncwright_runs_total") != nil && daemon.value("syncwright_reports_waiting") == 0
        }, "\(daemon.output())")
        let samples = try daemon.scrape()
        #expect(daemon.stop() == 0)

        let history = try home.run(["history", "--format", "json"])
        let runs = (try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]] ?? []
        #expect(!runs.isEmpty, "\(history.stdout)")
        var expected: [String: Double] = [:]
        var created = 0
        var jobs = 0
        for run in runs {
            expected["\(run["collection"] ?? "")/\(run["status"] ?? "")", default: 0] += 1
            for job in run["jobs"] as? [[String: Any]] ?? [] {
                jobs += 1
                created += (job["stats"] as? [String: Any])?["created"] as? Int ?? 0
            }
        }
        var measured: [String: Double] = [:]
        for sample in samples where sample.name == "syncwright_runs_total" {
            measured["\(sample.labels["collection"] ?? "")/\(sample.labels["status"] ?? "")"] = sample.value
        }
        #expect(measured == expected)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
        }
        #expect(created > 0 && value("syncwright_objects_written_total", ["action": "created"]) == Double(created))
        #expect(value("syncwright_run_duration_seconds_count") == Double(runs.count))
        #expect(value("syncwright_job_duration_seconds_count") == Double(jobs))
        #expect(value("syncwright_fire_lag_seconds_count") == Double(runs.count), "the startup fire's lag")
        let head = try fixture.git(["rev-parse", "main"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(samples.contains { $0.name == "syncwright_applied_revision_info" && $0.labels["revision"] == head && $0.value == 1 })
        let fetched = try #require(value("syncwright_last_successful_fetch_timestamp_seconds"))
        #expect(abs(fetched - Date().timeIntervalSince1970) < 120)
        #expect(value("syncwright_fetches_total", ["result": "ok"]) == 1)
        #expect(value("syncwright_workflow_requests", ["status": "pending"]) == 0)
        #expect(value("syncwright_notifications_waiting") == 0)
    }

    @Test func readinessFollowsTheRemoteAndHealthFollowsTheLoop() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder)
        let daemon = try Daemon(home: home, folder: folder, interval: "1s")
        #expect(try daemon.eventually { try daemon.get("/readyz").status == 200 }, "\(daemon.output())")
        let healthy = try daemon.get("/healthz")
        #expect(healthy.status == 200 && healthy.body["status"] == "ok", "\(healthy)")

        // The remote goes away: the next fetch fails, and /readyz says so; the loop still turns.
        let moved = fixture.originPath + ".away"
        try FileManager.default.moveItem(atPath: fixture.originPath, toPath: moved)
        #expect(try daemon.eventually { try daemon.get("/readyz").status == 503 })
        let notReady = try daemon.get("/readyz")
        #expect(notReady.body["status"] == "not ready" && notReady.body["reason"]?.hasPrefix("the last fetch failed: ") == true,
                "\(notReady)")
        #expect(try daemon.get("/healthz").status == 200)
        #expect(try daemon.value("syncwright_fetches_total", ["result": "failed"]) ?? 0 >= 1)

        // Back again: ready again.
        try FileManager.default.moveItem(atPath: moved, toPath: fixture.originPath)
        #expect(try daemon.eventually { try daemon.get("/readyz").status == 200 })
        #expect(daemon.stop() == 0)
    }

    @Test func aSignedPushStartsAPassAndABurstCausesAtMostTwo() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder)
        try "webhook:\n  secretFrom: { env: HOOK_SECRET }\n".appendLine(to: home.file("config.yaml"))
        // A fetch an hour: every other fetch is one a webhook asked for.
        let daemon = try Daemon(home: home, folder: folder, interval: "1h", env: ["HOOK_SECRET": Self.secret])
        func fetches() throws -> Double { try daemon.value("syncwright_fetches_total", ["result": "ok"]) ?? 0 }
        #expect(try daemon.eventually { try fetches() == 1 })

        // A merged change, announced by a signed push: fetched and applied without waiting for the hour.
        try fixture.write(["README.md": "changed\n"])
        let commit = try fixture.commit("a change")
        #expect(try daemon.hook(["--provider", "github", "--secret", Self.secret]) == [202])
        #expect(try daemon.eventually(10) { try fetches() == 2 })
        #expect(try daemon.eventually { daemon.output().contains("applied=\(commit.prefix(7))") }, "\(daemon.output())")
        #expect(try daemon.hook(["--provider", "gitea", "--secret", Self.secret]) == [202])
        #expect(try daemon.hook(["--provider", "gitlab", "--secret", Self.secret]) == [202])
        #expect(try daemon.eventually(10) { try fetches() >= 3 })
        usleep(1_500_000) // the second push's spaced fetch, if any, is done
        let before = try fetches()

        // Refused, and counted: a wrong secret, no signature, a body that is no push.
        #expect(try daemon.hook(["--provider", "github", "--secret", "not-the-secret"]) == [401])
        #expect(try daemon.hook(["--provider", "gitlab", "--secret", "not-the-secret"]) == [401])
        #expect(try daemon.hook(["--provider", "unsigned"]) == [401])
        #expect(try daemon.hook(["--provider", "github", "--secret", Self.secret, "--body", "not json"]) == [400])
        // Authentic, but nothing to do: another branch, a ping.
        #expect(try daemon.hook(["--provider", "github", "--secret", Self.secret, "--ref", "refs/heads/feature"]) == [200])
        #expect(try daemon.hook(["--provider", "github", "--secret", Self.secret, "--event", "ping"]) == [200])
        usleep(1_500_000)
        #expect(try fetches() == before, "refused and ignored hooks fetch nothing")
        #expect(try daemon.value("syncwright_webhook_requests_total", ["result": "unauthorized"]) == 3)
        #expect(try daemon.value("syncwright_webhook_requests_total", ["result": "bad_request"]) == 1)
        #expect(try daemon.value("syncwright_webhook_requests_total", ["result": "ignored"]) == 2)
        #expect(daemon.output().contains("webhook refused"))
        #expect(!daemon.output().contains(Self.secret))

        // A burst of 50 pushes: at most two passes, each a fetch.
        func passes() throws -> Double { try daemon.value("syncwright_passes_total") ?? 0 }
        let passesBefore = try passes()
        #expect(try daemon.hook(["--provider", "github", "--secret", Self.secret, "--count", "50"]) == Array(repeating: 202, count: 50))
        usleep(2_500_000)
        let burst = try fetches() - before
        let burstPasses = try passes() - passesBefore
        #expect(burst >= 1 && burst <= 2, "\(burst) fetches for a burst of 50 pushes")
        #expect(burstPasses == burst, "\(burstPasses) passes for \(burst) fetches")
        #expect(daemon.stop() == 0)
    }

    @Test func badListenSettingsAreClearErrors() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder()
        let home = try TestHome(fixture, in: folder)
        let bad = try home.run(["reconcile", "--listen", "localhost"])
        #expect(bad.status != 0 && bad.stderr.contains("--listen 'localhost' is not HOST:PORT"), "\(bad.stderr)")
        let withOnce = try home.run(["reconcile", "--once", "--listen", "127.0.0.1:0"])
        #expect(withOnce.status != 0 && withOnce.stderr.contains("nothing to serve with --once"), "\(withOnce.stderr)")

        // A port in use: the reconciler says so and exits before doing anything.
        let daemon = try Daemon(home: home, folder: folder, interval: "1h")
        let other = try TestHome(fixture, in: folder, name: "other")
        let taken = try other.run(["reconcile", "--listen", daemon.address])
        #expect(taken.status == 1 && taken.stderr.contains("cannot serve on \(daemon.address)"), "\(taken.stderr)")
        let history = try other.run(["history", "--format", "json"])
        let runs = (try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [String: Any])?["runs"] as? [Any]
        #expect(runs?.isEmpty == true, "nothing ran: \(history.stdout)")

        // Without webhook.secretFrom, /hooks/git is not served.
        #expect(try daemon.hook(["--provider", "github", "--secret", Self.secret]) == [404])
        #expect(daemon.stop() == 0)

        // listen in config.yaml, when --listen is not given; a bad one is an error of config.yaml.
        let config = try String(contentsOfFile: home.file("config.yaml"), encoding: .utf8)
        try "listen: 127.0.0.1:0\n".appendLine(to: home.file("config.yaml"))
        let fromConfig = try Daemon(home: home, folder: folder, interval: "1h", listen: false)
        #expect(try fromConfig.get("/healthz").status == 200)
        #expect(fromConfig.stop() == 0)
        try (config + "listen: nowhere\n").write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        let badConfig = try home.run(["status"])
        #expect(badConfig.status == 1 && badConfig.stderr.contains("listen: 'nowhere' is not HOST:PORT"), "\(badConfig.stderr)")
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)

        // A webhook secret that cannot be read stops the start, naming it.
        try "webhook:\n  secretFrom: { env: NO_SUCH_SECRET_VARIABLE }\n".appendLine(to: home.file("config.yaml"))
        let missing = try home.run(["reconcile", "--listen", "127.0.0.1:0"])
        #expect(missing.status == 1 && missing.stderr.contains("the webhook secret (webhook.secretFrom) is read from the environment "
            + "variable NO_SUCH_SECRET_VARIABLE, which is not set"), "\(missing.stderr)")
    }
}

extension String {
    /// Appends this text to the file at `path`.
    func appendLine(to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(utf8))
    }
}
