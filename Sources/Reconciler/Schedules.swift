import Foundation
import Manifests
import Planner
import Scheduling
import StateStore

extension Workspace {
    /// The stored state of one schedule's targets, with fire times counted from `now`.
    static func scheduleStates(name: String, hash: String, spec: ScheduleSpec, at now: Date) -> [ScheduleTargetState] {
        let next = (try? FireSchedule(spec))?.next(after: now)
        return spec.targets.map { ScheduleTargetState(schedule: name, target: $0, hash: hash, nextFire: next) }
    }

    static func scheduleSpec(json: String) -> ScheduleSpec? {
        guard let (_, spec) = try? Canonical.decode(kind: .schedule, json: json), case .schedule(let schedule) = spec
        else { return nil }
        return schedule
    }

    /// New fire times for the schedules `plan` creates, changes or deletes; the others keep theirs.
    func scheduleUpdate(for plan: Plan, desired: DesiredState, at now: Date) -> ScheduleStateUpdate? {
        let changed = plan.changes.filter { $0.key.kind == .schedule }
        guard !changed.isEmpty else { return nil }
        var states: [ScheduleTargetState] = []
        for change in changed where change.action != .delete {
            guard let record = desired.objects[change.key], let spec = Self.scheduleSpec(json: record.spec) else { continue }
            states += Self.scheduleStates(name: change.key.name, hash: record.hash, spec: spec, at: now)
        }
        return ScheduleStateUpdate(replacing: Set(changed.map(\.key.name)), states: states)
    }

    /// Brings the stored fire times in line with the applied schedules: a schedule whose stored
    /// hash differs (or that has none, as after an upgrade) gets fire times counted from `now`,
    /// and rows of schedules no longer applied are dropped. Returns how many schedules changed.
    @discardableResult
    public func syncScheduleStates(at now: Date) throws -> Int {
        let applied = try store.hashes(of: .schedule)
        var stored: [String: Set<String>] = [:]
        for state in try store.scheduleStates() { stored[state.schedule, default: []].insert(state.hash) }
        var update = ScheduleStateUpdate(replacing: [], states: [])
        for (name, hash) in applied where stored[name] != [hash] {
            guard let spec = try store.manifest(ObjectKey(.schedule, name))?.spec, case .schedule(let schedule) = spec else { continue }
            update.replacing.insert(name)
            update.states += Self.scheduleStates(name: name, hash: hash, spec: schedule, at: now)
        }
        for name in stored.keys where applied[name] == nil { update.replacing.insert(name) }
        if !update.replacing.isEmpty { try store.updateSchedules(update) }
        return update.replacing.count
    }

    /// The applied schedules, compiled, by name (those that fail to compile are left out).
    public func compiledSchedules() throws -> [String: (spec: ScheduleSpec, schedule: FireSchedule)] {
        var out: [String: (ScheduleSpec, FireSchedule)] = [:]
        for applied in try store.manifests(of: .schedule) {
            guard case .schedule(let s) = applied.spec, let compiled = try? FireSchedule(s) else { continue }
            out[applied.metadata.name] = (s, compiled)
        }
        return out
    }
}
