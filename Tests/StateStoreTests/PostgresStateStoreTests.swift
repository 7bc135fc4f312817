import Foundation
import Manifests
import Reports
import StateStore
import TestSupport
import Testing

/// What only the PostgreSQL backend has: a server that is shared, can go away and come back,
/// and may be reached by several processes at once.
@Suite struct PostgresStateStoreTests {
    @Test func theSchemaIsMadeOnceAndReadByPsql() throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let a = rec(.policy, "p", file: "p.yaml")
        try PostgresStateStore(url: url).apply(RevisionUpdate(
            desired: DesiredState(objects: [a.key: a], scope: .full), deleted: [], revision: revision("r", at: 1.25)))
        let again = try PostgresStateStore(url: url)
        #expect(try again.allRecords().count == 1, "a second store on the same database sees the first one's rows")
        // The independent oracle: psql sees the same rows, dates in seconds since 1970.
        #expect(try server.psql("SELECT kind, name, file FROM objects; SELECT appliedAt FROM applies", database: url)
                == "Policy|p|p.yaml\n1.25\n")
        #expect(try server.psql("SELECT count(*) FROM syncwright_migrations", database: url) == "4\n")
    }

    @Test func aStoreMadeByANewerVersionIsRefusedAndLeftAlone() throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        _ = try PostgresStateStore(url: url)
        try server.psql("INSERT INTO syncwright_migrations (name) VALUES ('v99: from the future')", database: url)
        let error = #expect(throws: StateError.self) { try PostgresStateStore(url: url) }
        #expect(error?.description.contains("made by a newer syncwright") == true, "\(String(describing: error))")
        #expect(error?.description.contains("v99: from the future") == true)
        #expect(try server.psql("SELECT count(*) FROM syncwright_migrations", database: url) == "5\n")
    }

    @Test func anUnreachableServerIsAClearErrorWithoutThePassword() throws {
        let port = try Slapd.freePort()
        let url = "postgresql://sync:hunter2@127.0.0.1:\(port)/syncwright"
        let error = #expect(throws: StateError.self) { try PostgresStateStore(url: url) }
        let text = error?.description ?? ""
        #expect(text.hasPrefix("cannot open the state store postgresql://sync:***@127.0.0.1:\(port)/syncwright: "), "\(text)")
        #expect(text.contains("Connection refused"), "\(text)")
        #expect(!text.contains("hunter2"))
    }

    @Test func aWrongPasswordIsRefused() throws {
        // The shared server trusts every login; this one asks for passwords.
        let server = try PostgresServer()
        try server.psql("ALTER USER postgres PASSWORD 'right'")
        try server.psql("CREATE DATABASE s")
        try server.requirePasswords()
        let url = server.url(database: "s")
        let error = #expect(throws: StateError.self) { try PostgresStateStore(url: url, password: "wrong") }
        #expect(error?.description.contains("password authentication failed") == true, "\(String(describing: error))")
        #expect(try PostgresStateStore(url: url, password: "right").appliedRevision() == nil)
    }

    /// With a CA file, the server's certificate must chain to it and name the host; the
    /// connection is then encrypted (pg_stat_ssl, the server's own view, says so).
    @Test func aCAFileMakesTheServerVerified() throws {
        let certificates = try TemporaryFolder("pg-certificates")
        let tls = try Slapd.makeCertificates(in: certificates.path)
        let other = try TemporaryFolder("pg-other-ca")
        let stranger = try Slapd.makeCertificates(in: other.path, name: "Another CA")
        let server = try PostgresServer(tls: tls)
        try server.psql("CREATE DATABASE s")
        let store = try PostgresStateStore(url: server.url(database: "s"), caFile: tls.caFile)
        #expect(try store.appliedRevision() == nil)
        #expect(try server.psql("SELECT bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                                + "WHERE application_name = 'syncwright'") == "t\n")
        let error = #expect(throws: StateError.self) {
            try PostgresStateStore(url: server.url(database: "s"), caFile: stranger.caFile)
        }
        #expect(error?.description.contains("certificate verify failed") == true, "\(String(describing: error))")
        let named = server.url(database: "s").replacingOccurrences(of: "127.0.0.1", with: "localhost")
        #expect(try PostgresStateStore(url: named, caFile: tls.caFile).appliedRevision() == nil, "the name is in the certificate")
    }

    /// The server restarted: the next question reconnects, and nothing is lost or written twice.
    @Test func aRestartedServerIsReconnectedTo() throws {
        let server = try PostgresServer()
        try server.psql("CREATE DATABASE s")
        let store = try PostgresStateStore(url: server.url(database: "s"))
        try store.record(report("run-1"), logs: [:], page: page("run-1"), requests: [])
        try server.restart()
        #expect(try store.runReport(id: "run-1")?.runId == "run-1", "a read after the restart is asked again")
        try server.restart()
        try store.record(report("run-2"), logs: [:], page: page("run-2"), requests: [])
        #expect(try store.runReports().map(\.runId) == ["run-2", "run-1"])
        #expect(try store.unpublished().map(\.subject) == ["run-1", "run-2"], "each page queued once")

        server.stop()
        let error = #expect(throws: StateError.self) { try store.runReports() }
        #expect(error?.description.hasPrefix("reading run reports from the state store \(store.location) failed: ") == true,
                "\(String(describing: error))")
    }

    /// Two replicas' stores on one database: what one takes (a run request, a fire time, a
    /// notification state), the other cannot take too.
    @Test func twoStoresOnOneDatabaseTakeEachThingOnce() async throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let stores = [try PostgresStateStore(url: url), try PostgresStateStore(url: url)]
        for index in 0..<50 {
            try stores[0].queue(RunRequest(id: "q\(index)", collection: "c", runId: "run-\(index)", requestedAt: at(Double(index)),
                                           requestedBy: "ada"))
        }
        let taken = try await withThrowingTaskGroup(of: [String].self) { group in
            for store in stores {
                group.addTask {
                    try (0..<50).compactMap { index in try store.start(runRequest: "q\(index)") ? "q\(index)" : nil }
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(taken.count == 50 && Set(taken).count == 50, "each request taken by exactly one store")

        // Each fire time is a claim: recorded by one store, the other's fire of it is left out.
        try stores[0].updateSchedules(ScheduleStateUpdate(replacing: [], states: (0..<50).map {
            ScheduleTargetState(schedule: "s", target: "c\($0)", hash: "h", nextFire: at(100))
        }))
        let fired = try await withThrowingTaskGroup(of: [FireRecord].self) { group in
            for (index, store) in stores.enumerated() {
                group.addTask {
                    try store.recordFires((0..<50).map { c in
                        FireRecord(schedule: "s", target: "c\(c)", fireTime: at(100), handledAt: at(101), outcome: .started,
                                   runId: "run-\(index)-\(c)", note: nil, nextFire: at(200))
                    })
                }
            }
            return try await group.reduce(into: [FireRecord]()) { $0 += $1 }
        }
        #expect(fired.count == 50 && Set(fired.map(\.target)).count == 50, "each fire time claimed once: \(fired.count)")
        let stored = try stores[1].fires(limit: 1_000)
        #expect(Set(stored.compactMap(\.runId)) == Set(fired.compactMap(\.runId)), "only the claims are stored")
        #expect(try stores[1].scheduleStates().allSatisfy { $0.nextFire == at(200) && $0.lastOutcome == .started })
        let late = try stores[1].recordFires([
            FireRecord(schedule: "s", target: "c0", fireTime: at(100), handledAt: at(102), outcome: .skipped, runId: nil,
                       note: "late", nextFire: at(999)),
            FireRecord(schedule: "s", target: "c1", fireTime: at(200), handledAt: at(201), outcome: .merged, runId: nil,
                       note: nil, nextFire: at(300)),
        ])
        #expect(late.map(\.target) == ["c1"], "a fire time already recorded is left out, with what it would move")
        let states = Dictionary(uniqueKeysWithValues: try stores[0].scheduleStates().map { ($0.target, $0) })
        #expect(states["c0"]?.nextFire == at(200) && states["c0"]?.lastNote == nil)
        #expect(states["c1"]?.nextFire == at(300) && states["c1"]?.lastOutcome == .merged)

        // A run decided on a notification state the other store has moved is refused.
        let sent = NotificationStateChange(collection: "c", decidedOn: nil, change: .sent(dedupeKey: "k", at: at(1)))
        try stores[0].record(report("r1"), logs: [:], page: nil, requests: [], notifications: [], notificationState: sent)
        let error = #expect(throws: StateError.self) {
            try stores[1].record(report("r2"), logs: [:], page: nil, requests: [], notifications: [], notificationState: sent)
        }
        #expect(error == .notificationStateMoved(collection: "c", current: sent.result))
        #expect(try stores[1].runReport(id: "r2") == nil, "nothing of the refused run is stored")
    }
}

/// The store's lease: one holder at a time, by the server's clock, and fenced writes.
@Suite struct StoreLeaseTests {
    func replica(_ name: String) -> ReplicaIdentity { ReplicaIdentity(id: name, host: "host-\(name)", pid: 1, command: "reconcile") }

    @Test func oneHolderAtATimeAndTheOthersSeeWho() throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let (storeA, storeB) = (try PostgresStateStore(url: url), try PostgresStateStore(url: url))
        let a = try storeA.lease(for: replica("a"), seconds: 30), b = try storeB.lease(for: replica("b"), seconds: 30)
        // A replica killed long ago left its row: it is forgotten after a day.
        let server = try PostgresServer.shared.get()
        try server.psql("INSERT INTO replicas VALUES ('old', 'gone', 9, 'reconcile', 1, 1, 2)", database: url)
        #expect(try a.acquire() == .acquired(previous: nil))
        #expect(try server.psql("SELECT count(*) FROM replicas WHERE id = 'old'", database: url) == "0\n")
        guard case .heldBy(let holder) = try b.acquire() else { Issue.record("b took a held lease"); return }
        #expect(holder.identity == replica("a") && holder.alive && holder.holdsStore)
        #expect(try a.renew())
        #expect(try a.acquire() == .acquired(previous: nil), "asking again while holding renews")
        let listed = try storeB.replicas()
        #expect(listed.map(\.identity.id) == ["a", "b"] && listed.map(\.holdsStore) == [true, false], "the holder first")
        // Given back: the other takes it at once, and nothing was lost.
        a.release()
        #expect(try b.acquire() == .acquired(previous: nil))
        #expect(try storeB.replicas().map(\.identity.id) == ["b"], "a released replica is forgotten")
        let measured = try b.measure()
        #expect(abs(measured.clockOffset) < 1, "the server runs on this machine's clock")
        #expect(measured.peers == (0, 1), "b is the one replica alive")
    }

    /// A holder that stops renewing (paused, cut off) loses the store, and its late writes are refused.
    @Test func aLapsedHolderIsFencedOff() throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let (storeA, storeB) = (try PostgresStateStore(url: url), try PostgresStateStore(url: url))
        let a = try storeA.lease(for: replica("a"), seconds: 1), b = try storeB.lease(for: replica("b"), seconds: 30)
        #expect(try a.acquire() == .acquired(previous: nil))
        try storeA.begin(RunInProgress(id: "run-a", collection: "c", trigger: .schedule, revision: "abc", startedAt: at(1), pid: 1))
        usleep(1_300_000)
        guard case .acquired(let previous) = try b.acquire() else { Issue.record("b could not take a lapsed lease"); return }
        #expect(previous?.identity == replica("a") && previous?.alive == false && previous?.runsHeld == 1)
        #expect(try !a.renew(), "the lapsed holder learns it lost the store")
        let error = #expect(throws: StateError.self) {
            try storeA.record(report("run-a"), logs: [:], page: page("run-a"), requests: [])
        }
        #expect(error == .fenced(location: storeA.location, what: "recording run run-a"))
        #expect(try storeB.runReport(id: "run-a") == nil && storeB.unpublished().isEmpty, "nothing of the late write is stored")
        #expect(try storeB.runsInProgress().map(\.id) == ["run-a"], "the run is left for the new holder to account for")
        // The new holder's writes go through.
        try storeB.record(report("run-a", status: .failed), logs: [:], page: page("run-a"), requests: [])
        #expect(try storeA.runReport(id: "run-a")?.status == .failed)
    }

    /// Replicas share the work: each has a lease of its own, and the runs of one whose lease ran
    /// out are found for the leader to record, while a live one's are left alone.
    @Test func theRunsOfALapsedReplicaAreOrphanedAndALiveOnesAreNot() throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let (storeA, storeB) = (try PostgresStateStore(url: url), try PostgresStateStore(url: url))
        let a = try storeA.lease(for: replica("a"), seconds: 1), b = try storeB.lease(for: replica("b"), seconds: 30)
        #expect(try a.join().isEmpty)
        #expect(try b.join().map(\.identity.id) == ["a"], "b sees a alive")
        #expect(try b.acquire() == .acquired(previous: nil), "b leads; a follows")
        #expect(try a.measure().peers == (0, 2) && b.measure().peers == (1, 2), "each knows its place among the live replicas")
        try storeA.begin(RunInProgress(id: "run-a", collection: "ca", trigger: .schedule, revision: "abc", startedAt: at(1), pid: 1))
        try storeB.begin(RunInProgress(id: "run-b", collection: "cb", trigger: .schedule, revision: "abc", startedAt: at(2), pid: 2))
        #expect(try storeB.orphanedRuns().isEmpty, "both replicas are alive")
        #expect(try storeB.replicas().map(\.runsHeld) == [1, 1])
        usleep(1_300_000)
        let orphans = try storeB.orphanedRuns()
        #expect(orphans.map(\.run.id) == ["run-a"] && orphans.first?.replica?.identity == replica("a"))
        // A lapsed lease is never renewed, though no one took anything over: a woken replica is done.
        #expect(try !a.renew())
        #expect(try a.acquire() == .lost)
        #expect(throws: StateError.fenced(location: storeA.location, what: "recording the progress of run run-a")) {
            try storeA.progress(run: "run-a", job: "j", finishedJobs: [])
        }
        // A run no replica owns (begun without a lease) is orphaned too.
        let storeC = try PostgresStateStore(url: url)
        try storeC.begin(RunInProgress(id: "run-c", collection: "cc", trigger: .manual, revision: "abc", startedAt: at(3), pid: 3))
        #expect(try storeB.orphanedRuns().map(\.run.id) == ["run-a", "run-c"])
    }

    /// One run per destination across replicas: a claim is refused while another live replica's
    /// run holds it (naming that run), passes on once given back, and is taken over once the
    /// holder's lease ran out.
    @Test func aDestinationIsClaimedByOneRunAtATime() throws {
        let url = try PostgresServer.shared.get().createDatabase()
        let (storeA, storeB) = (try PostgresStateStore(url: url), try PostgresStateStore(url: url))
        let a = try storeA.lease(for: replica("a"), seconds: 1), b = try storeB.lease(for: replica("b"), seconds: 30)
        _ = try a.join()
        _ = try b.join()
        #expect(try storeA.claimDestination("connection corp", run: "r1", holder: "run r1 on a") == nil)
        #expect(try storeA.claimDestination("connection corp", run: "r1", holder: "run r1 on a") == nil, "the same run again")
        #expect(try storeB.claimDestination("connection corp", run: "r2", holder: "run r2 on b") == "run r1 on a")
        #expect(try storeA.claimDestination("connection corp", run: "r3", holder: "run r3 on a") == "run r1 on a",
                "another run of the same replica waits too")
        #expect(try storeB.claimDestination("connection partner", run: "r2", holder: "run r2 on b") == nil, "another destination")
        try storeA.releaseDestination("connection corp", run: "r1")
        #expect(try storeB.claimDestination("connection corp", run: "r2", holder: "run r2 on b") == nil)
        try storeB.releaseDestination("connection corp", run: "r2")
        #expect(try storeA.claimDestination("connection corp", run: "r4", holder: "run r4 on a") == nil)
        usleep(1_300_000)
        #expect(try storeB.claimDestination("connection corp", run: "r5", holder: "run r5 on b") == nil,
                "the claim of a replica whose lease ran out is taken over")
        let server = try PostgresServer.shared.get()
        #expect(try server.psql("SELECT destination || ' ' || run || ' ' || replica FROM destinationClaims ORDER BY 1", database: url)
            == "connection corp r5 b\nconnection partner r2 b\n")
        b.release()
        #expect(try server.psql("SELECT count(*) FROM destinationClaims", database: url) == "0\n",
                "a replica that leaves gives its claims back")
    }
}
