import Foundation
import GRDB

/// A row of `fires`: one fire time the reconciler handled.
struct FireRow: OftenWritten {
    static let databaseTableName = "fires"
    var id: Int64?
    var schedule: String
    var target: String
    var fireTime: Date
    var handledAt: Date
    var outcome: FireRecord.Outcome
    var runId: String?
    var note: String?

    init(_ fire: FireRecord) {
        schedule = fire.schedule
        target = fire.target
        fireTime = fire.fireTime
        handledAt = fire.handledAt
        outcome = fire.outcome
        runId = fire.runId
        note = fire.note
    }

    /// `id` is left to SQLite.
    static let columns = ["schedule", "target", "fireTime", "handledAt", "outcome", "runId", "note"]
    static let insertSQL = makeInsertSQL()
    func values() -> [(any DatabaseValueConvertible)?] {
        [schedule, target, fireTime.timeIntervalSince1970, handledAt.timeIntervalSince1970, outcome.rawValue, runId, note]
    }

    var fire: FireRecord {
        FireRecord(schedule: schedule, target: target, fireTime: fireTime, handledAt: handledAt, outcome: outcome,
                   runId: runId, note: note, nextFire: nil)
    }
}

extension SQLiteStateStore {
    /// One process writes a SQLite store at a time (the home's claim): every fire is recorded.
    public func recordFires(_ fires: [FireRecord]) throws -> [FireRecord] {
        guard !fires.isEmpty else { return [] }
        try write("recording schedule fires") { db in
            let move = try db.cachedStatement(sql: """
                UPDATE scheduleTargets SET nextFire = ?, lastFire = ?, lastOutcome = ?, lastNote = ?
                WHERE schedule = ? AND target = ?
                """)
            let note = try db.cachedStatement(sql: """
                UPDATE scheduleTargets SET lastFire = ?, lastOutcome = ?, lastNote = ? WHERE schedule = ? AND target = ?
                """)
            for fire in fires {
                try FireRow(fire).insertCached(db)
                let last: StatementArguments = [fire.fireTime.timeIntervalSince1970, fire.outcome.rawValue, fire.note,
                                                fire.schedule, fire.target]
                if fire.timed {
                    try move.execute(arguments: [fire.nextFire?.timeIntervalSince1970] + last)
                } else {
                    try note.execute(arguments: last)
                }
            }
        }
        return fires
    }

    public func fires(target: String? = nil, limit: Int = 100) throws -> [FireRecord] {
        try read("the schedules' fires") { db in
            var request = FireRow.order(Column("id").desc).limit(limit)
            if let target { request = request.filter(Column("target") == target) }
            return try request.fetchAll(db).map(\.fire)
        }
    }
}
