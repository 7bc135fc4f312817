import Concurrency
import Foundation
import GitKit
import Logging
import Manifests
import Planner
import StateStore
import Sync

/// A plan together with what applying it stores.
public struct PlannedRevision: Sendable {
    /// How the desired state was read.
    public enum Mode: String, Sendable {
        /// The revision is the applied one: nothing was read.
        case unchanged
        /// Only files changed since the applied revision were read.
        case pathScoped
        /// Every manifest was read.
        case full
    }
    public internal(set) var plan: Plan
    let desired: DesiredState
    let commit: ObjectID
    public let mode: Mode
    /// How many manifest files were parsed.
    public let parsedFiles: Int
    /// The paths that differ from the applied revision, when planning worked them out.
    var changedPaths: [PathChange]?
}

/// One stored collection, as `status` shows it.
public struct CollectionSummary: Sendable, Equatable {
    public let name: String
    public let description: String?
    public let file: String
    public let jobs: [CollectionEntry]
    public let template: String?
}

/// An opened home: its bare clone, its state store, and the operations the commands run.
public final class Workspace: Sendable {
    public let home: Home
    let repository: GitRepository
    let store: any StateStore
    let logger: Logger
    /// Notification channels as applied at one revision, read once for all the runs of that
    /// revision (see `channel(_:revision:)`).
    let channels = Locked<(revision: String, specs: [String: NotificationChannelSpec?])>(("", [:]))
    /// The run-time policies of the applied revision (see `runPolicies(_:revision:)`).
    let policyCache = Locked<(revision: String, policies: RunPolicies)?>(nil)
    /// Each collection's notification state, once read (see `notificationState(_:)`).
    let notificationStates = Locked<[String: NotificationState]?>(nil)
    /// Told of every run report this workspace records (see `observeRuns(_:)`).
    let runObservers = Locked<[@Sendable (RunReport) -> Void]>([])
    /// On a shared store: its clock minus this machine's, kept up to date while the lease is held.
    let clockOffset = Locked<TimeInterval>(0)
    /// On a shared store, while this process holds its lease: whether the lease surely still
    /// runs. The runs this process starts stop at a safe point once it does not.
    let holdsStore = Locked<(@Sendable () -> Bool)?>(nil)
    /// On a shared store: whether this replica leads, as its heartbeat finds it.
    let standing = ReplicaStanding()
    /// On a store of the home's own: the destinations this process's runs write now.
    let destinationClaims = LocalDestinationClaims()

    public init(home: Home, logger: Logger) throws {
        self.home = home
        self.logger = logger
        do {
            repository = try GitRepository.open(at: home.repositoryPath)
            store = try home.openStore()
        } catch {
            throw ReconcilerError.wrap(error)
        }
    }

    /// Calls `observer` with every run report recorded from now on, after it is stored.
    public func observeRuns(_ observer: @escaping @Sendable (RunReport) -> Void) {
        runObservers.update { $0.append(observer) }
    }

    /// What waits to be published, delivered or decided.
    public func backlog() throws -> Backlog {
        do { return try store.backlog() } catch { throw ReconcilerError.wrap(error) }
    }

    /// The applied revision's full sha, and when it was applied; nil before the first apply.
    public func appliedRevision() throws -> (revision: String, appliedAt: Date)? {
        do { return try store.appliedRevision().map { ($0.revision, $0.appliedAt) } } catch { throw ReconcilerError.wrap(error) }
    }

    /// Packs the clone's loose objects when there are many (`git gc --auto`); returns what git said.
    ///
    /// gc removes objects no ref reaches after two weeks. The applied revision is read again by
    /// later plans (the base of a path-scoped plan), and a force-pushed branch may no longer
    /// reach it: `refs/syncwright/applied` pins it first.
    public func packRepository() throws -> String? {
        do {
            if let applied = try store.appliedRevision(), let commit = ObjectID(hex: applied.revision),
               (try? repository.commitInfo(commit)) != nil {
                try repository.setReference(Self.appliedRef, to: commit, message: "syncwright: the applied revision")
            }
            return try repository.packLooseObjects()
        } catch {
            throw ReconcilerError.wrap(error)
        }
    }

    /// The clone's ref to the applied revision, which keeps it from being packed away.
    static let appliedRef = "refs/syncwright/applied"

    /// Fetches the remote, so refs resolve to what it holds now.
    public func fetch() throws {
        do {
            let started = Date()
            try repository.fetch(credentials: try home.config.gitCredentials())
            logger.debug("fetched", metadata: ["remote": "\(home.config.remote)",
                                               "ms": "\(Int(Date().timeIntervalSince(started) * 1000))"])
        } catch {
            throw ReconcilerError.wrap(error)
        }
    }

    /// On a replica that follows: the applied revision (the leader applied it, from its own
    /// fetch), fetched now when this replica's clone lacks it, since runs read the repository's
    /// files at that revision. Returns the applied revision.
    func fetchAppliedRevisionIfMissing() throws -> String? {
        guard let revision = try store.appliedRevision()?.revision, let commit = ObjectID(hex: revision) else { return nil }
        if (try? repository.commitInfo(commit)) == nil {
            logger.info("fetching: the leader applied a revision this replica has not fetched yet",
                        metadata: ["revision": "\(revision.prefix(7))"])
            try fetch()
        }
        return revision
    }

    /// The commit `ref` names, defaulting to the configured branch's tip.
    public func resolve(_ ref: String?) throws -> ObjectID {
        let name = ref ?? home.config.branch
        do {
            return try repository.resolveCommit(name)
        } catch where error.isNotFound {
            throw ReconcilerError.unknownRef(name, place: home.config.remote)
        } catch {
            throw ReconcilerError.wrap(error)
        }
    }

    /// Validates every manifest at `ref`.
    /// Returns the objects, and the violations of `warn` policy rules (a `deny` one throws).
    public func validate(ref: String?) throws -> (revision: ObjectID, objects: [ObjectKey], warnings: [PolicyFinding]) {
        let commit = try resolve(ref)
        let source = try CommitSource(repository: repository, commit: commit, listAllPaths: true)
        let state = try source.fullDesiredState()
        return (commit, Array(state.objects.keys), state.policies?.warnings ?? [])
    }

    /// Plans `ref` against the stored state.
    ///
    /// After the first apply only the files changed since the applied revision are read; when the
    /// applied revision is `ref` itself nothing is parsed at all. A path-scoped check that finds a
    /// problem repeats the full check, so every error is reported with its exact position.
    public func plan(ref: String?) throws -> PlannedRevision {
        var planned = try manifestPlan(ref: ref)
        if let applied = try store.appliedRevision(), let base = ObjectID(hex: applied.revision), base != planned.commit {
            planned.plan.dataFiles = try dataFileChanges(planned, base: base)
        }
        return planned
    }

    /// The manifests a planned revision holds, over the applied state.
    func manifests(at planned: PlannedRevision) -> ManifestLookup {
        var lookup = ManifestLookup(store: store)
        lookup.revised = planned.desired.objects
        lookup.deleted = Set(planned.plan.changes.filter { $0.action == .delete }.map(\.key))
        return lookup
    }

    /// The data files that differ from `base` to the planned revision, with their row counts
    /// (nothing is read when no changed path can be one).
    func dataFileChanges(_ planned: PlannedRevision, base: ObjectID) throws -> [DataFileChange] {
        let paths: [PathChange]
        do {
            paths = try planned.changedPaths ?? repository.changedPaths(from: base, to: planned.commit)
        } catch {
            return [] // the applied revision is no longer in the repository
        }
        return try DataFiles.changes(in: repository, base: base, head: planned.commit, paths: paths) {
            let lookup = manifests(at: planned)
            var connections: [String: ConnectionSpec] = [:], jobs: [String: JobSpec] = [:]
            for name in try lookup.names(of: .connection) { connections[name] = try lookup.connection(name) }
            for name in try lookup.names(of: .job) { jobs[name] = try lookup.job(name) }
            return (connections, jobs)
        }
    }

    /// Plans the manifests of `ref` (not its data files).
    func manifestPlan(ref: String?) throws -> PlannedRevision {
        let commit = try resolve(ref)
        let applied = try store.appliedRevision()
        guard let applied, let appliedCommit = ObjectID(hex: applied.revision) else {
            return try fullPlan(commit: commit, appliedRevision: applied?.revision)
        }
        if appliedCommit == commit {
            let empty = DesiredState(objects: [:], scope: .changed([]))
            return PlannedRevision(plan: Plan(revision: commit.hex, appliedRevision: applied.revision, changes: []),
                                   desired: empty, commit: commit, mode: .unchanged, parsedFiles: 0)
        }
        let changes: [PathChange]
        do {
            changes = try repository.changedPaths(from: appliedCommit, to: commit)
        } catch {
            logger.info("applied revision is no longer in the repository; planning in full",
                        metadata: ["applied": "\(applied.revision)"])
            return try fullPlan(commit: commit, appliedRevision: applied.revision)
        }
        let changedPaths = Set(changes.map(\.path))
        let source = try CommitSource(repository: repository, commit: commit, listAllPaths: false)
        let toRead = changes.filter { $0.status != .deleted && ManifestParser.isManifestPath($0.path) }.map(\.path)
        let (manifests, problems) = ManifestParser.parse(files: try source.manifestFiles(toRead))
        var desired: DesiredState
        do {
            guard problems.isEmpty else { throw ManifestError(problems) }
            desired = try DesiredState.build(manifests: manifests, scope: .changed(changedPaths),
                                             applied: store.catalog, fileExists: source.exists)
            let policies = try scopedPolicyReview(desired, changedFiles: changedPaths, source: source)
            guard policies.denied.isEmpty else { throw ManifestError(policies.denied.map(\.problem)) }
            desired.policies = policies
        } catch is ManifestError {
            logger.debug("path-scoped check found problems; repeating the full check for exact positions")
            return try fullPlan(commit: commit, appliedRevision: applied.revision)
        }
        let stored = try store.records(for: desired.objects.keys, inFiles: changedPaths)
        logger.debug("planned path-scoped", metadata: ["changedFiles": "\(changes.count)",
                                                       "parsedFiles": "\(toRead.count)"])
        return PlannedRevision(plan: Plan.make(desired: desired, applied: stored, revision: commit.hex,
                                               appliedRevision: applied.revision).withUpcomingFires(desired: desired, after: Date()),
                               desired: desired, commit: commit, mode: .pathScoped, parsedFiles: toRead.count,
                               changedPaths: changes)
    }

    func fullPlan(commit: ObjectID, appliedRevision: String?) throws -> PlannedRevision {
        var clock = PhaseClock()
        let source = try CommitSource(repository: repository, commit: commit, listAllPaths: true)
        let files = try source.manifestFiles()
        clock.lap("read")
        let desired = try source.fullDesiredState(files)
        clock.lap("parse+check")
        let stored = try store.allRecords()
        clock.lap("load")
        let plan = Plan.make(desired: desired, applied: stored, revision: commit.hex, appliedRevision: appliedRevision)
            .withUpcomingFires(desired: desired, after: Date())
        clock.lap("compare")
        logger.debug("planned in full", metadata: clock.metadata(["files": "\(files.count)"]))
        return PlannedRevision(plan: plan, desired: desired, commit: commit, mode: .full, parsedFiles: files.count)
    }

    /// Plans `ref` and stores the result in one transaction. Invalid manifests store nothing.
    /// Schedules that changed get fire times counted from `now`, in the same transaction.
    @discardableResult
    public func apply(ref: String?, at now: Date = Date()) throws -> Plan {
        let planned = try manifestPlan(ref: ref)
        let plan = planned.plan
        if plan.appliedRevision == planned.commit.hex { return plan }
        let deleted = plan.changes.filter { $0.action == .delete }.map(\.key)
        var clock = PhaseClock()
        defer { logger.debug("stored", metadata: clock.metadata([:])) }
        defer { clock.lap("store") }
        let requests = try requestChanges(for: plan, desired: planned.desired, commit: planned.commit, at: now)
        let revision = AppliedRevision(revision: planned.commit.hex, appliedAt: now, created: plan.count(.create),
                                       updated: plan.count(.update), deleted: plan.count(.delete))
        var update = RevisionUpdate(desired: planned.desired, deleted: deleted, revision: revision,
                                    page: applyPublication(plan, commit: planned.commit, at: now),
                                    schedules: scheduleUpdate(for: plan, desired: planned.desired, at: now),
                                    requests: requests.map(Self.publishable))
        update.notifications = try notifications(forRequests: requests, at: now)
        try store.apply(update)
        logger.info("applied", metadata: ["revision": "\(planned.commit.hex)", "create": "\(plan.count(.create))",
                                          "update": "\(plan.count(.update))", "delete": "\(plan.count(.delete))"])
        return plan
    }

    /// The stored collections, by name.
    public func collections() throws -> [CollectionSummary] {
        try store.manifests(of: .jobCollection).compactMap { applied in
            guard case .jobCollection(let collection) = applied.spec else { return nil }
            return CollectionSummary(name: applied.metadata.name, description: applied.metadata.description, file: applied.file,
                                     jobs: collection.jobs, template: collection.template)
        }
    }
}

/// Validation and diffs that need no home.
public enum Offline {
    /// Validates a plain folder.
    /// The objects, and the violations of `warn` policy rules (a `deny` one throws).
    public static func validate(folder: String) throws -> (objects: [ObjectKey], warnings: [PolicyFinding]) {
        let state = try FolderSource(root: folder).fullDesiredState()
        return (Array(state.objects.keys), state.policies?.warnings ?? [])
    }

    private static func commit(_ ref: String, in repository: GitRepository) throws -> ObjectID {
        let resolved: Result<ObjectID, GitError> = Result { () throws(GitError) -> ObjectID in
            try repository.resolveCommit(ref)
        }
        switch resolved {
        case .success(let id): return id
        case .failure(let error) where error.isNotFound:
            throw ReconcilerError.unknownRef(ref, place: "this repository")
        case .failure(let error): throw error
        }
    }

    /// What the change from `base` to `head` does, in the git repository containing `directory`.
    public static func diff(base: String, head: String, in directory: String) throws -> Plan {
        do {
            let repository = try GitRepository.discover(from: directory)
            let baseCommit = try commit(base, in: repository)
            let headCommit = try commit(head, in: repository)
            let baseState: DesiredState
            do {
                baseState = try CommitSource(repository: repository, commit: baseCommit, listAllPaths: true)
                    .fullDesiredState()
            } catch ReconcilerError.invalidManifests(_, let error) {
                throw ReconcilerError.invalidBase(ref: base, commit: baseCommit.short, problem: "\(error)")
            }
            let headState = try CommitSource(repository: repository, commit: headCommit, listAllPaths: true)
                .fullDesiredState()
            var plan = Plan.make(desired: headState, applied: baseState.objects, revision: headCommit.hex,
                                 appliedRevision: baseCommit.hex).withUpcomingFires(desired: headState, after: Date())
            plan.baseline = .base
            plan.dataFiles = try DataFiles.changes(in: repository, base: baseCommit, head: headCommit,
                                                   paths: try repository.changedPaths(from: baseCommit, to: headCommit)) {
                var connections: [String: ConnectionSpec] = [:], jobs: [String: JobSpec] = [:]
                for (key, record) in headState.objects where key.kind == .connection || key.kind == .job {
                    switch try Canonical.decode(kind: key.kind, json: record.spec).1 {
                    case .connection(let spec): connections[key.name] = spec
                    case .job(let spec): jobs[key.name] = spec
                    default: break
                    }
                }
                return (connections, jobs)
            }
            return plan
        } catch {
            throw ReconcilerError.wrap(error)
        }
    }
}

/// Milliseconds spent in named phases, for debug logs.
struct PhaseClock {
    private var last = DispatchTime.now()
    private var laps: [(String, Int)] = []

    mutating func lap(_ name: String) {
        let now = DispatchTime.now()
        laps.append((name, Int((now.uptimeNanoseconds - last.uptimeNanoseconds) / 1_000_000)))
        last = now
    }

    func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        var out = extra
        for (name, ms) in laps { out["\(name)Ms"] = "\(ms)" }
        return out
    }
}

/// The manifests' JSON Schema, for editors (`syncwright schema`).
public enum ManifestsSchema {
    public static func json() -> String { ManifestSchema.json() }
    public static var id: String { ManifestSchema.id }
}
