import Foundation
import GRDB

/// A row of `scheduleTargets`: where one schedule stands for one collection it targets.
struct ScheduleTargetRow: StoredRow {
    static let databaseTableName = "scheduleTargets"
    var schedule: String
    var target: String
    var hash: String
    /// NULL: never fires again.
    var nextFire: Date?
    var lastFire: Date?
    var lastOutcome: FireRecord.Outcome?
    var lastNote: String?

    init(_ state: ScheduleTargetState) {
        schedule = state.schedule
        target = state.target
        hash = state.hash
        nextFire = state.nextFire
        lastFire = state.lastFire
        lastOutcome = state.lastOutcome
        lastNote = state.lastNote
    }

    /// Read by hand, not through `Decodable`: each pass reads the due rows.
    init(row: Row) throws {
        schedule = row["schedule"]
        target = row["target"]
        hash = row["hash"]
        nextFire = (row["nextFire"] as Double?).map { Date(timeIntervalSince1970: $0) }
        lastFire = (row["lastFire"] as Double?).map { Date(timeIntervalSince1970: $0) }
        lastOutcome = try (row["lastOutcome"] as String?).map { _ in
            try Self.decode(FireRecord.Outcome.self, row, "lastOutcome", of: "the schedule \(row["schedule"] as String) for \(row["target"] as String)")
        }
        lastNote = row["lastNote"]
    }

    var state: ScheduleTargetState {
        ScheduleTargetState(schedule: schedule, target: target, hash: hash, nextFire: nextFire, lastFire: lastFire,
                            lastOutcome: lastOutcome, lastNote: lastNote)
    }
}

extension SQLiteStateStore {
    static func write(_ db: Database, _ update: ScheduleStateUpdate) throws {
        for name in update.replacing { try ScheduleTargetRow.filter(Column("schedule") == name).deleteAll(db) }
        for state in update.states { try ScheduleTargetRow(state).upsert(db) }
    }

    public func updateSchedules(_ update: ScheduleStateUpdate) throws {
        try write("storing schedule fire times") { db in try Self.write(db, update) }
    }

    public func scheduleStates() throws -> [ScheduleTargetState] {
        try read("the schedules' fire times") { db in
            try ScheduleTargetRow.order(Column("schedule"), Column("target")).fetchAll(db).map(\.state)
        }
    }

    public func dueSchedules(at date: Date) throws -> [ScheduleTargetState] {
        try read("the schedules due") { db in
            try ScheduleTargetRow.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM scheduleTargets WHERE nextFire <= ? ORDER BY nextFire, schedule, target
                """), arguments: [date.timeIntervalSince1970]).map(\.state)
        }
    }

    public func nextFireTime() throws -> Date? {
        try read("the next fire time") { db in
            try Double.fetchOne(db, ScheduleTargetRow.select(min(Column("nextFire")))).map { Date(timeIntervalSince1970: $0) }
        }
    }

    public func nextRuns() throws -> [String: Date] {
        try read("the collections' next runs") { db in
            var out: [String: Date] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT target, MIN(nextFire) AS next FROM scheduleTargets WHERE nextFire IS NOT NULL GROUP BY target") {
                out[row["target"]] = Date(timeIntervalSince1970: row["next"])
            }
            return out
        }
    }
}
