import Directory
import Foundation
import Manifests
#if canImport(Glibc)
import Glibc
#endif

/// Policies over what a job is about to write (`limits` and `protect`), checked after the job
/// is planned and before it writes anything.
public struct RunPolicies: Sendable {
    /// What the run's earlier jobs under a `per: run` limit would have deleted and managed.
    public struct Tally: Sendable, Equatable {
        public var deletes = 0
        public var managed = 0
        public init() {}
    }

    public let policies: [(name: String, spec: PolicySpec)]

    public init(_ policies: [(name: String, spec: PolicySpec)]) {
        self.policies = policies.filter { !$0.spec.limits.isEmpty || !$0.spec.protect.isEmpty || !$0.spec.windows.isEmpty }
            .sorted { $0.name < $1.name }
    }

    public var isEmpty: Bool { policies.isEmpty }
    public var hasWindows: Bool { policies.contains { !$0.spec.windows.isEmpty } }

    /// The sync windows that cover `job` writing `destination`, with their policies' names.
    public func windows(job: String, destination: String) -> [(policy: String, window: SyncWindow)] {
        policies.flatMap { policy in
            policy.spec.windows.filter { Self.applies($0.match, job: job, destination: destination) }.map { (policy.name, $0) }
        }
    }

    public static func applies(_ match: RunMatch?, job: String, destination: String) -> Bool {
        guard let match else { return true }
        if let connection = match.connection, connection != destination { return false }
        if let pattern = match.jobs, fnmatch(pattern, job, 0) != 0 { return false }
        return true
    }

    /// Why `set` may not be written by `job` (writing `destination`), or nil. `tallies` (keyed
    /// `policy/limit`) hold what earlier jobs of the run added under `per: run` limits; when the
    /// job may write, its own share is added.
    public func violation(_ set: ChangeSet, job: String, destination: String,
                          tallies: inout [String: Tally]) -> (reason: String, approvers: [String])? {
        let deletes = set.count(.delete)
        for (policy, spec) in policies {
            for protection in spec.protect where Self.applies(protection.match, job: job, destination: destination) {
                if let found = Self.protectedWrite(set, protection) {
                    return ("policy \(policy), protect \(protection.name): would \(found); nothing was changed", protection.approvers)
                }
            }
            for limit in spec.limits where Self.applies(limit.match, job: job, destination: destination) {
                var total = Tally()
                if limit.per == .run { total = tallies["\(policy)/\(limit.name)"] ?? Tally() }
                total.deletes += deletes
                total.managed += set.managed
                let scope = limit.per == .run ? "this run's jobs" : "the job"
                if let most = limit.maxDeletes, total.deletes > most {
                    return ("policy \(policy), limit \(limit.name): \(scope) would delete \(total.deletes), at most \(most); "
                        + "nothing was changed", limit.approvers)
                }
                if let percent = limit.maxDeletePercent, total.deletes > 0, total.deletes * 100 > percent * max(total.managed, 1) {
                    return ("policy \(policy), limit \(limit.name): \(scope) would delete \(total.deletes) of \(total.managed) "
                        + "(\(total.deletes * 100 / max(total.managed, 1))%), at most \(percent)%; nothing was changed", limit.approvers)
                }
            }
        }
        for (policy, spec) in policies {
            for limit in spec.limits where limit.per == .run && Self.applies(limit.match, job: job, destination: destination) {
                tallies["\(policy)/\(limit.name)", default: Tally()].deletes += deletes
                tallies["\(policy)/\(limit.name)", default: Tally()].managed += set.managed
            }
        }
        return nil
    }

    /// The first thing `set` would do that `protection` forbids, in words.
    static func protectedWrite(_ set: ChangeSet, _ protection: Protection) -> String? {
        let attributes = protection.neverWrite.map { AttributeName($0) }
        let containers = protection.neverDeleteUnder.map { DistinguishedName.normalize($0).lowercased() }
        for change in set.changes {
            if !containers.isEmpty, change.action == .delete || change.action == .rename {
                let dn = DistinguishedName.normalize(change.dn).lowercased()
                if let container = containers.first(where: { dn == $0 || dn.hasSuffix("," + $0) }) {
                    let verb = change.action == .delete ? "delete" : "move"
                    return "\(verb) \(change.dn), under \(protection.neverDeleteUnder[containers.firstIndex(of: container) ?? 0])"
                }
            }
            guard !attributes.isEmpty else { continue }
            var written: [AttributeName] = change.attributes.map(\.attribute)
            if change.action == .create, case .add(let entry)? = change.operations.first {
                written += (0..<entry.nameCount).map { entry.name(at: $0) }
            }
            if let attribute = written.first(where: { attributes.contains($0) }) {
                return "write \(attribute.name) on \(change.dn.isEmpty ? "a new object" : change.dn)"
            }
        }
        return nil
    }
}
