import Foundation

/// The PostgreSQL schema, one migration per step, as for SQLite (`Migrations`): a released step
/// never changes; a store with a step this version does not know is refused.
///
/// The tables and columns are SQLite's. Dates are seconds since 1970 (`double precision`), and
/// the text columns that are sorted or compared by range use the "C" collation, so that they
/// sort byte by byte as in SQLite, whatever the database's locale.
enum PostgresSchema {
    static let steps: [(name: String, sql: String)] = [
        ("v1: the state store", """
            CREATE TABLE applies (
                id BIGSERIAL PRIMARY KEY,
                revision TEXT NOT NULL,
                appliedAt DOUBLE PRECISION NOT NULL,
                created INTEGER NOT NULL,
                updated INTEGER NOT NULL,
                deleted INTEGER NOT NULL
            );
            CREATE TABLE objects (
                kind TEXT COLLATE "C" NOT NULL,
                name TEXT COLLATE "C" NOT NULL,
                file TEXT COLLATE "C" NOT NULL,
                spec TEXT NOT NULL,
                raw TEXT,
                hash TEXT NOT NULL,
                PRIMARY KEY (kind, name)
            );
            CREATE INDEX objects_by_file ON objects(file);
            CREATE TABLE refs (
                kind TEXT COLLATE "C" NOT NULL,
                name TEXT COLLATE "C" NOT NULL,
                target TEXT COLLATE "C" NOT NULL
            );
            CREATE INDEX refs_by_target ON refs(target);
            CREATE INDEX refs_by_source ON refs(kind, name);
            CREATE TABLE runs (
                id TEXT COLLATE "C" PRIMARY KEY,
                collection TEXT COLLATE "C" NOT NULL,
                trigger TEXT NOT NULL,
                revision TEXT NOT NULL,
                status TEXT NOT NULL,
                startedAt DOUBLE PRECISION NOT NULL,
                finishedAt DOUBLE PRECISION NOT NULL,
                report TEXT NOT NULL
            );
            CREATE INDEX runs_by_collection ON runs(collection, startedAt);
            CREATE INDEX runs_by_time ON runs(startedAt);
            CREATE TABLE jobRuns (
                runId TEXT COLLATE "C" NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                job TEXT NOT NULL,
                status TEXT NOT NULL,
                log TEXT NOT NULL,
                PRIMARY KEY (runId, position)
            );
            CREATE INDEX jobRuns_by_job ON jobRuns(job);
            CREATE TABLE outbox (
                id BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL,
                subject TEXT NOT NULL,
                createdAt DOUBLE PRECISION NOT NULL,
                publication TEXT,
                publishedAt DOUBLE PRECISION,
                commitId TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                lastError TEXT
            );
            CREATE INDEX outbox_unpublished ON outbox(id) WHERE publishedAt IS NULL;
            CREATE INDEX outbox_by_subject ON outbox(subject);
            CREATE TABLE scheduleTargets (
                schedule TEXT COLLATE "C" NOT NULL,
                target TEXT COLLATE "C" NOT NULL,
                hash TEXT NOT NULL,
                nextFire DOUBLE PRECISION,
                lastFire DOUBLE PRECISION,
                lastOutcome TEXT,
                lastNote TEXT,
                PRIMARY KEY (schedule, target)
            );
            CREATE INDEX scheduleTargets_by_next ON scheduleTargets(nextFire);
            CREATE TABLE fires (
                id BIGSERIAL PRIMARY KEY,
                schedule TEXT NOT NULL,
                target TEXT COLLATE "C" NOT NULL,
                fireTime DOUBLE PRECISION NOT NULL,
                handledAt DOUBLE PRECISION NOT NULL,
                outcome TEXT NOT NULL,
                runId TEXT,
                note TEXT
            );
            CREATE INDEX fires_by_target ON fires(target, id);
            CREATE TABLE requests (
                id TEXT COLLATE "C" PRIMARY KEY,
                status TEXT NOT NULL,
                job TEXT NOT NULL,
                collection TEXT NOT NULL,
                requestedAt DOUBLE PRECISION NOT NULL,
                document TEXT NOT NULL
            );
            CREATE INDEX requests_by_status ON requests(status, id);
            CREATE TABLE runsInProgress (
                id TEXT COLLATE "C" PRIMARY KEY,
                collection TEXT NOT NULL,
                trigger TEXT NOT NULL,
                revision TEXT NOT NULL,
                startedAt DOUBLE PRECISION NOT NULL,
                pid INTEGER NOT NULL,
                job TEXT,
                finishedJobs TEXT NOT NULL DEFAULT '[]'
            );
            CREATE TABLE rejections (
                revision TEXT PRIMARY KEY,
                rejectedAt DOUBLE PRECISION NOT NULL,
                problems INTEGER NOT NULL,
                page TEXT NOT NULL,
                running TEXT
            );
            CREATE TABLE runRequests (
                id TEXT COLLATE "C" PRIMARY KEY,
                collection TEXT NOT NULL,
                runId TEXT NOT NULL,
                requestedAt DOUBLE PRECISION NOT NULL,
                requestedBy TEXT NOT NULL,
                preview BOOLEAN NOT NULL DEFAULT false,
                previewLines INTEGER NOT NULL DEFAULT 10,
                overrideWindow BOOLEAN NOT NULL DEFAULT false,
                result TEXT,
                status TEXT NOT NULL,
                progress TEXT,
                error TEXT
            );
            CREATE INDEX runRequests_by_status ON runRequests(status, requestedAt);
            CREATE TABLE notifications (
                id BIGSERIAL PRIMARY KEY,
                runId TEXT NOT NULL,
                collection TEXT NOT NULL,
                channel TEXT NOT NULL,
                recipient TEXT,
                dedupeKey TEXT NOT NULL,
                status TEXT NOT NULL,
                message TEXT NOT NULL,
                createdAt DOUBLE PRECISION NOT NULL,
                nextAttemptAt DOUBLE PRECISION,
                attempts INTEGER NOT NULL DEFAULT 0,
                lastError TEXT,
                finishedAt DOUBLE PRECISION
            );
            CREATE INDEX notifications_due ON notifications(status, nextAttemptAt);
            CREATE INDEX notifications_by_run ON notifications(runId);
            CREATE TABLE notificationState (
                collection TEXT PRIMARY KEY,
                dedupeKey TEXT NOT NULL,
                sentAt DOUBLE PRECISION NOT NULL,
                heldBack INTEGER NOT NULL,
                version BIGINT NOT NULL
            );
            """),
        ("v2: replicas and the store's lease", """
            CREATE TABLE replicas (
                id TEXT COLLATE "C" PRIMARY KEY,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                command TEXT NOT NULL,
                startedAt DOUBLE PRECISION NOT NULL,
                heartbeatAt DOUBLE PRECISION NOT NULL,
                leaseUntil DOUBLE PRECISION NOT NULL
            );
            CREATE TABLE storeLease (
                id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
                holder TEXT,
                token BIGINT NOT NULL DEFAULT 0,
                leaseUntil DOUBLE PRECISION NOT NULL DEFAULT 0
            );
            INSERT INTO storeLease (id) VALUES (true);
            """),
        ("v3: each fire time is claimed once", """
            CREATE UNIQUE INDEX fires_claimed_once ON fires(schedule, target, fireTime);
            """),
        ("v4: replicas share the work: runs have an owner, destinations a claim", """
            ALTER TABLE runsInProgress ADD COLUMN owner TEXT COLLATE "C";
            CREATE TABLE destinationClaims (
                destination TEXT COLLATE "C" PRIMARY KEY,
                replica TEXT COLLATE "C" NOT NULL,
                run TEXT NOT NULL,
                holder TEXT NOT NULL,
                claimedAt DOUBLE PRECISION NOT NULL
            );
            """),
    ]
}

extension PostgresStateStore {
    /// Brings the schema up to date in one transaction, under a transaction-scoped advisory lock,
    /// so that replicas starting together migrate once. A store with a step this version does
    /// not know (a newer syncwright made it) is refused, and left alone.
    func migrate() throws(StateError) {
        do {
            try write("bringing the schema up to date") { db in
                try db.execute("SELECT pg_advisory_xact_lock(hashtext('syncwright schema'))")
                try db.execute("CREATE TABLE IF NOT EXISTS syncwright_migrations (name TEXT PRIMARY KEY, appliedAt TIMESTAMPTZ NOT NULL DEFAULT now())")
                let done = Set(try db.execute("SELECT name FROM syncwright_migrations").map { try $0.text("name") })
                let known = Set(PostgresSchema.steps.map(\.name))
                if let unknown = done.subtracting(known).sorted().first {
                    throw StateError.cannotOpen(location: location, reason: "it was made by a newer syncwright (its schema has the step "
                                                    + "'\(unknown)', which this version does not know); run that version, or restore a backup")
                }
                for step in PostgresSchema.steps where !done.contains(step.name) {
                    try db.executeScript(step.sql)
                    try db.execute("INSERT INTO syncwright_migrations (name) VALUES ($1)", [step.name])
                }
            }
        } catch let StateError.writeFailed(location, _, reason) {
            throw .cannotOpen(location: location, reason: reason)
        } catch {
            throw error
        }
    }
}
