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

    var fire: FireRecord {
        FireRecord(schedule: schedule, target: target, fireTime: fireTime, handledAt: handledAt, outcome: outcome,
                   runId: runId, note: note, nextFire: nil)
    }
}

extension SQLiteStateStore {
    public func recordFires(_ fires: [FireRecord]) throws {
        guard !fires.isEmpty else { return }
        try write("recording schedule fires") { db in
            for fire in fires {
                try FireRow(fire).insert(db)
                let target = ScheduleTargetRow.filter(schedule: fire.schedule, target: fire.target)
                var changes = [Column("lastFire").set(to: fire.fireTime.timeIntervalSince1970),
                               Column("lastOutcome").set(to: fire.outcome.rawValue), Column("lastNote").set(to: fire.note)]
                if fire.timed { changes.append(Column("nextFire").set(to: fire.nextFire?.timeIntervalSince1970)) }
                try target.updateAll(db, changes)
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
