import Foundation
import Reports

/// Runs under way and recorded, the report outbox and the run queue on PostgreSQL.
extension PostgresStateStore {
    // MARK: Runs

    public func begin(_ run: RunInProgress) throws {
        let jobs = try RunInProgressRow.json(run.finishedJobs)
        try write("recording that run \(run.id) started") { db, member in
            try db.execute("""
                INSERT INTO runsInProgress (id, collection, trigger, revision, startedAt, pid, job, finishedJobs, owner)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                """, [run.id, run.collection, run.trigger.rawValue, run.revision, run.startedAt, run.pid, run.job, jobs, member])
        }
    }

    public func progress(run id: String, job: String?, finishedJobs: [RunReport.Job]) throws {
        let jobs = try RunInProgressRow.json(finishedJobs)
        try write("recording the progress of run \(id)") { db in
            try db.execute("UPDATE runsInProgress SET job = $1, finishedJobs = $2 WHERE id = $3", [job, jobs, id])
        }
    }

    public func runsInProgress() throws -> [RunInProgress] {
        try read("the runs in progress") { db in
            try db.execute("SELECT * FROM runsInProgress ORDER BY startedAt, id").map(Self.runInProgress)
        }
    }

    static func runInProgress(_ row: PGRow) throws -> RunInProgress {
        let id = try row.text("id")
        return RunInProgress(
            id: id, collection: try row.text("collection"), trigger: try row.decode(RunTrigger.self, "trigger", of: "run \(id)"),
            revision: try row.text("revision"), startedAt: try row.date("startedAt"), pid: try row.int("pid"),
            job: row.optional("job"),
            finishedJobs: try JSONDecoder().decode([RunReport.Job].self, from: Data(try row.text("finishedJobs").utf8)))
    }

    public func forgetRunInProgress(_ id: String) throws {
        try write("forgetting run \(id)") { db in try db.execute("DELETE FROM runsInProgress WHERE id = $1", [id]) }
    }

    public func record(_ run: RunReport, logs: [String: String], page: Publication?, requests: [Publishable<ApprovalRequest>],
                       notifications: [QueuedNotification], notificationState change: NotificationStateChange?) throws {
        let report = run.json(), pageJSON = page?.json()
        try write("recording run \(run.runId)") { db in
            if let change { try apply(change, db) }
            try Self.save(db, requests, at: run.finishedAt)
            try db.execute("DELETE FROM runsInProgress WHERE id = $1", [run.runId])
            try db.execute("""
                INSERT INTO runs (id, collection, trigger, revision, status, startedAt, finishedAt, report)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                """, [run.runId, run.collection, run.trigger.rawValue, run.revision, run.status.rawValue, run.startedAt,
                      run.finishedAt, report])
            if !run.jobs.isEmpty {
                try db.execute("""
                    INSERT INTO jobRuns (runId, position, job, status, log)
                    SELECT $1, position - 1, job, status, log
                    FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS j(job, status, log, position)
                    """, [run.runId, PGTextArray(run.jobs.map(\.name)), PGTextArray(run.jobs.map(\.status.rawValue)),
                          PGTextArray(run.jobs.map { logs[$0.name] ?? "" })])
            }
            if let pageJSON { try Self.enqueue(db, json: pageJSON, kind: .run, subject: run.runId, at: run.finishedAt) }
            try Self.insert(db, notifications)
        }
    }

    private func reports(_ what: @autoclosure () -> String, _ sql: String, _ parameters: [(any PGValue)?]) throws -> [RunReport] {
        let rows = try read(what()) { db in try db.execute(sql, parameters).map { (try $0.text("id"), try $0.text("report")) } }
        return try rows.map { id, json throws(StateError) in
            do { return try RunReport.decode(json) } catch {
                throw .unreadable(location: location, what: "the report of run \(id)", reason: "\(error)")
            }
        }
    }

    public func runReports(collection: String?, limit: Int) throws -> [RunReport] {
        try reports("run reports", """
            SELECT id, report FROM runs WHERE $1::text IS NULL OR collection = $1 ORDER BY startedAt DESC, id DESC LIMIT $2
            """, [collection, limit])
    }

    public func runReport(id: String) throws -> RunReport? {
        // The exact id, else the only id it begins: a range over the key, so that it is indexed.
        let found = try reports("run \(id)", """
            SELECT id, report FROM runs WHERE id = $1
            UNION ALL (SELECT id, report FROM runs WHERE id > $1 AND id < $1 || chr(65535)
                       AND NOT EXISTS (SELECT 1 FROM runs WHERE id = $1) ORDER BY id LIMIT 2)
            """, [id])
        return found.count == 1 ? found[0] : nil
    }

    public func runIDTaken(_ id: String) throws -> Bool {
        try read("whether run id \(id) is taken") { db in
            try db.execute("""
                SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1) OR EXISTS (SELECT 1 FROM runsInProgress WHERE id = $1) AS taken
                """, [id])[0].bool("taken")
        }
    }

    public func jobLog(run: String, job: String) throws -> String? {
        try read("the log of job \(job) in run \(run)") { db in
            try db.execute("SELECT log FROM jobRuns WHERE runId = $1 AND job = $2 LIMIT 1", [run, job]).first?.text("log")
        }
    }

    public func collectionCounters() throws -> [String: RunCounters] {
        try read("how often each collection ran") { db in
            var out: [String: RunCounters] = [:]
            for row in try db.execute("""
                SELECT collection, COUNT(*) AS timesRun, MAX(startedAt) AS lastRun,
                       (SELECT status FROM runs r2 WHERE r2.collection = runs.collection
                        ORDER BY startedAt DESC, id DESC LIMIT 1) AS lastOutcome
                FROM runs GROUP BY collection
                """) {
                let collection = try row.text("collection")
                out[collection] = RunCounters(
                    timesRun: try row.int("timesRun"), lastRun: try row.date("lastRun"),
                    lastOutcome: try row.decode(RunStatus.self, "lastOutcome", of: "the last run of collection \(collection)"))
            }
            return out
        }
    }

    // MARK: The report outbox

    /// Queues a page, encoded (as JSON) before the transaction that calls this began.
    static func enqueue(_ db: PGConnection, json: String, kind: OutboxItem.Kind, subject: String, at date: Date) throws {
        try db.execute("INSERT INTO outbox (kind, subject, createdAt, publication) VALUES ($1, $2, $3, $4)",
                       [kind.rawValue, subject, date, json])
    }

    public func unpublished(limit: Int) throws -> [OutboxItem] {
        try read("the reports waiting to be published") { db in
            try db.execute("SELECT * FROM outbox WHERE publishedAt IS NULL ORDER BY id LIMIT $1", [limit]).map { row in
                let id = try row.int64("id")
                return OutboxItem(id: id, kind: try row.decode(OutboxItem.Kind.self, "kind", of: "report \(id) of the outbox"),
                                  subject: try row.text("subject"), createdAt: try row.date("createdAt"),
                                  publication: row.optional("publication") ?? "", attempts: try row.int("attempts"),
                                  lastError: row.optional("lastError"))
            }
        }
    }

    public func markPublished(_ commits: [Int64: String], at date: Date) throws {
        guard !commits.isEmpty else { return }
        let ids = commits.keys.sorted()
        try write("recording published reports") { db in
            try db.execute("""
                UPDATE outbox SET publishedAt = $1, commitId = c.commit, publication = NULL, lastError = NULL
                FROM unnest($2::bigint[], $3::text[]) AS c(id, commit) WHERE outbox.id = c.id
                """, [date, PGTextArray(ids.map(String.init)), PGTextArray(ids.map { commits[$0] })])
        }
    }

    public func markAttempt(_ ids: [Int64], error: String) throws {
        try write("recording a failed publish") { db in
            try db.execute("UPDATE outbox SET attempts = attempts + 1, lastError = $1 WHERE id = ANY($2::bigint[])",
                           [error, PGTextArray(ids.map(String.init))])
        }
    }

    public func publishedCommit(of subject: String) throws -> String? {
        try read("the commit that holds \(subject)") { db in
            try db.execute("SELECT commitId FROM outbox WHERE subject = $1 AND publishedAt IS NOT NULL ORDER BY id DESC LIMIT 1",
                           [subject]).first?.optional("commitId")
        }
    }

    public func hasReport(kind: OutboxItem.Kind, subject: String) throws -> Bool {
        try read("whether a report of \(subject) is queued") { db in
            try db.execute("SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = $1 AND subject = $2) AS queued",
                           [kind.rawValue, subject])[0].bool("queued")
        }
    }

    public func enqueue(_ page: Publication, kind: OutboxItem.Kind, subject: String, at date: Date) throws {
        let json = page.json()
        try write("queueing the report of \(subject)") { db in try Self.enqueue(db, json: json, kind: kind, subject: subject, at: date) }
    }

    // MARK: The run queue

    private static func runRequest(_ row: PGRow) throws -> RunRequest {
        let id = try row.text("id")
        var request = RunRequest(
            id: id, collection: try row.text("collection"), runId: try row.text("runId"), requestedAt: try row.date("requestedAt"),
            requestedBy: try row.text("requestedBy"), preview: try row.bool("preview"), previewLines: try row.int("previewLines"),
            status: try row.decode(RunRequest.Status.self, "status", of: "run request \(id)"), progress: row.optional("progress"),
            error: row.optional("error"), result: row.optional("result"))
        request.overrideWindow = try row.bool("overrideWindow")
        return request
    }

    public func queue(_ request: RunRequest) throws {
        try write("queueing a run of \(request.collection)") { db in
            try db.execute("""
                INSERT INTO runRequests (id, collection, runId, requestedAt, requestedBy, preview, previewLines, overrideWindow,
                                         result, status, progress, error)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                """, [request.id, request.collection, request.runId, request.requestedAt, request.requestedBy, request.preview,
                      request.previewLines, request.overrideWindow, request.result, request.status.rawValue, request.progress,
                      request.error])
        }
    }

    public func runRequest(_ id: String) throws -> RunRequest? {
        try read("run request \(id)") { db in try db.execute("SELECT * FROM runRequests WHERE id = $1", [id]).first.map(Self.runRequest) }
    }

    public func runRequests(status: RunRequest.Status) throws -> [RunRequest] {
        try read("the \(status.rawValue) runs") { db in
            try db.execute("SELECT * FROM runRequests WHERE status = $1 ORDER BY requestedAt, id", [status.rawValue]).map(Self.runRequest)
        }
    }

    public func start(runRequest id: String) throws -> Bool {
        var taken = false
        try write("starting run request \(id)") { db in
            taken = try db.change("UPDATE runRequests SET status = 'started' WHERE id = $1 AND status = 'queued'", [id]) == 1
        }
        return taken
    }

    public func update(runRequest id: String, status: RunRequest.Status?, progress: String?, error: String?, result: String?) throws {
        guard status != nil || progress != nil || error != nil || result != nil else { return }
        try write("updating run request \(id)") { db in
            try db.execute("""
                UPDATE runRequests SET status = COALESCE($2, status), progress = COALESCE($3, progress), error = COALESCE($4, error),
                       result = COALESCE($5, result)
                WHERE id = $1
                """, [id, status?.rawValue, progress, error, result])
        }
    }

    public func forgetEndedRunRequests(before date: Date) throws -> Int {
        var forgotten = 0
        try write("forgetting ended run requests") { db in
            forgotten = try db.change("DELETE FROM runRequests WHERE status IN ('finished', 'failed') AND requestedAt < $1", [date])
        }
        return forgotten
    }
}
