import GRDB

/// The schema, one migration per step. A migration, once released, never changes: a home made by
/// any earlier version opens and is brought up to date; one made by a newer version is refused.
enum Migrations {
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
        migrator.registerMigration("v6: runs in progress") { db in
            try db.execute(sql: """
                CREATE TABLE runsInProgress (
                    id TEXT PRIMARY KEY,
                    collection TEXT NOT NULL,
                    trigger TEXT NOT NULL,
                    revision TEXT NOT NULL,
                    startedAt DOUBLE NOT NULL,
                    pid INTEGER NOT NULL,
                    job TEXT,
                    finishedJobs TEXT NOT NULL DEFAULT '[]'
                );
                """)
        }
        migrator.registerMigration("v7: rejections") { db in
            try db.execute(sql: """
                CREATE TABLE rejections (
                    revision TEXT PRIMARY KEY,
                    rejectedAt DOUBLE NOT NULL,
                    problems INTEGER NOT NULL,
                    page TEXT NOT NULL,
                    running TEXT
                );
                """)
        }
        migrator.registerMigration("v8: run requests") { db in
            try db.execute(sql: """
                CREATE TABLE runRequests (
                    id TEXT PRIMARY KEY,
                    collection TEXT NOT NULL,
                    runId TEXT NOT NULL,
                    requestedAt DOUBLE NOT NULL,
                    requestedBy TEXT NOT NULL,
                    preview INTEGER NOT NULL DEFAULT 0,
                    previewLines INTEGER NOT NULL DEFAULT 10,
                    result TEXT,
                    status TEXT NOT NULL,            -- queued | started | finished | failed
                    progress TEXT,
                    error TEXT
                );
                CREATE INDEX runRequests_by_status ON runRequests(status, requestedAt);
                """)
        }
        migrator.registerMigration("v9: notifications") { db in
            try db.execute(sql: """
                CREATE TABLE notifications (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    runId TEXT NOT NULL,
                    collection TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    recipient TEXT,
                    dedupeKey TEXT NOT NULL,
                    status TEXT NOT NULL,            -- pending | delivered | suppressed | undelivered
                    message TEXT NOT NULL,           -- JSON: subject, text, html, payload, key
                    createdAt DOUBLE NOT NULL,
                    nextAttemptAt DOUBLE,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    lastError TEXT,
                    finishedAt DOUBLE
                );
                CREATE INDEX notifications_due ON notifications(status, nextAttemptAt);
                CREATE INDEX notifications_by_key ON notifications(dedupeKey, createdAt);
                CREATE INDEX notifications_by_run ON notifications(runId);
                CREATE INDEX notifications_by_collection ON notifications(collection, id);
                """)
        }
        migrator.registerMigration("v10: notification state per collection") { db in
            // Runs held back as repeats are counted in one row per collection, not a row each;
            // that row is all a run's decision reads. No query looks rows up by dedupe key.
            try db.execute(sql: """
                CREATE TABLE notificationState (
                    collection TEXT PRIMARY KEY,
                    dedupeKey TEXT NOT NULL,         -- of the last notification sent
                    sentAt DOUBLE NOT NULL,
                    heldBack INTEGER NOT NULL,       -- runs held back as its repeats since
                    version INTEGER NOT NULL
                ) WITHOUT ROWID;
                INSERT INTO notificationState (collection, dedupeKey, sentAt, heldBack, version)
                    SELECT n.collection, n.dedupeKey, n.createdAt,
                           (SELECT COUNT(DISTINCT s.runId) FROM notifications s
                             WHERE s.collection = n.collection AND s.status = 'suppressed' AND s.id > n.id), 1
                    FROM notifications n
                    WHERE n.id IN (SELECT MAX(id) FROM notifications
                                   WHERE status != 'suppressed' AND dedupeKey NOT LIKE 'request:%' GROUP BY collection);
                DELETE FROM notifications WHERE status = 'suppressed';
                DROP INDEX notifications_by_key;
                """)
        }
        migrator.registerMigration("v11: run requests that override sync windows") { db in
            try db.execute(sql: "ALTER TABLE runRequests ADD COLUMN overrideWindow BOOLEAN NOT NULL DEFAULT 0")
        }
        return migrator
    }
}
