import Foundation
import GRDB

/// A row of `fires`: one fire time the reconciler handled.
struct FireRow: StoredRow {
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

    /// Written by hand, not through `Encodable`, as a pass records a row per fire.
    func encode(to container: inout PersistenceContainer) {
        container["id"] = id
        container["schedule"] = schedule
        container["target"] = target
        container["fireTime"] = fireTime.timeIntervalSince1970
        container["handledAt"] = handledAt.timeIntervalSince1970
        container["outcome"] = outcome.rawValue
        container["runId"] = runId
        container["note"] = note
    }

    var fire: FireRecord {
        FireRecord(schedule: schedule, target: target, fireTime: fireTime, handledAt: handledAt, outcome: outcome,
                   runId: runId, note: note, nextFire: nil)
    }
}

extension SQLiteStateStore {
    public func recordFires(_ fires: [FireRecord]) throws {
        guard !fires.isEmpty else { return }
        try write("recording schedule fires") { db in
            let move = try db.cachedStatement(sql: """
                UPDATE scheduleTargets SET nextFire = ?, lastFire = ?, lastOutcome = ?, lastNote = ?
                WHERE schedule = ? AND target = ?
                """)
            let note = try db.cachedStatement(sql: """
                UPDATE scheduleTargets SET lastFire = ?, lastOutcome = ?, lastNote = ? WHERE schedule = ? AND target = ?
                """)
            for fire in fires {
                try FireRow(fire).insert(db)
                let last: StatementArguments = [fire.fireTime.timeIntervalSince1970, fire.outcome.rawValue, fire.note,
                                                fire.schedule, fire.target]
                if fire.timed {
                    try move.execute(arguments: [fire.nextFire?.timeIntervalSince1970] + last)
                } else {
                    try note.execute(arguments: last)
                }
            }
        }
    }

    public func fires(target: String? = nil, limit: Int = 100) throws -> [FireRecord] {
        try read("the schedules' fires") { db in
            var request = FireRow.order(Column("id").desc).limit(limit)
            if let target { request = request.filter(Column("target") == target) }
            return try request.fetchAll(db).map(\.fire)
        }
    }
}
