import Foundation
@testable import Reconciler
import Reports
import StateStore
import TestSupport
import Testing

/// More reports than one batch: every one is published, by commands at once, and by the loop one
/// batch per pass with the next pass at once (not at the next fetch, an hour later).
@Suite struct PublishBatchTests {
    /// A workspace with `count` report pages queued (rejection pages: each a file of its own).
    static func queued(_ count: Int, in folder: TemporaryFolder) throws -> (GitFixture, Workspace) {
        let fixture = try GitFixture(files: baseFiles)
        let workspace = try makeWorkspace(fixture, folder)
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        for index in 0..<count {
            let revision = String(format: "%040x", index + 1)
            let when = start.addingTimeInterval(TimeInterval(index))
            let page = ReportPages.rejection(revision: revision, author: "Ada <ada@corp.example>", summary: "r\(index)",
                                             problems: ["p"], at: when, applied: nil)
            try workspace.store.enqueue(page, kind: .rejected, subject: revision, at: when)
        }
        return (fixture, workspace)
    }

    static func pagesOnBranch(_ fixture: GitFixture) throws -> Int {
        try fixture.git(["ls-tree", "-r", "--name-only", "reports", "rejected/"], in: fixture.originPath)
            .split(separator: "\n").filter { $0.hasSuffix(".md") }.count
    }

    @Test func aCommandPublishesEveryBatch() throws {
        let folder = try TemporaryFolder()
        let (fixture, workspace) = try Self.queued(Workspace.publishBatch + 1, in: folder)
        let outcome = try workspace.publishPending()
        #expect(outcome.published.count == Workspace.publishBatch + 1 && outcome.problem == nil && !outcome.more)
        #expect(try workspace.backlog().reports == 0)
        #expect(try Self.pagesOnBranch(fixture) == Workspace.publishBatch + 1)
    }

    @Test func theLoopPublishesABatchAPassAndPassesAgainAtOnce() async throws {
        let folder = try TemporaryFolder()
        let (fixture, workspace) = try Self.queued(Workspace.publishBatch + 1, in: folder)
        let clock = ManualClock(Date())
        let loop = ReconcileLoop(workspace: workspace, clock: clock, interval: 3_600, logger: quiet)
        let seen = Summaries()
        let task = Task {
            await loop.run(once: false, onPass: { summary in
                seen.add(summary)
                if summary.published.map({ !$0.published.isEmpty && !$0.more }) ?? false { loop.stop() }
            })
        }
        // The clock never moves: only a pass asked for at once can come.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && !loop.isStopping { try await Task.sleep(nanoseconds: 20_000_000) }
        loop.stop()
        await task.value
        let published = seen.all.compactMap { $0.published?.published.count }.filter { $0 > 0 }
        // The first pass also applied the branch, whose page waits behind the 1,001.
        #expect(published == [Workspace.publishBatch, 2], "\(published)")
        #expect(try workspace.backlog().reports == 0)
        #expect(try Self.pagesOnBranch(fixture) == Workspace.publishBatch + 1)
    }
}

/// The summaries the loop reported, in order.
final class Summaries: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [PassSummary] = []
    func add(_ summary: PassSummary) { lock.withLock { list.append(summary) } }
    var all: [PassSummary] { lock.withLock { list } }
}
