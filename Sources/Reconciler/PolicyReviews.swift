import Foundation
import Manifests
import Scheduling
import StateStore
import Sync

extension ManifestSource {
    /// Every policy of a fully built revision over every object of it, with each finding located
    /// at its field.
    func fullPolicyReview(_ state: DesiredState) -> PolicyReview {
        let policies = state.objects.values.filter { $0.key.kind == .policy }.compactMap(PolicyReviews.policy)
        let subjects = state.objects.values.map { PolicyCheck.Subject(key: $0.key, file: $0.file, json: $0.spec) }
        var review = PolicyCheck.review(policies: policies, subjects: subjects)
        review.findings = located(review.findings)
        return review
    }

    /// The findings with the line and column of their field: each file with one is parsed again
    /// with every field's position. A field written nowhere (a default) points at the nearest
    /// field on its path that is written, else at the document.
    func located(_ findings: [PolicyFinding]) -> [PolicyFinding] {
        guard !findings.isEmpty else { return [] }
        var manifests: [String: [ObjectKey: Manifest]] = [:]
        for file in Set(findings.map(\.file)) {
            guard let data = contents(file) else { continue }
            let (parsed, _) = ManifestParser.parse(file: file, contents: data, locatingEveryField: true)
            manifests[file] = Dictionary(parsed.map { ($0.key, $0) }) { a, _ in a }
        }
        return findings.map { finding -> PolicyFinding in
            guard let manifest = manifests[finding.file]?[ObjectKey(finding.kind, finding.name)] else { return finding }
            var located = finding
            let location = PolicyReviews.location(of: finding.field, in: manifest)
            located.line = location.line
            located.column = location.column
            return located
        }.sorted { ($0.file, $0.line ?? 0, $0.column ?? 0, $0.policy, $0.rule) < ($1.file, $1.line ?? 0, $1.column ?? 0, $1.policy, $1.rule) }
    }
}

enum PolicyReviews {
    /// A stored or built Policy record, decoded.
    static func policy(_ record: ObjectRecord) -> (name: String, spec: PolicySpec)? {
        guard let (_, spec) = try? Canonical.decode(kind: .policy, json: record.spec), case .policy(let policy) = spec else { return nil }
        return (record.key.name, policy)
    }

    /// Where `field` (a dotted path, lists looked through) is written in `manifest`: the field
    /// itself, the first list item that has it, or the nearest written field above it.
    static func location(of field: String, in manifest: Manifest) -> SourceLocation {
        let parts = field.split(separator: ".").map(String.init)
        for length in stride(from: parts.count, through: 1, by: -1) {
            let wanted = parts.prefix(length)
            // Parser paths carry list indices (`spec.mappings[2].destination`): compare without them.
            let matches = manifest.fieldLocations.filter { key, _ in
                key.split(separator: ".").map { $0.split(separator: "[").first.map(String.init) ?? "" } == Array(wanted)
            }
            if let first = matches.min(by: { ($0.value.line, $0.value.column) < ($1.value.line, $1.value.column) }) {
                return first.value
            }
        }
        return manifest.location
    }
}

extension Workspace {
    /// The policies over what a path-scoped plan changes: the revision's policies (changed ones,
    /// and the applied ones whose files did not change) over the changed objects; and, when a
    /// policy changed, over every applied object of the kinds it matches too.
    func scopedPolicyReview(_ desired: DesiredState, changedFiles: Set<String>, source: some ManifestSource) throws -> PolicyReview {
        let changedPolicies = desired.objects.values.filter { $0.key.kind == .policy }.compactMap(PolicyReviews.policy)
        var policies = changedPolicies
        for record in try store.records(of: .policy)
        where desired.objects[record.key] == nil && !changedFiles.contains(record.file) {
            if let policy = PolicyReviews.policy(record) { policies.append(policy) }
        }
        guard !policies.isEmpty else { return PolicyReview() }
        var subjects = desired.objects.values.map { PolicyCheck.Subject(key: $0.key, file: $0.file, json: $0.spec) }
        let kinds = Set(changedPolicies.flatMap { $0.spec.rules.flatMap(\.match.kinds) })
        for kind in kinds.sorted() {
            for record in try store.records(of: kind) where desired.objects[record.key] == nil && !changedFiles.contains(record.file) {
                subjects.append(PolicyCheck.Subject(key: record.key, file: record.file, json: record.spec))
            }
        }
        var review = PolicyCheck.review(policies: policies, subjects: subjects)
        review.findings = source.located(review.findings)
        return review
    }
}

extension Workspace {
    /// The limits and protections of the policies a run sees: read once per applied revision
    /// for runs of it; a preview over a revision not applied yet reads its own.
    func runPolicies(_ manifests: ManifestLookup, revision: String) throws -> RunPolicies {
        let applied = manifests.revised.isEmpty && manifests.deleted.isEmpty
        if applied, let cached = policyCache.get(), cached.revision == revision { return cached.policies }
        var policies: [(name: String, spec: PolicySpec)] = []
        for name in try manifests.names(of: .policy) {
            if case .policy(let spec)? = try manifests.spec(ObjectKey(.policy, name)) { policies.append((name, spec)) }
        }
        let loaded = RunPolicies(policies)
        if applied { policyCache.set((revision, loaded)) }
        return loaded
    }
}

extension Workspace {
    /// Whether any applied policy has sync windows: one read, to skip every other question
    /// about windows when none has (a pass asks for each due fire).
    func hasSyncWindows() throws -> Bool {
        guard let applied = try store.appliedRevision() else { return false }
        return try runPolicies(ManifestLookup(store: store), revision: applied.revision).hasWindows
    }

    /// Why a run of `collection` (or of its jobs in `jobs`) may not write at `now`: the first
    /// job whose destination a policy's sync window closes then, in words; nil when every
    /// window is open.
    public func closedWindow(collection name: String, jobs: Set<String>? = nil, at now: Date) throws -> String? {
        guard let applied = try store.appliedRevision() else { return nil }
        let lookup = ManifestLookup(store: store)
        let policies = try runPolicies(lookup, revision: applied.revision)
        guard policies.hasWindows, case .jobCollection(let collection)? = try lookup.spec(ObjectKey(.jobCollection, name)) else { return nil }
        for entry in collection.jobs where jobs?.contains(entry.job) ?? true {
            guard let job = try? lookup.job(entry.job) else { continue }
            let destination = job.destination.connection
            for (policy, window) in policies.windows(job: entry.job, destination: destination) where !SyncWindows.isOpen(window, at: now) {
                return "job \(entry.job) writes \(destination), and policy \(policy)'s window \(window.name) "
                    + "(\(SyncWindows.describe(window))) is closed at \(SyncWindows.wallText(now, in: window))"
            }
        }
        return nil
    }
}
