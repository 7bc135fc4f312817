import Foundation
import Manifests
import Reports
import StateStore
import TestSupport
import Testing

/// What only the SQLite backend has: a file, a schema, and rows another program can write.
@Suite struct SQLiteStateStoreTests {
    @Test func reopeningKeepsTheStateAndTheSchema() throws {
        let folder = try TemporaryFolder()
        let a = rec(.policy, "p", file: "p.yaml")
        try SQLiteStateStore(path: folder.sub("s.sqlite")).apply(RevisionUpdate(
            desired: DesiredState(objects: [a.key: a], scope: .full), deleted: [], revision: revision("r", at: 1)))
        let reopened = try SQLiteStateStore(path: folder.sub("s.sqlite"))
        #expect(try reopened.allRecords().count == 1)
        // The independent oracle: the sqlite3 CLI sees the same rows, dates in seconds since 1970.
        let rows = try runProcess("/usr/bin/sqlite3", [folder.sub("s.sqlite"), "SELECT kind, name, file FROM objects; SELECT appliedAt FROM applies"])
        #expect(rows.stdout == "Policy|p|p.yaml\n1.0\n")
    }

    @Test func anUnopenableStoreSaysWhichFile() throws {
        let folder = try TemporaryFolder()
        try "not a database, just text that is long enough to be read as a header".write(
            toFile: folder.sub("bad.sqlite"), atomically: true, encoding: .utf8)
        let error = #expect(throws: StateError.self) { try SQLiteStateStore(path: folder.sub("bad.sqlite")) }
        #expect(error?.description.hasPrefix("cannot open the state store \(folder.sub("bad.sqlite"))") == true)
    }

    @Test func aStoreMadeByANewerVersionIsRefusedAndLeftAlone() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("state.sqlite")
        _ = try SQLiteStateStore(path: path)
        let insert = try runProcess("/usr/bin/sqlite3", [path, "INSERT INTO grdb_migrations VALUES ('v99: from the future')"])
        try #require(insert.status == 0, "\(insert.stderr)")
        let error = #expect(throws: StateError.self) { try SQLiteStateStore(path: path) }
        #expect(error?.description.contains("made by a newer syncwright") == true)
        let still = try runProcess("/usr/bin/sqlite3", [path, "SELECT count(*) FROM grdb_migrations"])
        #expect(still.stdout == "12\n")
    }

    /// A store from before v10, which kept a row per run held back, keeps its dedupe: each
    /// collection's last notification sent, and the runs held back since, become its state.
    @Test func aStoreWithHeldBackRowsBecomesOneStatePerCollection() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("state.sqlite")
        _ = try SQLiteStateStore(path: path)
        let row = { (id: Int, run: String, collection: String, key: String, status: String, at: Int) in
            "INSERT INTO notifications (id, runId, collection, channel, dedupeKey, status, message, createdAt) "
                + "VALUES (\(id), '\(run)', '\(collection)', 'hook', '\(key)', '\(status)', '{}', \(at));"
        }
        let asV9 = "DELETE FROM grdb_migrations WHERE identifier LIKE 'v10:%'; DROP TABLE notificationState; "
            + "CREATE INDEX notifications_by_key ON notifications(dedupeKey, createdAt); "
            + row(1, "r1", "a", "k1", "delivered", 100) + row(2, "r2", "a", "k1", "suppressed", 200)
            + row(3, "r2", "a", "k1", "suppressed", 200) + row(4, "r3", "a", "k1", "suppressed", 300)
            + row(5, "q1", "a", "request:q1:pending", "pending", 350)
            + row(6, "r4", "b", "k9", "delivered", 100) + row(7, "r5", "b", "k8", "pending", 400)
        let written = try runProcess("/usr/bin/sqlite3", [path, asV9])
        try #require(written.status == 0, "\(written.stderr)")
        let store = try SQLiteStateStore(path: path)
        let states = try store.notificationStates()
        #expect(states["a"] == NotificationState(dedupeKey: "k1", sentAt: at(100), heldBack: 2, version: 1), "two runs held back, not three rows")
        #expect(states["b"] == NotificationState(dedupeKey: "k8", sentAt: at(400), heldBack: 0, version: 1))
        let left = try runProcess("/usr/bin/sqlite3", [path, "SELECT id FROM notifications ORDER BY id"])
        #expect(left.stdout == "1\n5\n6\n7\n", "the held-back rows are gone; every message is kept")
    }
}
