import Foundation
import Manifests
import Planner
import Sync

/// What `plan --preview` found: for each job the revision adds or changes, what it would do to
/// its destination now. Nothing is written.
public struct RevisionPreview: Sendable, Encodable {
    public struct Job: Sendable, Encodable {
        /// The collection it was previewed in (nil for a job in none); jobs of one collection chain.
        public let collection: String?
        /// Why it is previewed: `new`, `changed`, `connection hr-export changed`,
        /// `data file data/hr.csv changed`, or `--all`.
        public let because: String
        public let preview: JobPreview
        /// True when the job would not run: an earlier job of its collection would fail, and its
        /// `onFailure` is abort (`preview.error` says which).
        public var notRun: Bool?
    }
    /// The revision previewed (full sha).
    public let revision: String
    /// How many changes each job lists at most.
    public let limit: Int
    public let jobs: [Job]
    /// Jobs at the revision that were not previewed: the revision leaves them, their connections
    /// and their data files as they are.
    public let unchangedJobs: Int

    /// Jobs previewed; objects to create, update (or rename) and delete, over the jobs that would
    /// run (a job that would fail, or whose guard would trip, writes nothing).
    public var totals: (jobs: Int, create: Int, update: Int, delete: Int) {
        var out = (jobs: jobs.count, create: 0, update: 0, delete: 0)
        for job in jobs where job.preview.error == nil {
            out.create += job.preview.create
            out.update += job.preview.update + job.preview.rename
            out.delete += job.preview.delete
        }
        return out
    }

    /// Jobs that would change something in their destination.
    public var changes: Bool { jobs.contains { $0.preview.error == nil && $0.preview.create + $0.preview.update + $0.preview.rename + $0.preview.delete > 0 } }
    /// Jobs that would fail (a guard would trip, or the job could not run); not those that would
    /// not run because an earlier one fails.
    public var failing: [Job] { jobs.filter { $0.preview.error != nil && $0.notRun != true } }

    /// `plan --preview --format json`'s `preview` (docs/plan-json.md).
    public func encode(to encoder: Encoder) throws {
        enum Keys: String, CodingKey { case revision, readOnly, limit, summary, jobs, unchangedJobs }
        struct Summary: Encodable { let jobs, create, update, delete, guardsTripped, failing, notRun: Int }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(revision, forKey: .revision)
        try c.encode(true, forKey: .readOnly)
        try c.encode(limit, forKey: .limit)
        let t = totals
        try c.encode(Summary(jobs: t.jobs, create: t.create, update: t.update, delete: t.delete,
                             guardsTripped: jobs.filter { $0.preview.guardTripped == true }.count,
                             failing: failing.count, notRun: jobs.filter { $0.notRun == true }.count), forKey: .summary)
        try c.encode(jobs, forKey: .jobs)
        try c.encode(unchangedJobs, forKey: .unchangedJobs)
    }
}

extension Workspace {
    /// Previews, read-only, what the jobs that `planned` adds or changes would do now: each is
    /// planned against its live destination with the manifests and data files of the revision.
    /// The jobs of one collection chain (in memory), as `run --preview` does, so a later job sees
    /// an earlier one's creates. `all` previews every job.
    public func preview(_ planned: PlannedRevision, all: Bool, limit: Int,
                        progress: ((JobProgress) -> Void)? = nil) throws -> RevisionPreview {
        let lookup = manifests(at: planned)
        let jobNames = try lookup.names(of: .job)
        var because = try reasons(planned, lookup: lookup, jobs: jobNames, all: all)
        // Each job once, in the first collection (by name) that lists it; then those in none. In
        // a collection, a later job is affected too when it reads what a previewed job writes, or
        // looks references up through one.
        var groups: [(collection: String?, entries: [CollectionEntry])] = []
        var placed: Set<String> = []
        for name in try lookup.names(of: .jobCollection) {
            guard case .jobCollection(let collection)? = try lookup.spec(ObjectKey(.jobCollection, name)) else { continue }
            var entries: [CollectionEntry] = []
            var written: [String: String] = [:] // destination connection → the previewed job writing it
            for entry in collection.jobs where !placed.contains(entry.job) {
                guard let spec = try? lookup.job(entry.job) else { continue }
                if because[entry.job] == nil {
                    if let writer = written[spec.source.connection] {
                        because[entry.job] = "reads \(spec.source.connection), which \(writer) would change"
                    } else if let through = spec.mappings.compactMap({ $0.resolve?.job }).first(where: { j in entries.contains { $0.job == j } }) {
                        because[entry.job] = "looks references up through \(through)"
                    } else {
                        continue
                    }
                }
                entries.append(entry)
                written[spec.destination.connection] = written[spec.destination.connection] ?? entry.job
            }
            guard !entries.isEmpty else { continue }
            placed.formUnion(entries.map(\.job))
            groups.append((name, entries))
        }
        let loose = jobNames.filter { because[$0] != nil && !placed.contains($0) }
        if !loose.isEmpty { groups.append((nil, loose.map { CollectionEntry(job: $0) })) }
        var jobs: [RevisionPreview.Job] = []
        for group in groups {
            let context = RunContext(
                collection: group.collection ?? "(no collection)", runId: "preview", trigger: .manual,
                revision: planned.commit.hex, startedAt: Date(), preview: true, previewLines: limit,
                scheduled: nil, control: nil, approved: nil, progress: progress)
            var run = RunProgress(lookup)
            run.connections.previewing = true
            for entry in group.entries {
                let job: RunReport.Job
                if let skipped = run.notRun(entry.job) {
                    job = skipped
                } else {
                    job = runJob(entry, context, &run)
                    if job.status == .failed && entry.onFailure == .abort { run.abortedBy = entry.job }
                }
                let preview = run.previews.first { $0.job == entry.job }
                    ?? JobPreview(job: entry.job, read: 0, create: 0, update: 0, rename: 0, delete: 0, unchanged: 0,
                                  skipped: 0, failed: 0, lines: [], moreChanges: 0, error: job.error)
                var shown = RevisionPreview.Job(collection: group.collection, because: because[entry.job]!, preview: preview)
                if job.status == .notRun { shown.notRun = true }
                jobs.append(shown)
            }
        }
        return RevisionPreview(revision: planned.commit.hex, limit: limit, jobs: jobs,
                               unchangedJobs: jobNames.count - jobs.count)
    }

    /// Why each job is previewed, for those that are: the revision adds or changes it, one of its
    /// connections, or a data file one of them reads (everything with `all`).
    private func reasons(_ planned: PlannedRevision, lookup: ManifestLookup, jobs: [String],
                         all: Bool) throws -> [String: String] {
        var out: [String: String] = [:]
        var connections: [String: String] = [:]
        // Jobs the revision adds or changes first: their reason wins over "added to collection".
        for change in planned.plan.changes.sorted(by: { ($0.key.kind == .jobCollection ? 1 : 0) < ($1.key.kind == .jobCollection ? 1 : 0) })
            where change.action != .delete {
            switch change.key.kind {
            case .job: out[change.key.name] = change.action == .create ? "new" : "changed"
            case .connection: connections[change.key.name] = "connection \(change.key.name) \(change.action == .create ? "is new" : "changed")"
            case .jobCollection:
                // A job newly listed in a collection is added to it: it will run there.
                guard case .jobCollection(let now)? = try lookup.spec(change.key) else { break }
                var before: Set<String> = []
                if case .jobCollection(let old)? = try store.manifest(change.key)?.spec { before = Set(old.jobs.map(\.job)) }
                for entry in now.jobs where !before.contains(entry.job) && out[entry.job] == nil {
                    out[entry.job] = "added to collection \(change.key.name)"
                }
            default: break
            }
        }
        let dataFiles = Set(planned.plan.dataFiles.map(\.path))
        if !dataFiles.isEmpty {
            for name in try lookup.names(of: .connection) where connections[name] == nil {
                if let path = try lookup.connection(name).repoPath, dataFiles.contains(path) {
                    connections[name] = "data file \(path) changed"
                }
            }
        }
        for name in jobs where out[name] == nil {
            let spec = try lookup.job(name)
            if let reason = connections[spec.source.connection] ?? connections[spec.destination.connection] {
                out[name] = reason
            } else if all {
                out[name] = "--all"
            }
        }
        return out
    }
}
