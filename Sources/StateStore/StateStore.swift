import Foundation
import GRDB
import Manifests

/// The state store's error: which file and what went wrong.
public struct StateError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One `apply`, as recorded.
public struct AppliedRevision: Sendable, Equatable {
    public let revision: String
    public let appliedAt: Date
    public let created: Int
    public let updated: Int
    public let deleted: Int

    public init(revision: String, appliedAt: Date, created: Int, updated: Int, deleted: Int) {
        self.revision = revision
        self.appliedAt = appliedAt
        self.created = created
        self.updated = updated
        self.deleted = deleted
    }
}

/// The reconciler's stored state in SQLite: the applied revision and every applied object.
///
/// `Sendable` because GRDB's `DatabaseQueue` serialises all access itself.
public final class StateStore: Sendable {
    let queue: DatabaseQueue
    public let path: String

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    public init(path: String) throws {
        self.path = path
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            queue = try DatabaseQueue(path: path, configuration: configuration)
            // Write-ahead logging: a reader (`status`, `history`) never waits for the reconciler's
            // writes, and a commit costs one append and one fsync instead of a journal round trip.
            // synchronous stays FULL, so a committed run survives a power cut.
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            try Self.migrator.migrate(queue)
        } catch let error as DatabaseError {
            throw StateError("cannot open the state store \(path): \(error.message ?? "\(error)")")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: applied objects") { db in
            try db.execute(sql: """
                CREATE TABLE applies (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    revision TEXT NOT NULL,
                    appliedAt DOUBLE NOT NULL,
                    created INTEGER NOT NULL,
                    updated INTEGER NOT NULL,
                    deleted INTEGER NOT NULL
                );
                CREATE TABLE objects (
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    file TEXT NOT NULL,
                    spec TEXT NOT NULL,
                    raw TEXT,                          -- NULL when the same as spec (all but collections)
                    hash TEXT NOT NULL,
                    UNIQUE (kind, name)
                );
                CREATE INDEX objects_by_file ON objects(file);
                CREATE TABLE refs (
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    target TEXT NOT NULL
                );
                CREATE INDEX refs_by_target ON refs(target);
                CREATE INDEX refs_by_source ON refs(kind, name);
                """)
        }
        migrator.registerMigration("v2: runs") { db in
            try db.execute(sql: """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY,
                    collection TEXT NOT NULL,
                    trigger TEXT NOT NULL,
                    revision TEXT NOT NULL,
                    status TEXT NOT NULL,
                    startedAt DOUBLE NOT NULL,
                    finishedAt DOUBLE NOT NULL,
                    report TEXT NOT NULL
                );
                CREATE INDEX runs_by_collection ON runs(collection, startedAt);
                CREATE INDEX runs_by_time ON runs(startedAt);
                CREATE TABLE jobRuns (
                    runId TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    job TEXT NOT NULL,
                    status TEXT NOT NULL,
                    log TEXT NOT NULL,
                    PRIMARY KEY (runId, position)
                );
                CREATE INDEX jobRuns_by_job ON jobRuns(job);
                """)
        }
        migrator.registerMigration("v3: outbox") { db in
            try db.execute(sql: """
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,                -- run | apply
                    subject TEXT NOT NULL,             -- the run id, or the applied revision
                    createdAt DOUBLE NOT NULL,
                    publication TEXT,                  -- what to publish (JSON); NULL once published
                    publishedAt DOUBLE,
                    commitId TEXT,                     -- the reports-branch commit that holds it
                    attempts INTEGER NOT NULL DEFAULT 0,
                    lastError TEXT
                );
                CREATE INDEX outbox_unpublished ON outbox(publishedAt, id);
                CREATE INDEX outbox_by_subject ON outbox(subject);
                """)
        }
        registerScheduleMigration(&migrator)
        registerRequestMigration(&migrator)
        registerRunsInProgressMigration(&migrator)
        registerRejectionsMigration(&migrator)
        registerRunRequestsMigration(&migrator)
        return migrator
    }

    static func targetKey(_ target: Reference.Target) -> String {
        switch target {
        case .object(let key): return "\(key.kind.rawValue)/\(key.name)"
        case .file(let path): return "file:\(path)"
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.read(body)
        } catch let error as DatabaseError {
            throw StateError("reading the state store \(path) failed: \(error.message ?? "\(error)")")
        }
    }

    // MARK: Reading

    /// The last applied revision, or nil before the first apply.
    public func appliedRevision() throws -> AppliedRevision? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM applies ORDER BY id DESC LIMIT 1").map {
                AppliedRevision(revision: $0["revision"], appliedAt: Date(timeIntervalSince1970: $0["appliedAt"]),
                                created: $0["created"], updated: $0["updated"], deleted: $0["deleted"])
            }
        }
    }

    private static func record(_ row: Row) -> ObjectRecord? {
        guard let kind = Kind(rawValue: row["kind"]) else { return nil }
        let spec: String = row["spec"]
        return ObjectRecord(key: ObjectKey(kind, row["name"]), file: row["file"], spec: spec,
                            raw: row["raw"] ?? spec, hash: row["hash"], references: [])
    }

    /// Every applied object.
    public func allRecords() throws -> [ObjectKey: ObjectRecord] {
        try read { db in
            var out: [ObjectKey: ObjectRecord] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT kind, name, file, spec, raw, hash FROM objects")
            while let row = try rows.next() {
                if let record = Self.record(row) { out[record.key] = record }
            }
            return out
        }
    }

    /// The applied records that a path-scoped plan compares: those for `keys`, and those defined in `files`.
    public func records(for keys: some Collection<ObjectKey>, inFiles files: Set<String>) throws -> [ObjectKey: ObjectRecord] {
        try read { db in
            var out: [ObjectKey: ObjectRecord] = [:]
            let byKey = try db.makeStatement(sql: "SELECT kind, name, file, spec, raw, hash FROM objects WHERE kind = ? AND name = ?")
            for key in keys {
                if let row = try Row.fetchOne(byKey, arguments: [key.kind.rawValue, key.name]),
                   let record = Self.record(row) { out[record.key] = record }
            }
            let byFile = try db.makeStatement(sql: "SELECT kind, name, file, spec, raw, hash FROM objects WHERE file = ?")
            for file in files {
                for row in try Row.fetchAll(byFile, arguments: [file]) {
                    if let record = Self.record(row) { out[record.key] = record }
                }
            }
            return out
        }
    }

    /// The applied objects of one kind, decoded, sorted by name.
    public func manifests(of kind: Kind) throws -> [(Metadata, Spec, String)] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: "SELECT spec, file FROM objects WHERE kind = ? ORDER BY name", arguments: [kind.rawValue])
        }
        return try rows.map { row in
            let (metadata, spec) = try Canonical.decode(kind: kind, json: row["spec"])
            return (metadata, spec, row["file"])
        }
    }

    /// A view for building a path-scoped desired state.
    public var catalog: AppliedCatalog { Catalog(store: self) }

    // MARK: Writing

    /// Stores a plan's outcome in one transaction: upserts every object of `desired`, deletes `deleted`,
    /// and records `revision`. On any failure nothing changes.
    /// `publication` (if any) is queued in the outbox in the same transaction.
    public func apply(desired: DesiredState, deleted: [ObjectKey], revision: String, counts: (Int, Int, Int),
                      at date: Date = Date(), publication: String? = nil,
                      schedules: ScheduleStateUpdate? = nil, requests: [StoredRequest] = []) throws {
        do {
            try queue.write { db in
                try Self.save(db, requests, at: date)
                let upsert = try db.makeStatement(sql: """
                    INSERT INTO objects (kind, name, file, spec, raw, hash) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (kind, name) DO UPDATE SET file = excluded.file, spec = excluded.spec,
                        raw = excluded.raw, hash = excluded.hash
                    """)
                let dropRefs = try db.makeStatement(sql: "DELETE FROM refs WHERE kind = ? AND name = ?")
                let addRef = try db.makeStatement(sql: "INSERT INTO refs (kind, name, target) VALUES (?, ?, ?)")
                let drop = try db.makeStatement(sql: "DELETE FROM objects WHERE kind = ? AND name = ?")
                if desired.scope == .full {
                    try db.execute(sql: "DELETE FROM objects")
                    try db.execute(sql: "DELETE FROM refs")
                }
                for record in desired.objects.values {
                    let kind = record.key.kind.rawValue
                    let raw: String? = record.raw == record.spec ? nil : record.raw
                    try upsert.execute(arguments: [kind, record.key.name, record.file, record.spec, raw, record.hash])
                    if desired.scope != .full { try dropRefs.execute(arguments: [kind, record.key.name]) }
                    for target in Set(record.references.map(Self.targetKey)) {
                        try addRef.execute(arguments: [kind, record.key.name, target])
                    }
                }
                for key in deleted {
                    try drop.execute(arguments: [key.kind.rawValue, key.name])
                    try dropRefs.execute(arguments: [key.kind.rawValue, key.name])
                }
                try db.execute(sql: """
                    INSERT INTO applies (revision, appliedAt, created, updated, deleted) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [revision, date.timeIntervalSince1970, counts.0, counts.1, counts.2])
                if let publication {
                    try Self.enqueue(db, kind: "apply", subject: revision, publication: publication, at: date)
                }
                if let schedules { try Self.writeScheduleUpdate(db, schedules) }
            }
        } catch let error as DatabaseError {
            throw StateError("storing revision \(revision) in \(path) failed, nothing was changed: \(error.message ?? "\(error)")")
        }
    }
}

/// A finished run as stored: indexed columns plus the report document (JSON) and job logs.
public struct StoredRun: Sendable, Equatable {
    public struct Job: Sendable, Equatable {
        public let name: String
        public let status: String
        public let log: String
        public init(name: String, status: String, log: String) {
            self.name = name
            self.status = status
            self.log = log
        }
    }
    public let id: String
    public let collection: String
    public let trigger: String
    public let revision: String
    public let status: String
    public let startedAt: Date
    public let finishedAt: Date
    /// The run report, as JSON (its schema belongs to the reconciler).
    public let report: String
    public let jobs: [Job]

    public init(id: String, collection: String, trigger: String, revision: String, status: String,
                startedAt: Date, finishedAt: Date, report: String, jobs: [Job]) {
        self.id = id
        self.collection = collection
        self.trigger = trigger
        self.revision = revision
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.report = report
        self.jobs = jobs
    }
}

/// How often a collection (or job) has run, and how it last went.
public struct RunCounters: Sendable, Equatable {
    public let timesRun: Int
    public let lastRun: Date?
    public let lastOutcome: String?
}

extension StateStore {
    /// Records a finished run and its jobs in one transaction, with `publication` (if any) queued
    /// in the outbox in that same transaction: a crash after this loses no report.
    /// `requests` (raised by the run, or carried out by it) are saved in the same transaction.
    public func record(_ run: StoredRun, publication: String? = nil, requests: [StoredRequest] = []) throws {
        do {
            try queue.write { db in
                try Self.save(db, requests, at: run.finishedAt)
                try db.execute(sql: "DELETE FROM runsInProgress WHERE id = ?", arguments: [run.id])
                try db.execute(sql: """
                    INSERT INTO runs (id, collection, trigger, revision, status, startedAt, finishedAt, report)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [run.id, run.collection, run.trigger, run.revision, run.status,
                                     run.startedAt.timeIntervalSince1970, run.finishedAt.timeIntervalSince1970, run.report])
                for (position, job) in run.jobs.enumerated() {
                    try db.execute(sql: "INSERT INTO jobRuns (runId, position, job, status, log) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [run.id, position, job.name, job.status, job.log])
                }
                if let publication {
                    try Self.enqueue(db, kind: "run", subject: run.id, publication: publication, at: run.finishedAt)
                }
            }
        } catch let error as DatabaseError {
            throw StateError("recording run \(run.id) in \(path) failed: \(error.message ?? "\(error)")")
        }
    }

    /// Run reports (JSON), newest first, optionally of one collection.
    public func runReports(collection: String? = nil, limit: Int = 50) throws -> [String] {
        try read { db in
            if let collection {
                return try String.fetchAll(db, sql: "SELECT report FROM runs WHERE collection = ? ORDER BY startedAt DESC, id DESC LIMIT ?",
                                           arguments: [collection, limit])
            }
            return try String.fetchAll(db, sql: "SELECT report FROM runs ORDER BY startedAt DESC, id DESC LIMIT ?", arguments: [limit])
        }
    }

    /// One run's report (JSON), or nil. A run id may be given by a unique prefix.
    public func runReport(id: String) throws -> String? {
        try read { db in
            if let exact = try String.fetchOne(db, sql: "SELECT report FROM runs WHERE id = ?", arguments: [id]) { return exact }
            let matches = try String.fetchAll(db, sql: "SELECT report FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                                              arguments: [id.replacingOccurrences(of: "%", with: "\\%")
                                                  .replacingOccurrences(of: "_", with: "\\_") + "%"])
            return matches.count == 1 ? matches[0] : nil
        }
    }

    /// The stored log of one job in one run.
    public func jobLog(run: String, job: String) throws -> String? {
        try read { db in
            try String.fetchOne(db, sql: "SELECT log FROM jobRuns WHERE runId = ? AND job = ?", arguments: [run, job])
        }
    }

    /// Times run, last run and last outcome of every collection that has run.
    public func collectionCounters() throws -> [String: RunCounters] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT collection, COUNT(*) AS timesRun, MAX(startedAt) AS lastRun,
                       (SELECT status FROM runs r2 WHERE r2.collection = runs.collection
                        ORDER BY startedAt DESC, id DESC LIMIT 1) AS lastOutcome
                FROM runs GROUP BY collection
                """)
            var out: [String: RunCounters] = [:]
            for row in rows {
                let last: Double? = row["lastRun"]
                out[row["collection"]] = RunCounters(timesRun: row["timesRun"], lastRun: last.map { Date(timeIntervalSince1970: $0) },
                                                     lastOutcome: row["lastOutcome"])
            }
            return out
        }
    }

    /// Times run, last run and last outcome of one job, across collections.
    public func jobCounters(_ job: String) throws -> RunCounters {
        try read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS timesRun, MAX(runs.startedAt) AS lastRun,
                       (SELECT j2.status FROM jobRuns j2 JOIN runs r2 ON r2.id = j2.runId WHERE j2.job = ?
                        ORDER BY r2.startedAt DESC LIMIT 1) AS lastOutcome
                FROM jobRuns JOIN runs ON runs.id = jobRuns.runId WHERE jobRuns.job = ? AND jobRuns.status != 'notRun'
                """, arguments: [job, job])
            let last: Double? = row?["lastRun"]
            return RunCounters(timesRun: row?["timesRun"] ?? 0, lastRun: last.map { Date(timeIntervalSince1970: $0) },
                               lastOutcome: row?["lastOutcome"])
        }
    }

    /// One applied object's effective spec, decoded; nil when not applied.
    public func manifest(_ key: ObjectKey) throws -> (Metadata, Spec)? {
        let json = try read { db in
            try String.fetchOne(db, sql: "SELECT spec FROM objects WHERE kind = ? AND name = ?",
                                arguments: [key.kind.rawValue, key.name])
        }
        return try json.map { try Canonical.decode(kind: key.kind, json: $0) }
    }
}

/// `AppliedCatalog` over the store, one indexed query per question.
struct Catalog: AppliedCatalog {
    let store: StateStore

    func file(of key: ObjectKey) throws -> String? {
        try store.read { db in
            try String.fetchOne(db, sql: "SELECT file FROM objects WHERE kind = ? AND name = ?",
                                arguments: [key.kind.rawValue, key.name])
        }
    }

    func referrers(of targets: Set<Reference.Target>) throws -> [ObjectKey: String] {
        guard !targets.isEmpty else { return [:] }
        return try store.read { db in
            var out: [ObjectKey: String] = [:]
            let statement = try db.makeStatement(sql: """
                SELECT refs.kind, refs.name, objects.file FROM refs
                JOIN objects ON objects.kind = refs.kind AND objects.name = refs.name
                WHERE refs.target = ?
                """)
            for target in targets {
                for row in try Row.fetchAll(statement, arguments: [StateStore.targetKey(target)]) {
                    if let kind = Kind(rawValue: row[0]) { out[ObjectKey(kind, row[1])] = row[2] }
                }
            }
            return out
        }
    }

    func raw(_ key: ObjectKey) throws -> (json: String, file: String)? {
        try store.read { db in
            try Row.fetchOne(db, sql: "SELECT coalesce(raw, spec) AS raw, file FROM objects WHERE kind = ? AND name = ?",
                             arguments: [key.kind.rawValue, key.name]).map { ($0["raw"], $0["file"]) }
        }
    }

    func keys(inFiles files: Set<String>) throws -> [ObjectKey] {
        try store.read { db in
            var out: [ObjectKey] = []
            let statement = try db.makeStatement(sql: "SELECT kind, name FROM objects WHERE file = ?")
            for file in files {
                for row in try Row.fetchAll(statement, arguments: [file]) {
                    if let kind = Kind(rawValue: row[0]) { out.append(ObjectKey(kind, row[1])) }
                }
            }
            return out
        }
    }
}

/// One report waiting in the outbox to be published.
public struct OutboxItem: Sendable, Equatable {
    public let id: Int64
    /// `run` or `apply`.
    public let kind: String
    /// The run id, or the applied revision.
    public let subject: String
    public let createdAt: Date
    /// What to publish (JSON; its schema belongs to the reports module).
    public let publication: String
    public let attempts: Int
    public let lastError: String?
}

extension StateStore {
    static func enqueue(_ db: Database, kind: String, subject: String, publication: String, at date: Date) throws {
        try db.execute(sql: "INSERT INTO outbox (kind, subject, createdAt, publication) VALUES (?, ?, ?, ?)",
                       arguments: [kind, subject, date.timeIntervalSince1970, publication])
    }

    func write(_ what: String, _ body: (Database) throws -> Void) throws {
        do {
            try queue.write(body)
        } catch let error as DatabaseError {
            throw StateError("\(what) in \(path) failed: \(error.message ?? "\(error)")")
        }
    }

    /// Reports not yet published, oldest first.
    public func unpublished(limit: Int = 1_000) throws -> [OutboxItem] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, kind, subject, createdAt, publication, attempts, lastError FROM outbox
                WHERE publishedAt IS NULL ORDER BY id LIMIT ?
                """, arguments: [limit]).map { row in
                OutboxItem(id: row["id"], kind: row["kind"], subject: row["subject"],
                           createdAt: Date(timeIntervalSince1970: row["createdAt"]), publication: row["publication"] ?? "",
                           attempts: row["attempts"], lastError: row["lastError"])
            }
        }
    }

    /// Marks outbox items as published in `commits` (by item id), dropping their stored pages.
    public func markPublished(_ commits: [Int64: String], at date: Date = Date()) throws {
        try write("recording published reports") { db in
            for (id, commit) in commits {
                try db.execute(sql: "UPDATE outbox SET publishedAt = ?, commitId = ?, publication = NULL, lastError = NULL WHERE id = ?",
                               arguments: [date.timeIntervalSince1970, commit, id])
            }
        }
    }

    /// Records a failed attempt to publish `ids`.
    public func markAttempt(_ ids: [Int64], error: String) throws {
        try write("recording a failed publish") { db in
            for id in ids {
                try db.execute(sql: "UPDATE outbox SET attempts = attempts + 1, lastError = ? WHERE id = ?", arguments: [error, id])
            }
        }
    }

    /// The reports-branch commit that holds `subject` (a run id or revision), once published.
    public func publishedCommit(of subject: String) throws -> String? {
        try read { db in
            try String.fetchOne(db, sql: "SELECT commitId FROM outbox WHERE subject = ? AND publishedAt IS NOT NULL ORDER BY id DESC LIMIT 1",
                                arguments: [subject])
        }
    }
}

// MARK: Schedules

/// Where one schedule stands for one of its targets: when it fires next, and how its last fire went.
public struct ScheduleTargetState: Sendable, Equatable {
    public let schedule: String
    public let target: String
    /// The schedule's spec hash the fire times were computed from.
    public let hash: String
    /// Nil when no enabled trigger fires again ("Never").
    public var nextFire: Date?
    /// The newest fire time handled, and what became of it.
    public var lastFire: Date?
    public var lastOutcome: String?
    public var lastNote: String?

    public init(schedule: String, target: String, hash: String, nextFire: Date?, lastFire: Date? = nil,
                lastOutcome: String? = nil, lastNote: String? = nil) {
        self.schedule = schedule
        self.target = target
        self.hash = hash
        self.nextFire = nextFire
        self.lastFire = lastFire
        self.lastOutcome = lastOutcome
        self.lastNote = lastNote
    }
}

/// New fire times for changed schedules: every row of each schedule in `replacing` is dropped,
/// then `states` are stored.
public struct ScheduleStateUpdate: Sendable, Equatable {
    public var replacing: Set<String>
    public var states: [ScheduleTargetState]
    public init(replacing: Set<String>, states: [ScheduleTargetState]) {
        self.replacing = replacing
        self.states = states
    }
}

/// One fire time handled by the reconciler.
public struct FireRecord: Sendable, Equatable {
    /// `started` (a run began), `merged` (a run of the same collection covered it) or `skipped`.
    public enum Outcome: String, Sendable { case started, merged, skipped }
    public let schedule: String
    public let target: String
    /// The fire time (for `atStartup`, the start of the reconciler).
    public let fireTime: Date
    public let handledAt: Date
    public let outcome: Outcome
    public let runId: String?
    public let note: String?
    /// The next fire time after this one (nil: never). Ignored for `atStartup` fires.
    public let nextFire: Date?
    /// Whether this fire came from a timed trigger (and so moves the stored next fire time).
    public let timed: Bool

    public init(schedule: String, target: String, fireTime: Date, handledAt: Date, outcome: Outcome,
                runId: String?, note: String?, nextFire: Date?, timed: Bool = true) {
        self.schedule = schedule
        self.target = target
        self.fireTime = fireTime
        self.handledAt = handledAt
        self.outcome = outcome
        self.runId = runId
        self.note = note
        self.nextFire = nextFire
        self.timed = timed
    }
}

extension StateStore {
    static func registerScheduleMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4: schedules") { db in
            try db.execute(sql: """
                CREATE TABLE scheduleTargets (
                    schedule TEXT NOT NULL,
                    target TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    nextFire DOUBLE,                   -- NULL: never fires again
                    lastFire DOUBLE,
                    lastOutcome TEXT,
                    lastNote TEXT,
                    PRIMARY KEY (schedule, target)
                );
                CREATE INDEX scheduleTargets_by_next ON scheduleTargets(nextFire);
                CREATE TABLE fires (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    schedule TEXT NOT NULL,
                    target TEXT NOT NULL,
                    fireTime DOUBLE NOT NULL,
                    handledAt DOUBLE NOT NULL,
                    outcome TEXT NOT NULL,             -- started | merged | skipped
                    runId TEXT,
                    note TEXT
                );
                CREATE INDEX fires_by_schedule ON fires(schedule, id);
                """)
        }
    }

    static func writeScheduleUpdate(_ db: Database, _ update: ScheduleStateUpdate) throws {
        let drop = try db.makeStatement(sql: "DELETE FROM scheduleTargets WHERE schedule = ?")
        for name in update.replacing { try drop.execute(arguments: [name]) }
        let insert = try db.makeStatement(sql: """
            INSERT OR REPLACE INTO scheduleTargets (schedule, target, hash, nextFire, lastFire, lastOutcome, lastNote)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        for s in update.states {
            try insert.execute(arguments: [s.schedule, s.target, s.hash, s.nextFire?.timeIntervalSince1970,
                                           s.lastFire?.timeIntervalSince1970, s.lastOutcome, s.lastNote])
        }
    }

    private static func scheduleState(_ row: Row) -> ScheduleTargetState {
        let next: Double? = row["nextFire"]
        let last: Double? = row["lastFire"]
        return ScheduleTargetState(schedule: row["schedule"], target: row["target"], hash: row["hash"],
                                   nextFire: next.map { Date(timeIntervalSince1970: $0) },
                                   lastFire: last.map { Date(timeIntervalSince1970: $0) },
                                   lastOutcome: row["lastOutcome"], lastNote: row["lastNote"])
    }

    /// Stores new fire times for changed schedules, in one transaction.
    public func updateSchedules(_ update: ScheduleStateUpdate) throws {
        try write("storing schedule fire times") { db in try Self.writeScheduleUpdate(db, update) }
    }

    /// Every schedule target's state, by schedule then target.
    public func scheduleStates() throws -> [ScheduleTargetState] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM scheduleTargets ORDER BY schedule, target").map(Self.scheduleState)
        }
    }

    /// The states whose next fire time is at or before `date`, earliest first.
    public func dueSchedules(at date: Date) throws -> [ScheduleTargetState] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM scheduleTargets WHERE nextFire <= ? ORDER BY nextFire, schedule, target",
                             arguments: [date.timeIntervalSince1970]).map(Self.scheduleState)
        }
    }

    /// The earliest next fire time of any schedule.
    public func nextFireTime() throws -> Date? {
        try read { db in
            try Double.fetchOne(db, sql: "SELECT MIN(nextFire) FROM scheduleTargets").map { Date(timeIntervalSince1970: $0) }
        }
    }

    /// Per collection, its earliest next fire time over every schedule that targets it.
    public func nextRuns() throws -> [String: Date] {
        try read { db in
            var out: [String: Date] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT target, MIN(nextFire) AS next FROM scheduleTargets WHERE nextFire IS NOT NULL GROUP BY target") {
                out[row["target"]] = Date(timeIntervalSince1970: row["next"])
            }
            return out
        }
    }

    /// The spec hash of one applied object, or nil when it is not applied.
    public func hash(of key: ObjectKey) throws -> String? {
        try read { db in
            try String.fetchOne(db, sql: "SELECT hash FROM objects WHERE kind = ? AND name = ?",
                                arguments: [key.kind.rawValue, key.name])
        }
    }

    /// The spec hash of every applied object of one kind, by name.
    public func hashes(of kind: Kind) throws -> [String: String] {
        try read { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, hash FROM objects WHERE kind = ?", arguments: [kind.rawValue]) {
                out[row["name"]] = row["hash"]
            }
            return out
        }
    }

    /// Records handled fire times, and moves each timed one's schedule target to its next fire time,
    /// in one transaction.
    public func recordFires(_ fires: [FireRecord]) throws {
        guard !fires.isEmpty else { return }
        try write("recording schedule fires") { db in
            let insert = try db.makeStatement(sql: """
                INSERT INTO fires (schedule, target, fireTime, handledAt, outcome, runId, note) VALUES (?, ?, ?, ?, ?, ?, ?)
                """)
            let move = try db.makeStatement(sql: """
                UPDATE scheduleTargets SET nextFire = ?, lastFire = ?, lastOutcome = ?, lastNote = ?
                WHERE schedule = ? AND target = ?
                """)
            let note = try db.makeStatement(sql: """
                UPDATE scheduleTargets SET lastFire = ?, lastOutcome = ?, lastNote = ? WHERE schedule = ? AND target = ?
                """)
            for fire in fires {
                try insert.execute(arguments: [fire.schedule, fire.target, fire.fireTime.timeIntervalSince1970,
                                               fire.handledAt.timeIntervalSince1970, fire.outcome.rawValue, fire.runId, fire.note])
                if fire.timed {
                    try move.execute(arguments: [fire.nextFire?.timeIntervalSince1970, fire.fireTime.timeIntervalSince1970,
                                                 fire.outcome.rawValue, fire.note, fire.schedule, fire.target])
                } else {
                    try note.execute(arguments: [fire.fireTime.timeIntervalSince1970, fire.outcome.rawValue, fire.note,
                                                 fire.schedule, fire.target])
                }
            }
        }
    }

    /// The newest handled fires, newest first, optionally of one collection.
    public func fires(target: String? = nil, limit: Int = 100) throws -> [FireRecord] {
        try read { db in
            let rows = try target.map {
                try Row.fetchAll(db, sql: "SELECT * FROM fires WHERE target = ? ORDER BY id DESC LIMIT ?", arguments: [$0, limit])
            } ?? Row.fetchAll(db, sql: "SELECT * FROM fires ORDER BY id DESC LIMIT ?", arguments: [limit])
            return try rows.map { row in
                let text: String = row["outcome"]
                guard let outcome = FireRecord.Outcome(rawValue: text) else {
                    // Never read as something it is not: a newer version wrote it, or the store is damaged.
                    throw StateError("the fire of schedule \(row["schedule"] as String) at \(row["fireTime"] as Double) in \(path) "
                        + "has the unknown outcome '\(text)'; was it written by a newer syncwright?")
                }
                return FireRecord(schedule: row["schedule"], target: row["target"],
                                  fireTime: Date(timeIntervalSince1970: row["fireTime"]),
                                  handledAt: Date(timeIntervalSince1970: row["handledAt"]),
                                  outcome: outcome, runId: row["runId"], note: row["note"], nextFire: nil)
            }
        }
    }

    /// Whether the outbox already holds a report of `kind` about `subject`.
    public func hasReport(kind: String, subject: String) throws -> Bool {
        try read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM outbox WHERE kind = ? AND subject = ?)",
                              arguments: [kind, subject]) ?? false
        }
    }

    /// Queues a report that belongs to no run or apply (a rejected revision).
    public func enqueueReport(kind: String, subject: String, publication: String, at date: Date = Date()) throws {
        try write("queueing a report") { db in
            try Self.enqueue(db, kind: kind, subject: subject, publication: publication, at: date)
        }
    }
}

// MARK: Workflow requests

/// A workflow request as stored: indexed columns, the request document (JSON, its schema belongs
/// to the reports module), and the page to publish for this version of it.
public struct StoredRequest: Sendable, Equatable {
    public let id: String
    public let status: String
    public let job: String
    public let collection: String
    public let requestedAt: Date
    public let document: String
    /// Queued in the outbox with the request, in the same transaction.
    public let publication: String?

    public init(id: String, status: String, job: String, collection: String, requestedAt: Date, document: String,
                publication: String?) {
        self.id = id
        self.status = status
        self.job = job
        self.collection = collection
        self.requestedAt = requestedAt
        self.document = document
        self.publication = publication
    }
}

extension StateStore {
    static func registerRequestMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5: workflow requests") { db in
            try db.execute(sql: """
                CREATE TABLE requests (
                    id TEXT PRIMARY KEY,
                    status TEXT NOT NULL,              -- pending | approved | denied | expired | executed
                    job TEXT NOT NULL,
                    collection TEXT NOT NULL,
                    requestedAt DOUBLE NOT NULL,
                    document TEXT NOT NULL
                );
                CREATE INDEX requests_by_status ON requests(status, id);
                """)
        }
    }

    static func save(_ db: Database, _ requests: [StoredRequest], at date: Date) throws {
        guard !requests.isEmpty else { return }
        let upsert = try db.makeStatement(sql: """
            INSERT INTO requests (id, status, job, collection, requestedAt, document) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET status = excluded.status, document = excluded.document
            """)
        for request in requests {
            try upsert.execute(arguments: [request.id, request.status, request.job, request.collection,
                                           request.requestedAt.timeIntervalSince1970, request.document])
            if let publication = request.publication {
                try enqueue(db, kind: "request", subject: request.id, publication: publication, at: date)
            }
        }
    }

    /// Saves requests and queues their pages, in one transaction.
    public func save(requests: [StoredRequest], at date: Date = Date()) throws {
        try write("saving workflow requests") { db in try Self.save(db, requests, at: date) }
    }

    /// Request documents (JSON), oldest first; only those in `statuses` when given.
    public func requests(statuses: Set<String>? = nil) throws -> [String] {
        try read { db in
            guard let statuses else {
                return try String.fetchAll(db, sql: "SELECT document FROM requests ORDER BY requestedAt, id")
            }
            let marks = Array(repeating: "?", count: statuses.count).joined(separator: ", ")
            return try String.fetchAll(db, sql: "SELECT document FROM requests WHERE status IN (\(marks)) ORDER BY requestedAt, id",
                                       arguments: StatementArguments(statuses.sorted()))
        }
    }

    /// One request's document, or nil.
    public func request(_ id: String) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT document FROM requests WHERE id = ?", arguments: [id]) }
    }
}
