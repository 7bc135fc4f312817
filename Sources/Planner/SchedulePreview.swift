import Foundation
import Manifests
import Scheduling

/// A fire time a planned schedule will produce, in its own zone and in UTC.
public struct UpcomingFire: Sendable, Equatable, Codable {
    /// `2026-11-26 02:30 +01:00`
    public let local: String
    /// `2026-11-26T01:30:00Z`
    public let utc: String

    public init(local: String, utc: String) {
        self.local = local
        self.utc = utc
    }
}

extension Plan {
    /// How many fire times a plan shows per created or changed schedule.
    public static let upcomingFires = 3

    /// The plan, with the next fire times (after `now`) of every schedule it creates or changes.
    public func withUpcomingFires(desired: DesiredState, after now: Date) -> Plan {
        var changes = self.changes
        for index in changes.indices where changes[index].key.kind == .schedule && changes[index].action != .delete {
            guard let record = desired.objects[changes[index].key],
                  let (_, spec) = try? Canonical.decode(kind: .schedule, json: record.spec),
                  case .schedule(let schedule) = spec, let compiled = try? FireSchedule(schedule) else { continue }
            changes[index].nextFires = compiled.upcoming(after: now, count: Self.upcomingFires).map {
                UpcomingFire(local: compiled.wallText($0), utc: FireDecision.stamp($0))
            }
        }
        var plan = Plan(revision: revision, appliedRevision: appliedRevision, changes: changes)
        plan.baseline = baseline
        plan.listsNewFields = listsNewFields
        plan.dataFiles = dataFiles
        plan.policies = policies
        return plan
    }
}
