import Foundation
import GitKit
import Logging
import Planner
import Reports
import StateStore
import Sync

extension RunReport.Statistics {
    init(_ s: JobStatistics) {
        self.init(read: s.read, created: s.created, updated: s.updated, deleted: s.deleted, unchanged: s.unchanged,
                  skipped: s.skipped, failed: s.failed, unresolved: s.unresolved)
    }
}

/// What publishing the outbox did.
public struct PublishOutcome: Sendable {
    /// Reports now on the remote's reports branch, oldest first: (run id or revision, commit).
    public let published: [(subject: String, commit: String)]
    /// Reports still waiting (the remote could not be reached, or kept refusing).
    public let waiting: Int
    /// Why some reports are still waiting.
    public let problem: String?
    /// More reports may wait: the batches allowed were all full.
    public var more = false

    init(published: [(subject: String, commit: String)], waiting: Int, problem: String?) {
        self.published = published
        self.waiting = waiting
        self.problem = problem
    }
}

extension Workspace {
    /// Publishes the reports in the outbox, oldest first, onto the reports branch of the remote,
    /// in batches of up to `publishBatch` (one push each): all of them, or at most `batches`
    /// batches (then `more` says whether others may wait).
    ///
    /// Never throws for an unreachable remote: the reports stay queued (the next run, apply or
    /// reconcile publishes them) and `problem` says why. One home publishes from one process at
    /// a time (a lock file in the home), so two commands never publish the same report twice.
    public func publishPending(batches: Int = .max) throws -> PublishOutcome {
        let lock = try HomeLock(path: (home.path as NSString).appendingPathComponent("publish.lock"))
        defer { lock.release() }
        var published: [(subject: String, commit: String)] = []
        var waiting = 0
        for _ in 0..<max(1, batches) {
            let (outcome, full) = try publishBatch()
            published += outcome.published
            waiting = outcome.waiting
            if outcome.problem != nil { return PublishOutcome(published: published, waiting: outcome.waiting, problem: outcome.problem) }
            if !full { return PublishOutcome(published: published, waiting: waiting, problem: nil) }
        }
        var outcome = PublishOutcome(published: published, waiting: waiting, problem: nil)
        outcome.more = true
        return outcome
    }

    /// Reports published per commit and push.
    static let publishBatch = 1_000

    /// One batch of `publishPending`, under its lock; `full` when it took a whole batch.
    private func publishBatch() throws -> (outcome: PublishOutcome, full: Bool) {
        let items = try store.unpublished(limit: Self.publishBatch)
        let full = items.count == Self.publishBatch
        guard !items.isEmpty else { return (PublishOutcome(published: [], waiting: 0, problem: nil), false) }
        var publications: [Publication] = []
        var ids: [Int64] = []
        var unreadable: [Int64] = []
        for item in items {
            if let publication = try? item.page() {
                publications.append(publication)
                ids.append(item.id)
            } else {
                unreadable.append(item.id)
            }
        }
        if !unreadable.isEmpty {
            try store.markAttempt(unreadable, error: "the stored report cannot be read; it is kept, and skipped")
        }
        let publisher = ReportPublisher(repository: repository, branch: home.config.reportsBranch,
                                        author: home.config.signature, credentials: try home.config.gitCredentials())
        do {
            let result = try publisher.publish(publications)
            // Fault injection for tests only: die the way a crash would, after the push reached
            // the remote and before the outbox knows (see Tests/CLITests/PublishCrashTests.swift).
            if ProcessInfo.processInfo.environment["SYNCWRIGHT_FAILPOINT"] == "after-push" { kill(getpid(), SIGKILL) }
            let commits = result.commits
            try store.markPublished(Dictionary(uniqueKeysWithValues: zip(ids, commits.map(\.hex))))
            logger.info("published reports", metadata: [
                "count": "\(commits.count)", "branch": "\(home.config.reportsBranch)", "attempts": "\(result.attempts)",
                "buildMs": "\(String(format: "%.1f", result.buildMilliseconds))",
                "pushMs": "\(String(format: "%.1f", result.pushMilliseconds))",
            ])
            let published = zip(items.filter { ids.contains($0.id) }, commits).map { ($0.subject, $1.hex) }
            return (PublishOutcome(published: published, waiting: unreadable.count, problem: nil), full)
        } catch let error as PublishError {
            try store.markAttempt(ids, error: error.message)
            // The command says so (once, in its own words); the log keeps it for the daemon's journal.
            logger.info("reports not published", metadata: ["error": "\(error.message)"])
            return (PublishOutcome(published: [], waiting: items.count,
                                   problem: "could not publish to the \(home.config.reportsBranch) branch of "
                                     + "\(home.config.remote): \(error.message)"), false)
        }
    }

    /// How many changes an apply page lists; a first apply of a large repository would otherwise
    /// write a page of tens of thousands of rows.
    static let applyPageChanges = 1_000

    /// The outbox's page for an applied plan.
    func applyPublication(_ plan: Plan, commit: ObjectID, at date: Date) -> Publication {
        // The page records what changed; a new object's fields are in the repository itself
        // (a first apply creates everything).
        var plan = plan
        plan.listsNewFields = false
        let info = try? repository.commitInfo(commit)
        let committer = try? repository.committer(of: commit)
        let change = AppliedChange(
            revision: commit.hex, appliedAt: date, created: plan.count(.create), updated: plan.count(.update),
            deleted: plan.count(.delete), planMarkdown: plan.markdown(limit: Self.applyPageChanges),
            author: info.map { "\($0.authorName) <\($0.authorEmail)>" } ?? "unknown",
            committer: committer.map { "\($0.name) <\($0.email)>" } ?? "unknown",
            summary: info?.summary ?? "")
        return ReportPages.publication(for: change)
    }

    /// One pass of the reconciler: fetch; apply the branch's tip if it moved; publish the outbox.
    /// An invalid revision throws (nothing is applied); queued reports are published first.
    public func reconcileOnce() throws -> (plan: Plan, publish: PublishOutcome) {
        try fetch()
        let plan: Plan
        do {
            plan = try apply(ref: nil)
        } catch {
            _ = try? publishPending()
            throw error
        }
        return (plan, try publishPending())
    }
}

/// An exclusive `flock` on a file in the home, held until `release`.
final class HomeLock {
    private let descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ReconcilerError.lockFile(path: path, problem: "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                close(descriptor)
                throw ReconcilerError.lockFile(path: path, problem: "cannot lock \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
