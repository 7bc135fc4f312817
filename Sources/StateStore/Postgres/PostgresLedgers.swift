import Foundation
import Reports

/// Schedules, notifications and workflow requests on PostgreSQL.
extension PostgresStateStore {
    // MARK: Schedules

    static func write(_ db: PGConnection, _ update: ScheduleStateUpdate) throws {
        if !update.replacing.isEmpty {
            try db.execute("DELETE FROM scheduleTargets WHERE schedule = ANY($1::text[])", [PGTextArray(update.replacing.sorted())])
        }
        for state in update.states {
            try db.execute("""
                INSERT INTO scheduleTargets (schedule, target, hash, nextFire, lastFire, lastOutcome, lastNote)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (schedule, target) DO UPDATE SET hash = excluded.hash, nextFire = excluded.nextFire,
                    lastFire = excluded.lastFire, lastOutcome = excluded.lastOutcome, lastNote = excluded.lastNote
                """, [state.schedule, state.target, state.hash, state.nextFire, state.lastFire, state.lastOutcome?.rawValue,
                      state.lastNote])
        }
    }

    private static func scheduleState(_ row: PGRow) throws -> ScheduleTargetState {
        let schedule = try row.text("schedule"), target = try row.text("target")
        return ScheduleTargetState(
            schedule: schedule, target: target, hash: try row.text("hash"), nextFire: try row.optionalDate("nextFire"),
            lastFire: try row.optionalDate("lastFire"),
            lastOutcome: try row.optional("lastOutcome").map { _ in
                try row.decode(FireRecord.Outcome.self, "lastOutcome", of: "the schedule \(schedule) for \(target)")
            },
            lastNote: row.optional("lastNote"))
    }

    public func updateSchedules(_ update: ScheduleStateUpdate) throws {
        try write("storing schedule fire times") { db in try Self.write(db, update) }
    }

    public func scheduleStates() throws -> [ScheduleTargetState] {
        try read("the schedules' fire times") { db in
            try db.execute("SELECT * FROM scheduleTargets ORDER BY schedule, target").map(Self.scheduleState)
        }
    }

    public func dueSchedules(at date: Date) throws -> [ScheduleTargetState] {
        try read("the schedules due") { db in
            try db.execute("SELECT * FROM scheduleTargets WHERE nextFire <= $1 ORDER BY nextFire, schedule, target", [date])
                .map(Self.scheduleState)
        }
    }

    public func nextFireTime() throws -> Date? {
        try read("the next fire time") { db in try db.execute("SELECT MIN(nextFire) AS next FROM scheduleTargets")[0].optionalDate("next") }
    }

    public func nextRuns() throws -> [String: Date] {
        try read("the collections' next runs") { db in
            var out: [String: Date] = [:]
            for row in try db.execute("SELECT target, MIN(nextFire) AS next FROM scheduleTargets WHERE nextFire IS NOT NULL GROUP BY target") {
                out[try row.text("target")] = try row.date("next")
            }
            return out
        }
    }

    /// Each fire is a claim: the unique index on `(schedule, target, fireTime)` lets a fire time
    /// be recorded once, and a fire another replica recorded first is left out (`ON CONFLICT DO
    /// NOTHING`), with what it would have moved. A pass's fires take three statements, however many.
    public func recordFires(_ fires: [FireRecord]) throws -> [FireRecord] {
        guard !fires.isEmpty else { return [] }
        let texts = { (value: (FireRecord) -> String?) in PGTextArray(fires.map(value)) }
        var claimed: [Int] = []
        try write("recording schedule fires") { db in
            claimed = try db.execute("""
                INSERT INTO fires (schedule, target, fireTime, handledAt, outcome, runId, note)
                SELECT schedule, target, fireTime, handledAt, outcome, runId, note
                FROM unnest($1::text[], $2::text[], $3::double precision[], $4::double precision[], $5::text[], $6::text[], $7::text[])
                     WITH ORDINALITY AS u(schedule, target, fireTime, handledAt, outcome, runId, note, position)
                ORDER BY position
                ON CONFLICT (schedule, target, fireTime) DO NOTHING
                RETURNING (SELECT min(position) FROM unnest($1::text[], $2::text[], $3::double precision[])
                           WITH ORDINALITY AS k(schedule, target, fireTime, position)
                           WHERE k.schedule = fires.schedule AND k.target = fires.target AND k.fireTime = fires.fireTime) AS position
                """, [texts(\.schedule), texts(\.target), texts { $0.fireTime.pgText }, texts { $0.handledAt.pgText },
                      texts(\.outcome.rawValue), texts(\.runId), texts(\.note)]).map { try $0.int("position") }.sorted()
            guard !claimed.isEmpty else { return }
            let mine = claimed.map { fires[$0 - 1] }
            let mineTexts = { (value: (FireRecord) -> String?) in PGTextArray(mine.map(value)) }
            // In the order handled, as one at a time would: each target's last timed fire moves its
            // next fire time, and its last fire of any kind is the one shown.
            let columns = "$1::text[], $2::text[], $3::double precision[], $4::double precision[], $5::text[], $6::text[], $7::boolean[]"
            let rows = "unnest(\(columns)) WITH ORDINALITY AS u(schedule, target, fireTime, nextFire, outcome, note, timed, position)"
            let parameters: [(any PGValue)?] = [mineTexts(\.schedule), mineTexts(\.target), mineTexts { $0.fireTime.pgText },
                                                 mineTexts { $0.nextFire?.pgText }, mineTexts(\.outcome.rawValue), mineTexts(\.note),
                                                 mineTexts { $0.timed.pgText }]
            try db.execute("""
                UPDATE scheduleTargets t SET nextFire = f.nextFire
                FROM (SELECT DISTINCT ON (schedule, target) * FROM \(rows) WHERE timed ORDER BY schedule, target, position DESC) f
                WHERE t.schedule = f.schedule AND t.target = f.target
                """, parameters)
            try db.execute("""
                UPDATE scheduleTargets t SET lastFire = f.fireTime, lastOutcome = f.outcome, lastNote = f.note
                FROM (SELECT DISTINCT ON (schedule, target) * FROM \(rows) ORDER BY schedule, target, position DESC) f
                WHERE t.schedule = f.schedule AND t.target = f.target
                """, parameters)
        }
        return claimed.map { fires[$0 - 1] }
    }

    public func fires(target: String?, limit: Int) throws -> [FireRecord] {
        try read("the schedules' fires") { db in
            try db.execute("SELECT * FROM fires WHERE $1::text IS NULL OR target = $1 ORDER BY id DESC LIMIT $2", [target, limit]).map { row in
                let schedule = try row.text("schedule")
                return FireRecord(schedule: schedule, target: try row.text("target"), fireTime: try row.date("fireTime"),
                                  handledAt: try row.date("handledAt"),
                                  outcome: try row.decode(FireRecord.Outcome.self, "outcome", of: "a fire of schedule \(schedule)"),
                                  runId: row.optional("runId"), note: row.optional("note"), nextFire: nil)
            }
        }
    }

    // MARK: Notifications

    static func insert(_ db: PGConnection, _ notifications: [QueuedNotification]) throws {
        for n in notifications {
            let message = String(decoding: try JSONEncoder().encode(n.message), as: UTF8.self)
            try db.execute("""
                INSERT INTO notifications (runId, collection, channel, recipient, dedupeKey, status, message, createdAt, nextAttemptAt,
                                           attempts, lastError, finishedAt)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                """, [n.runId, n.collection, n.channel, n.recipient, n.dedupeKey, n.status.rawValue, message, n.createdAt,
                      n.nextAttemptAt, n.attempts, n.lastError, n.finishedAt])
        }
    }

    private func notifications(_ what: @autoclosure () -> String, _ sql: String, _ parameters: [(any PGValue)?])
        throws -> [QueuedNotification] {
        try read(what()) { db in
            try db.execute(sql, parameters).map { row in
                let id = try row.int64("id"), runId = try row.text("runId")
                return QueuedNotification(
                    id: id, runId: runId, collection: try row.text("collection"), channel: try row.text("channel"),
                    recipient: row.optional("recipient"), dedupeKey: try row.text("dedupeKey"),
                    status: try row.decode(QueuedNotification.Status.self, "status", of: "notification \(id) of run \(runId)"),
                    message: try JSONDecoder().decode(NotificationMessage.self, from: Data(try row.text("message").utf8)),
                    createdAt: try row.date("createdAt"), nextAttemptAt: try row.optionalDate("nextAttemptAt"),
                    attempts: try row.int("attempts"), lastError: row.optional("lastError"), finishedAt: try row.optionalDate("finishedAt"))
            }
        }
    }

    public func dueNotifications(at date: Date, limit: Int) throws -> [QueuedNotification] {
        try notifications("the notifications due", """
            SELECT * FROM notifications WHERE status = 'pending' AND nextAttemptAt <= $1 ORDER BY id LIMIT $2
            """, [date, limit])
    }

    public func markDelivered(_ id: Int64, at date: Date) throws {
        try write("recording notification \(id) as delivered") { db in
            try db.execute("""
                UPDATE notifications SET status = 'delivered', finishedAt = $1, attempts = attempts + 1, nextAttemptAt = NULL WHERE id = $2
                """, [date, id])
        }
    }

    public func markFailed(_ id: Int64, error: String, next: Date?, at date: Date) throws {
        try write("recording a failed attempt of notification \(id)") { db in
            try db.execute("""
                UPDATE notifications SET attempts = attempts + 1, lastError = $1, nextAttemptAt = $2,
                       status = CASE WHEN $2::double precision IS NULL THEN 'undelivered' ELSE status END,
                       finishedAt = CASE WHEN $2::double precision IS NULL THEN $3 ELSE finishedAt END
                WHERE id = $4
                """, [error, next, date, id])
        }
    }

    private static func notificationState(_ row: PGRow) throws -> NotificationState {
        NotificationState(dedupeKey: try row.text("dedupeKey"), sentAt: try row.date("sentAt"), heldBack: try row.int("heldBack"),
                          version: try row.int64("version"))
    }

    public func notificationStates() throws -> [String: NotificationState] {
        try read("the notification states") { db in
            var out: [String: NotificationState] = [:]
            for row in try db.execute("SELECT * FROM notificationState") { out[try row.text("collection")] = try Self.notificationState(row) }
            return out
        }
    }

    /// Applies `change` in the run's transaction, or throws `notificationStateMoved` when the
    /// stored state is not the one the run decided on: one statement, whose count is the check.
    func apply(_ change: NotificationStateChange, _ db: PGConnection) throws {
        let next = change.result
        let changed: Int
        if let decided = change.decidedOn {
            changed = try db.change("""
                UPDATE notificationState SET dedupeKey = $1, sentAt = $2, heldBack = $3, version = $4 WHERE collection = $5 AND version = $6
                """, [next.dedupeKey, next.sentAt, next.heldBack, next.version, change.collection, decided.version])
        } else {
            changed = try db.change("""
                INSERT INTO notificationState (collection, dedupeKey, sentAt, heldBack, version) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (collection) DO NOTHING
                """, [change.collection, next.dedupeKey, next.sentAt, next.heldBack, next.version])
        }
        guard changed == 1 else {
            let current = try db.execute("SELECT * FROM notificationState WHERE collection = $1", [change.collection]).first
                .map(Self.notificationState)
            throw StateError.notificationStateMoved(collection: change.collection, current: current)
        }
    }

    public func notifications(ofRun runId: String) throws -> [QueuedNotification] {
        try notifications("the notifications of run \(runId)", "SELECT * FROM notifications WHERE runId = $1 ORDER BY id", [runId])
    }

    public func troubledNotifications(limit: Int) throws -> [QueuedNotification] {
        try notifications("the notifications not delivered", """
            SELECT * FROM notifications WHERE status = 'undelivered' OR (status = 'pending' AND attempts > 0) ORDER BY id DESC LIMIT $1
            """, [limit])
    }

    // MARK: Workflow

    static func save(_ db: PGConnection, _ requests: [Publishable<ApprovalRequest>], at date: Date) throws {
        for request in requests {
            let value = request.value
            try db.execute("""
                INSERT INTO requests (id, status, job, collection, requestedAt, document) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (id) DO UPDATE SET status = excluded.status, job = excluded.job, collection = excluded.collection,
                    requestedAt = excluded.requestedAt, document = excluded.document
                """, [value.id, value.status.rawValue, value.job, value.collection, value.requestedAt, value.json()])
            if let page = request.page { try enqueue(db, json: page.json(), kind: .request, subject: value.id, at: date) }
        }
    }

    public func save(requests: [Publishable<ApprovalRequest>], at date: Date, notifications: [QueuedNotification]) throws {
        guard !requests.isEmpty else { return }
        try write("saving workflow requests") { db in
            try Self.save(db, requests, at: date)
            try Self.insert(db, notifications)
        }
    }

    /// A request's id and document, once its status column reads as a known status.
    private static func requestDocument(_ row: PGRow) throws -> (String, String) {
        let id = try row.text("id")
        _ = try row.decode(ApprovalRequest.Status.self, "status", of: "request \(id)")
        return (id, try row.text("document"))
    }

    private func decodedRequests(_ rows: [(String, String)]) throws(StateError) -> [ApprovalRequest] {
        try rows.map { id, document throws(StateError) in
            do { return try ApprovalRequest.decode(document) } catch {
                throw .unreadable(location: location, what: "request \(id)", reason: "\(error)")
            }
        }
    }

    public func requests(statuses: Set<ApprovalRequest.Status>?) throws -> [ApprovalRequest] {
        let rows = try read("workflow requests") { db in
            try db.execute("""
                SELECT id, status, document FROM requests WHERE $1::text[] IS NULL OR status = ANY($1::text[]) ORDER BY requestedAt, id
                """, [statuses.map { PGTextArray($0.map(\.rawValue).sorted()) }]).map(Self.requestDocument)
        }
        return try decodedRequests(rows)
    }

    public func request(_ id: String) throws -> ApprovalRequest? {
        let rows = try read("request \(id)") { db in
            try db.execute("SELECT id, status, document FROM requests WHERE id = $1", [id]).map(Self.requestDocument)
        }
        return try decodedRequests(rows).first
    }

    public func save(_ rejection: StoredRejection, page: Publication) throws {
        let json = page.json()
        try write("recording the rejection of \(rejection.revision)") { db in
            let added = try db.change("""
                INSERT INTO rejections (revision, rejectedAt, problems, page, running) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (revision) DO NOTHING
                """, [rejection.revision, rejection.rejectedAt, rejection.problems, rejection.page, rejection.running])
            if added == 1 { try Self.enqueue(db, json: json, kind: .rejected, subject: rejection.revision, at: rejection.rejectedAt) }
        }
    }

    public func standingRejection() throws -> StoredRejection? {
        try read("the standing rejection") { db in
            try db.execute("""
                SELECT r.* FROM (SELECT * FROM rejections ORDER BY rejectedAt DESC LIMIT 1) r
                WHERE NOT EXISTS (SELECT 1 FROM (SELECT appliedAt FROM applies ORDER BY id DESC LIMIT 1) a WHERE a.appliedAt > r.rejectedAt)
                """).first.map { row in
                StoredRejection(revision: try row.text("revision"), rejectedAt: try row.date("rejectedAt"), problems: try row.int("problems"),
                                page: try row.text("page"), running: row.optional("running"))
            }
        }
    }
}
