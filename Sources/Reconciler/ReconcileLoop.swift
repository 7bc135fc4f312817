import Concurrency
import Foundation
import GitKit
import Logging
import Manifests
import Planner
import Reports
import Scheduling
import StateStore

/// What one pass of the reconciler did: the line it logs.
public struct PassSummary: Sendable {
    /// Whether the remote was fetched in this pass (it is every `interval`).
    public var fetched = false
    /// The plan applied in this pass, when the branch moved.
    public var applied: Plan?
    /// Why the branch's tip was not applied (invalid manifests, an unreachable remote).
    public var problem: String?
    /// Fire times handled, and what became of them.
    public var due = 0
    public var started: [String] = []
    public var merged = 0
    public var skipped = 0
    /// Due fire times left to the other replicas of a shared store (beyond this one's share).
    public var left = 0
    /// Approved requests whose job was started in this pass.
    public var approved: [String] = []
    /// Collections whose runs `syncwright run` handed over (started in this pass).
    public var handedOver: [String] = []
    /// Requests that expired in this pass (past their time, with no decision).
    public var expired = 0
    public var published: PublishOutcome?
    /// What sending the due notifications did.
    public var notified: DeliveryPass?
    public var milliseconds = 0
    /// Of those, publishing the reports (in the pass's last phase).
    public var publishMilliseconds = 0
    /// When the loop wakes next (the earlier of the next fire time and the next fetch).
    public var nextWake: Date?
}

/// A run the pass decided to start. The caller runs `work` (the loop, in its task group).
public struct StartedRun: Sendable {
    public let collection: String
    /// The fire time it runs for; nil for an approved request's run.
    public let scheduled: ScheduledRun?
    /// The approved request it carries out.
    public let request: String?
    public let control: RunControl
    public let work: @Sendable () async -> Void
}

/// Runs one collection for a schedule; by default `Workspace.run`. Tests wrap it (to hold a run
/// open), never replace it.
public typealias CollectionRun = @Sendable (_ collection: String, _ scheduled: ScheduledRun,
                                            _ control: RunControl) throws -> RunReport

/// The reconciler: each pass fetches (every `interval`), applies the branch when it moved, runs
/// every due collection in due-time order, and publishes the reports; between passes it sleeps
/// until the earlier of the next fire time and the next fetch, or until a run ends.
///
/// `@unchecked Sendable`: the mutable state is guarded by `lock`.
public final class ReconcileLoop: @unchecked Sendable {
    public let workspace: Workspace
    let clock: any WallClock
    let interval: TimeInterval
    let logger: Logger
    let runCollection: CollectionRun
    let wake = WakeSignal()
    /// At most `concurrentRunLimit` runs work at once; the others wait here for a slot.
    let slots: RunSlots

    private let lock = NSLock()
    /// Per running collection: its control, and what it was started for ("schedule nightly at …").
    private var running: [String: (control: RunControl, startedFor: String)] = [:]
    /// Per collection, the minute of the fire time its last scheduled run was started for, and
    /// which triggers (`schedule`, or `schedule@startup`) fired it in that minute. Another
    /// schedule firing the same collection in that minute is merged into the run; a schedule's
    /// own next fire (an `every: 3s`) is a run of its own.
    private var startedMinute: [String: (minute: Int, firedBy: Set<String>)] = [:]
    private var stopping = false
    private var nextFetch: Date?
    /// When a fetch asked for by `fetchNow` is due (now, or when the spacing is up).
    private var requestedFetch: Date?
    /// When a pass last published (monotonic), for spacing publishes while runs are at work.
    private var lastPublish: UInt64?
    /// A pass woken only by a run's end, while other runs are at work, publishes at most this
    /// often: each push is a git process that competes with the runs for the CPU. A pass that
    /// fetched or started runs publishes, and so does the one the last run's end wakes.
    static let publishSpacingWhileBusy: UInt64 = 5_000_000_000
    private var startedUp = false
    /// Compiled schedules by name, with the spec hash they were compiled from.
    private var compiled: [String: (hash: String, schedule: FireSchedule?)] = [:]
    /// Told what the loop does (the daemon's endpoints); see `observe(_:)`.
    private var observer: (any LoopObserver)?

    public init(workspace: Workspace, clock: any WallClock = SystemWallClock(), interval: TimeInterval,
                logger: Logger, run: CollectionRun? = nil) {
        self.workspace = workspace
        self.clock = clock
        self.interval = interval
        self.logger = logger
        self.slots = RunSlots(workspace.home.config.concurrentRunLimit)
        self.runCollection = run ?? { [workspace] collection, scheduled, control in
            try workspace.run(collection: collection, scheduled: scheduled, control: control).report
        }
    }

    /// Asks the loop to end: running collections stop at their next safe point (as `aborted`,
    /// reason `shutdown`), their reports are published, and `run` returns.
    public func stop() {
        let controls = lock.withLock { () -> [RunControl] in
            stopping = true
            return running.values.map(\.control)
        }
        for control in controls { control.stop(.shutdown) }
        wake.signal()
    }

    public var isStopping: Bool { lock.withLock { stopping } }

    /// The collections running now.
    public var runningCollections: [String] { lock.withLock { running.keys.sorted() } }

    /// Passes until `stop()`; with `once`, one pass, then waits for its runs and publishes them.
    /// `whenIdle` is called before the loop sleeps with no run at work (the executable hands
    /// freed memory back to the system there).
    public func run(once: Bool, onPass: @escaping @Sendable (PassSummary) -> Void = { _ in },
                    whenIdle: @Sendable () -> Void = {}) async {
        await withDiscardingTaskGroup { group in
            while true {
                var (summary, runs) = await pass()
                for started in runs { group.addTask { await started.work() } }
                if once || isStopping {
                    onPass(summary)
                    break
                }
                summary.nextWake = try? nextWake()
                // A full batch was published: more reports may wait, so the next pass comes at once.
                if summary.published?.more == true { summary.nextWake = clock.now() }
                onPass(summary)
                if lock.withLock({ running.isEmpty }) {
                    whenIdle()
                    workspace.store.tidy()
                    packRepositoryWhenDue()
                }
                await sleep(until: summary.nextWake ?? clock.now().addingTimeInterval(interval))
                if isStopping { break }
            }
            // Runs stop at their next safe point once stop() is called; wait for them to record.
            while !lock.withLock({ running.isEmpty }) { await wake.wait() }
        }
        if once && !isStopping {
            // An approved request whose collection was running in the pass (a scheduled run) waits
            // for it; a long-running loop starts it in the pass the run's end wakes, --once here.
            var followUp = PassSummary()
            if let runs = try? approvedRuns(at: clock.now(), into: &followUp), !runs.isEmpty {
                await withDiscardingTaskGroup { group in
                    for started in runs { group.addTask { await started.work() } }
                }
                onPass(followUp)
            }
        }
        // Notifications first: publishing many reports can take a while, and people are waiting.
        // (On a shared store, the leader sends and publishes what every replica recorded.)
        guard workspace.leads else { return }
        let notified = try? await offload({ [workspace] in try workspace.deliverNotifications() })
        let published = try? await offload({ [workspace] in try workspace.publishPending() })
        if (published.map { !$0.published.isEmpty || $0.problem != nil } ?? false) || (notified.map { $0 != DeliveryPass() } ?? false) {
            var last = PassSummary()
            last.published = published
            last.notified = notified
            onPass(last)
        }
    }

    /// The earlier of the next fetch and the next stored fire time. On a shared store, a replica
    /// with no free run slot leaves the fire times to the others, and waits for a run's end.
    func nextWake() throws -> Date? {
        let (fetch, full) = lock.withLock {
            ([nextFetch, requestedFetch].compactMap { $0 }.min(), running.count >= workspace.home.config.concurrentRunLimit)
        }
        if full && workspace.isShared { return fetch }
        let fire = try workspace.store.nextFireTime()
        return [fetch, fire].compactMap { $0 }.min()
    }

    /// Sleeps until `deadline`, or until something asks for a pass (`wakeForPass`). A wake that
    /// only moves a webhook's spaced fetch earlier (`fetchNow`) moves the deadline, and the loop
    /// sleeps on: it is not a pass of its own.
    ///
    /// On a shared store it also looks at the store's next fire time every second: the leader
    /// may have applied a schedule that fires sooner, or another replica may have left fires.
    private func sleep(until deadline: Date) async {
        var deadline = deadline
        let asked = lock.withLock { passWakes }
        let shared = workspace.isShared
        while true {
            let until = shared ? min(deadline, clock.now().addingTimeInterval(Self.sharedLookInterval)) : deadline
            await withTaskGroup(of: Void.self) { group in
                group.addTask { [clock, until] in try? await clock.sleep(until: until) }
                group.addTask { [wake] in await wake.wait() }
                await group.next()
                group.cancelAll()
            }
            if clock.now() >= deadline || Task.isCancelled { return }
            let (woken, fetchAt) = lock.withLock { (passWakes != asked || stopping, requestedFetch) }
            if woken { return }
            if let fetchAt, fetchAt < deadline { deadline = fetchAt }
            if shared, let next = try? nextWake(), next < deadline { deadline = next }
        }
    }

    /// How often a sleeping replica of a shared store looks at the store's next fire time (seconds).
    static let sharedLookInterval: TimeInterval = 1

    /// Counts the wakes that ask for a pass (a run's end, a handed-over run, a stop, a push).
    private var passWakes = 0

    /// Wakes the loop for a pass.
    func wakeForPass() {
        lock.withLock { passWakes += 1 }
        wake.signal()
    }

    /// One pass: fetch and apply when a fetch is due, decide every due fire time, start the runs
    /// (returned, for the caller to execute), publish what is queued.
    public func pass() async -> (PassSummary, [StartedRun]) {
        let started = DispatchTime.now()
        var summary = PassSummary()
        let now = clock.now()
        let observer = observing
        observer?.passStarted(at: now)
        defer { observer?.passEnded(at: clock.now()) }
        let first = lock.withLock { () -> Bool in
            defer { startedUp = true }
            return !startedUp
        }
        // On a shared store only the leader applies, publishes, notifies and runs requests; every
        // replica runs scheduled fires. (Taken once: the lead may move while the pass runs.)
        let leads = workspace.leads
        let fetchDue = lock.withLock { () -> Bool in
            let due = (nextFetch.map { now >= $0 } ?? true) || (requestedFetch.map { now >= $0 } ?? false)
            // This fetch answers the requests made until now; one made while it runs fetches again.
            if due, let requested = requestedFetch, requested <= now { requestedFetch = nil }
            return due
        }
        if fetchDue {
            summary.fetched = true
            await fetchAndApply(at: now, applying: leads, into: &summary)
            lock.withLock { nextFetch = now.addingTimeInterval(interval) }
        }
        var runs: [StartedRun] = []
        var phases = PhaseClock()
        defer { logger.debug("pass phases", metadata: phases.metadata([:])) }
        if leads && workspace.isShared { recoverLostRuns() }
        if !leads { await fetchAppliedRevision() }
        do {
            if first && leads { try workspace.syncScheduleStates(at: now) }
            runs = try decide(at: now, startup: first && workspace.standing.firesAtStartup.get(), into: &summary)
            phases.lap("decide")
        } catch {
            summary.problem = [summary.problem, "scheduling failed: \(error)"].compactMap { $0 }.joined(separator: "; ")
            logger.error("scheduling failed", metadata: ["error": "\(error)"])
        }
        guard leads else {
            summary.milliseconds = Int((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)
            return (summary, runs)
        }
        do {
            summary.expired = try workspace.expireRequests(at: now)
            phases.lap("expire")
            runs += try approvedRuns(at: now, into: &summary)
            phases.lap("approved")
            runs += try handedOverRuns(at: now, into: &summary)
            phases.lap("handedOver")
        } catch {
            summary.problem = [summary.problem, "workflow requests failed: \(error)"].compactMap { $0 }.joined(separator: "; ")
            logger.error("workflow requests failed", metadata: ["error": "\(error)"])
        }
        // Off the runs' path: what this pass's runs queued is sent at the next pass (or, with
        // --once, after them); what failed before is retried when due. Before publishing, which
        // can take a while when many reports wait.
        summary.notified = try? await offload({ [workspace] in try workspace.deliverNotifications() })
        phases.lap("notify")
        let wokenByARunsEnd = !summary.fetched && runs.isEmpty
        let publishNow = lock.withLock { () -> Bool in
            let now = DispatchTime.now().uptimeNanoseconds
            guard !wokenByARunsEnd || running.isEmpty || lastPublish.map({ now - $0 >= Self.publishSpacingWhileBusy }) ?? true
            else { return false }
            lastPublish = now
            return true
        }
        // One batch per pass, so that a pass stays short when thousands wait; when the batch was
        // full, the loop passes again at once (see `run`).
        let publishing = DispatchTime.now().uptimeNanoseconds
        if publishNow { summary.published = try? await offload({ [workspace] in try workspace.publishPending(batches: 1) }) }
        summary.publishMilliseconds = Int((DispatchTime.now().uptimeNanoseconds - publishing) / 1_000_000)
        phases.lap("publish")
        summary.milliseconds = Int((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)
        return (summary, runs)
    }

    /// When the leader last looked for the runs of replicas whose lease ran out (monotonic).
    private var lastRecovery: UInt64?

    /// The leader records the runs of replicas whose lease ran out as lost, at most once a second.
    private func recoverLostRuns() {
        let due = lock.withLock { () -> Bool in
            let now = DispatchTime.now().uptimeNanoseconds
            guard lastRecovery.map({ now - $0 >= 1_000_000_000 }) ?? true else { return false }
            lastRecovery = now
            return true
        }
        guard due else { return }
        do {
            try workspace.recoverInterruptedRuns(by: "reconcile")
        } catch {
            logger.error("cannot record the runs of a lost replica; tried again at the next pass", metadata: ["error": "\(error)"])
        }
    }

    /// The applied revision a follower has in its clone (see `Workspace.fetchAppliedRevisionIfMissing`).
    private var fetchedApplied: String?

    /// On a follower, makes sure the clone has the revision the leader applied, before its runs read it.
    private func fetchAppliedRevision() async {
        let workspace = self.workspace
        do {
            let applied = try workspace.store.appliedRevision()?.revision
            guard applied != lock.withLock({ fetchedApplied }) else { return }
            let fetched = try await offload { try workspace.fetchAppliedRevisionIfMissing() }
            lock.withLock { fetchedApplied = fetched }
        } catch {
            logger.warning("cannot fetch the revision the leader applied; runs that read the repository's files may fail",
                           metadata: ["error": "\(error)"])
        }
    }

    /// Fetches, then (with `applying`: the leader) applies the branch when it moved.
    private func fetchAndApply(at now: Date, applying: Bool, into summary: inout PassSummary) async {
        let workspace = self.workspace
        let observer = observing
        do {
            try await offload { try workspace.fetch() }
            observer?.fetched(at: clock.now(), problem: nil)
        } catch {
            summary.problem = "fetch failed, the applied state keeps running: \(error)"
            logger.warning("fetch failed", metadata: ["error": "\(error)"])
            observer?.fetched(at: clock.now(), problem: "\(error)")
            return
        }
        guard applying else { return }
        defer { observer?.applied(at: clock.now(), problem: summary.problem) }
        do {
            let plan = try await offload { try workspace.apply(ref: nil, at: now) }
            if plan.appliedRevision != plan.revision { summary.applied = plan }
        } catch ReconcilerError.invalidManifests(let revision, let error) {
            summary.problem = "revision \(revision.prefix(7)) is invalid (\(error.problems.count) problems); nothing was applied, "
                + "the last good revision keeps running"
            do {
                try workspace.recordRejection(revision: revision, problems: error.problems.map(\.description), at: now)
            } catch {
                logger.error("cannot record the rejected revision", metadata: ["error": "\(error)"])
            }
        } catch {
            summary.problem = "apply failed, the applied state keeps running: \(error)"
        }
    }

    /// A fire time to act on in this pass.
    struct DueFire {
        let schedule: String
        let target: String
        let fireTime: Date
        let notes: [String]
        /// From a timed trigger (false: `atStartup`), so it moves the stored next fire time.
        let timed: Bool
    }

    /// What becomes of a due fire time.
    enum FireVerdict {
        /// A run of its collection starts.
        case start
        /// A run of its collection already started for this minute, fired by another schedule.
        case merge
        /// It is recorded as skipped, for this reason.
        case skip(String)
        /// It is left unrecorded, for another replica of a shared store (beyond this one's share).
        case leave
    }

    /// One fire time of one schedule for one collection.
    struct FireKey: Hashable {
        let schedule: String
        let target: String
        let at: Date
    }

    /// Decides every due fire time, records them (each a claim), and returns the runs to start.
    func decide(at now: Date, startup: Bool, into summary: inout PassSummary) throws -> [StartedRun] {
        let due = try workspace.store.dueSchedules(at: now)
        let hashes = Dictionary(due.map { ($0.schedule, $0.hash) }) { first, _ in first }
        // Decoding and compiling a schedule costs more than deciding it: keep them between passes,
        // by the spec hash the stored fire times were computed from.
        func schedule(_ name: String) throws -> FireSchedule? {
            let hash = hashes[name]
            if let hash, let known = lock.withLock({ compiled[name] }), known.hash == hash { return known.schedule }
            var made: FireSchedule?
            if let spec = try workspace.store.manifest(ObjectKey(.schedule, name))?.spec, case .schedule(let s) = spec {
                made = try? FireSchedule(s)
            }
            if let hash { lock.withLock { compiled[name] = (hash, made) } }
            return made
        }
        var toRun: [DueFire] = []
        var records: [FireRecord] = []
        // On a shared store a replica claims its share of the due fires: as many as it has free
        // run slots, or an even share among the live replicas when that is more (those wait
        // for a slot here); the others take the rest. Each replica starts at its own place in
        // the due list, so that they seldom reach for the same fires at once. It decides no
        // more due schedules than it claims.
        let shared = workspace.isShared
        let limit = workspace.home.config.concurrentRunLimit
        var quota = Int.max
        var ordered = due[...]
        if shared {
            let peers = workspace.standing.peers.get()
            let share = (due.count + peers.count - 1) / max(1, peers.count)
            let free = limit - lock.withLock { running.count }
            quota = free <= 0 ? 0 : max(free, share)
            let offset = min(due.count, peers.position * share)
            ordered = due[offset...] + due[..<offset]
        }
        for state in ordered {
            if toRun.count >= quota { break }
            guard let nextFire = state.nextFire else { continue }
            guard let fires = try schedule(state.schedule) else {
                records.append(FireRecord(schedule: state.schedule, target: state.target, fireTime: nextFire, handledAt: now,
                                          outcome: .skipped, runId: nil, note: "the schedule is no longer applied",
                                          nextFire: nil))
                continue
            }
            var pending = [nextFire] + fires.fires(after: nextFire, through: now, limit: 10_000)
            if pending.count > 10_000, let latest = fires.latest(atOrBefore: now), latest > pending[pending.count - 1] {
                pending.append(latest)
            }
            let decision = FireDecision.decide(pending: pending, now: now, missedRuns: fires.missedRuns,
                                               startingDeadline: fires.startingDeadline)
            let next = fires.next(after: now)
            switch decision.action {
            case .run(let scheduledFor):
                toRun.append(DueFire(schedule: state.schedule, target: state.target, fireTime: scheduledFor,
                                     notes: decision.note.map { [$0] } ?? [], timed: true))
                if let note = decision.note {
                    logger.notice("missed runs", metadata: ["schedule": "\(state.schedule)", "collection": "\(state.target)",
                                                            "note": "\(note)"])
                }
            case .skip:
                records.append(FireRecord(schedule: state.schedule, target: state.target, fireTime: pending[pending.count - 1],
                                          handledAt: now, outcome: .skipped, runId: nil, note: decision.note, nextFire: next))
                logger.notice("fire skipped", metadata: ["schedule": "\(state.schedule)", "collection": "\(state.target)",
                                                         "note": "\(decision.note ?? "")"])
            }
        }
        if startup {
            for (name, entry) in try workspace.compiledSchedules().sorted(by: { $0.key < $1.key }) where entry.schedule.firesAtStartup {
                for target in entry.spec.targets {
                    toRun.append(DueFire(schedule: name, target: target, fireTime: now, notes: ["at the reconciler's start"],
                                         timed: false))
                }
            }
        }
        var runs: [StartedRun] = []
        var starting = 0
        let windows = toRun.isEmpty ? false : try workspace.hasSyncWindows()
        // On a shared store a replica starts no more than its quota (the others take the rest),
        // and a collection running on another replica is skipped as running.
        let elsewhere = shared && !toRun.isEmpty
            ? Dictionary(try workspace.store.runsInProgress().map { ($0.collection, $0) }) { first, _ in first } : [:]
        for fire in toRun {
            let (scheduleName, target, fireTime, notes, timed) = (fire.schedule, fire.target, fire.fireTime, fire.notes, fire.timed)
            let next = timed ? (try schedule(scheduleName))?.next(after: now) : nil
            func record(_ outcome: FireRecord.Outcome, _ note: String?) {
                records.append(FireRecord(schedule: scheduleName, target: target, fireTime: fireTime, handledAt: now,
                                          outcome: outcome, runId: nil, note: note, nextFire: next, timed: timed))
            }
            let minute = Int((fireTime.timeIntervalSince1970 / 60).rounded(.down))
            let scheduled = ScheduledRun(schedule: scheduleName, scheduledFor: fireTime, notes: notes)
            let deadline = (try schedule(scheduleName))?.timeout.map { now.addingTimeInterval(TimeInterval($0)) }
            let control = RunControl(clock: clock, deadline: deadline, holdsStore: workspace.holdsStore.get())
            let firedBy = timed ? scheduleName : "\(scheduleName)@startup"
            // Outside a sync window the fire is skipped, with the reason; the next one may be inside.
            if windows, let closed = try workspace.closedWindow(collection: target, at: now) {
                record(.skipped, "outside the sync window: \(closed)")
                logger.notice("fire skipped", metadata: ["schedule": "\(scheduleName)", "collection": "\(target)",
                                                         "reason": "outside the sync window: \(closed)"])
                continue
            }
            let verdict = lock.withLock { () -> FireVerdict in
                if stopping { return .skip("the reconciler is stopping") }
                if let last = startedMinute[target], last.minute == minute {
                    if !last.firedBy.contains(firedBy) {
                        startedMinute[target]?.firedBy.insert(firedBy)
                        return .merge
                    }
                }
                if let current = running[target] {
                    return .skip("skipped: \(target) is still running (started for \(current.startedFor))")
                }
                if let other = elsewhere[target] {
                    return .skip("skipped: \(target) is still running on another replica (run \(other.id), started "
                        + "\(RunReport.timestamp(other.startedAt)))")
                }
                if shared && starting >= quota { return .leave }
                starting += 1
                running[target] = (control, "schedule \(scheduleName) at \(FireDecision.stamp(fireTime))")
                startedMinute[target] = (minute, [firedBy])
                return .start
            }
            switch verdict {
            case .start:
                record(.started, notes.first)
                runs.append(StartedRun(collection: target, scheduled: scheduled, request: nil, control: control) { [self] in
                    await slots.acquire()
                    await self.execute(target, scheduled, control)
                    slots.release()
                })
            case .merge:
                record(.merged, "\(target) already ran for this minute's fire time")
                summary.merged += 1
            case .skip(let reason):
                record(.skipped, reason)
                logger.notice("fire skipped", metadata: ["schedule": "\(scheduleName)", "collection": "\(target)",
                                                         "reason": "\(reason)"])
            case .leave:
                summary.left += 1
            }
        }
        summary.due = due.count + (startup ? toRun.filter { !$0.timed }.count : 0)
        /// A run that will not start gives its collection's running mark back.
        func forget(_ run: StartedRun) {
            lock.withLock { if running[run.collection]?.control === run.control { running[run.collection] = nil } }
        }
        let claimed: [FireRecord]
        do {
            claimed = try workspace.store.recordFires(records)
        } catch {
            runs.forEach(forget)
            throw error
        }
        // A fire time another process recorded first (a replica of a shared store) is its to
        // run: the runs of fires not claimed here do not start.
        let started = Set(claimed.filter { $0.outcome == .started }.map { FireKey(schedule: $0.schedule, target: $0.target, at: $0.fireTime) })
        var kept: [StartedRun] = []
        for run in runs {
            guard let scheduled = run.scheduled else { continue }
            if started.contains(FireKey(schedule: scheduled.schedule, target: run.collection, at: scheduled.scheduledFor)) {
                kept.append(run)
                summary.started.append(run.collection)
            } else {
                forget(run)
                logger.notice("fire claimed elsewhere", metadata: ["collection": "\(run.collection)"])
            }
        }
        summary.skipped = claimed.filter { $0.outcome == .skipped }.count
        return kept
    }

    /// Starts the job of every approved request whose collection is not running (those wait for
    /// a later pass), oldest request first.
    func approvedRuns(at now: Date, into summary: inout PassSummary) throws -> [StartedRun] {
        var runs: [StartedRun] = []
        for request in try workspace.requests(statuses: [.approved]) {
            // An approved job waits for its sync window to open.
            if try workspace.closedWindow(collection: request.collection, jobs: [request.job], at: now) != nil { continue }
            let control = RunControl(clock: clock, deadline: nil, holdsStore: workspace.holdsStore.get())
            let free = lock.withLock { () -> Bool in
                guard !stopping, running[request.collection] == nil else { return false }
                running[request.collection] = (control, "request \(request.id)")
                return true
            }
            guard free else { continue }
            summary.approved.append(request.id)
            runs.append(StartedRun(collection: request.collection, scheduled: nil, request: request.id, control: control) {
                [self] in
                await slots.acquire()
                defer { slots.release() }
                logger.info("run started", metadata: ["collection": "\(request.collection)", "request": "\(request.id)",
                                                      "job": "\(request.job)"])
                do {
                    let workspace = self.workspace
                    let clock = self.clock
                    if try await offload({ try workspace.runApproved(request, control: control, at: clock.now()) }) == nil {
                        logger.notice("approved request expired: its job changed", metadata: ["request": "\(request.id)"])
                    }
                } catch {
                    logger.error("run could not start", metadata: ["request": "\(request.id)", "error": "\(error)"])
                }
                finished(request.collection)
            })
        }
        return runs
    }

    /// Takes the collection's slot for a run, unless it runs already or the loop stops.
    func claimSlot(for collection: String, control: RunControl, startedFor: String) -> Bool {
        lock.withLock { () -> Bool in
            guard !stopping, running[collection] == nil else { return false }
            running[collection] = (control, startedFor)
            return true
        }
    }

    /// Whether `git gc --auto` runs on the home's clone now, and when it last started (monotonic).
    private var packing = false
    private var lastPacking: UInt64?
    /// The clone is looked at for packing when the loop goes idle, at most this often.
    static let packingSpacing: UInt64 = 600_000_000_000

    /// When the loop goes idle, at most every 10 minutes: packs the clone's loose objects if
    /// there are many (`GitRepository.packLooseObjects`), in the background, so that a fire due
    /// meanwhile is not held up. A failure is logged and tried again at the next occasion.
    func packRepositoryWhenDue() {
        let start = lock.withLock { () -> Bool in
            let now = DispatchTime.now().uptimeNanoseconds
            guard !packing, !stopping, lastPacking.map({ now - $0 >= Self.packingSpacing }) ?? true else { return false }
            packing = true
            lastPacking = now
            return true
        }
        guard start else { return }
        let workspace = self.workspace
        let logger = self.logger
        Task.detached { [self] in
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                let said = try await offload { try workspace.packRepository() }
                logger.debug("looked at the home's clone for packing", metadata: [
                    "ms": "\((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)", "git": "\(said ?? "")"])
            } catch {
                logger.warning("packing the home's clone failed; it is tried again later", metadata: ["error": "\(error)"])
            }
            lock.withLock { packing = false }
        }
    }

    /// Wakes the loop for a pass now (a run was handed over).
    public func wakeUp() { wakeForPass() }

    /// Wakes the loop for a pass that fetches at once (a push webhook). A burst makes at most two
    /// fetches: the first request fetches at once; those within `fetchSpacing` of it make one
    /// more fetch, when that time is up.
    public func fetchNow() {
        let now = clock.now()
        lock.withLock {
            if let last = lastFetchRequest, now.timeIntervalSince(last) < Self.fetchSpacing {
                let due = last.addingTimeInterval(Self.fetchSpacing)
                requestedFetch = min(requestedFetch ?? due, due)
            } else {
                lastFetchRequest = now
                requestedFetch = now
                passWakes += 1
            }
        }
        // A spaced fetch only moves a sleeping loop's deadline (see `sleep(until:)`).
        wake.signal()
    }

    /// When `fetchNow` last asked for a fetch at once.
    private var lastFetchRequest: Date?
    /// Fetches asked for by `fetchNow` are at least this far apart (seconds).
    static let fetchSpacing: TimeInterval = 1

    /// Tells `observer` what the loop does from now on, and every run the workspace records.
    public func observe(_ observer: any LoopObserver) {
        lock.withLock { self.observer = observer }
        workspace.observeRuns { observer.runRecorded($0) }
    }

    private var observing: (any LoopObserver)? { lock.withLock { observer } }

    /// How often the loop fetches, in seconds.
    public var fetchInterval: TimeInterval { interval }

    func finished(_ collection: String) {
        lock.withLock { running[collection] = nil }
        wakeForPass()
    }

    private func execute(_ collection: String, _ scheduled: ScheduledRun, _ control: RunControl) async {
        let run = runCollection
        observing?.scheduledRunStarted(collection: collection, scheduledFor: scheduled.scheduledFor, at: clock.now())
        logger.info("run started", metadata: ["collection": "\(collection)", "schedule": "\(scheduled.schedule)",
                                              "scheduledFor": "\(FireDecision.stamp(scheduled.scheduledFor))"])
        do {
            // The workspace logs the run's end, with its id and status.
            _ = try await offload { try run(collection, scheduled, control) }
        } catch {
            logger.error("run could not start", metadata: ["collection": "\(collection)", "error": "\(error)"])
        }
        finished(collection)
    }
}

extension Workspace {
    /// Queues the page of a revision that failed validation, once per revision.
    func recordRejection(revision: String, problems: [String], at date: Date) throws {
        guard try !store.hasReport(kind: .rejected, subject: revision) else { return }
        let commit = ObjectID(hex: revision)
        let info = commit.flatMap { try? repository.commitInfo($0) }
        let publication = ReportPages.rejection(
            revision: revision, author: info.map { "\($0.authorName) <\($0.authorEmail)>" } ?? "unknown",
            summary: info?.summary ?? "", problems: problems, at: date, applied: try store.appliedRevision()?.revision)
        try store.save(StoredRejection(revision: revision, rejectedAt: date, problems: problems.count,
                                       page: publication.files.first?.path ?? "rejected/", running: try store.appliedRevision()?.revision),
                       page: publication)
    }
}


