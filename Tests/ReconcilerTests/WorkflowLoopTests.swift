import Foundation
import Reports
@testable import Reconciler
import TestSupport
import Testing

/// Workflow requests on an injected clock: expiry, and scheduled runs.
@Suite struct WorkflowLoopTests {
    let folder: TemporaryFolder

    init() throws { folder = try TemporaryFolder() }

    func loop(_ fixture: GitFixture, clock: ManualClock) throws -> ReconcileLoop {
        ReconcileLoop(workspace: try makeWorkspace(fixture, folder), clock: clock, interval: 3_600, logger: quiet)
    }

    func passAndRun(_ loop: ReconcileLoop) async -> PassSummary {
        let (summary, runs) = await loop.pass()
        for run in runs { await run.work() }
        return summary
    }

    @Test func aRequestExpiresAfterItsTimeAndALateApprovalIsIgnored() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("never", targets: ["alpha"], "triggers: [ { once: '2020-01-01T00:00' } ]"),
                                      workflow: "{ approvers: [bob@corp.example], expiresAfter: 2h }")
        let clock = ManualClock(at("2026-11-25T10:00:00Z"))
        let loop = try loop(fixture, clock: clock)
        _ = await passAndRun(loop)
        let run = try loop.workspace.run(collection: "beta", control: RunControl(clock: clock, deadline: nil))
        #expect(run.report.status == .awaitingApproval)
        let request = try #require(try loop.workspace.requests().first)
        #expect(request.status == .pending && request.requestedAt == at("2026-11-25T10:00:00Z"))
        #expect(request.expiresAt == at("2026-11-25T12:00:00Z"))

        clock.set(at("2026-11-25T11:59:59Z"))
        #expect(await passAndRun(loop).expired == 0, "one second before its time it is still pending")
        #expect(try loop.workspace.request(request.id).status == .pending)

        clock.set(at("2026-11-25T12:00:00Z"))
        #expect(await passAndRun(loop).expired == 1)
        let expired = try loop.workspace.request(request.id)
        #expect(expired.status == .expired && expired.note == "expired at 2026-11-25T12:00:00.000Z with no decision")

        // Bob's approval arrives too late: recorded, not counted, and nothing runs.
        try fixture.write(["approvals/late.yaml": """
            apiVersion: syncwright.dev/v1
            kind: Approval
            metadata: { name: approve-late }
            spec: { request: \(request.id), decision: approve }

            """])
        try fixture.commit("late approval", author: "Bob <bob@corp.example>")
        clock.set(at("2026-11-25T13:00:00Z"))
        let pass = await passAndRun(loop)
        #expect(pass.applied != nil && pass.approved.isEmpty)
        let late = try loop.workspace.request(request.id)
        #expect(late.status == .expired)
        #expect(late.decisions.map(\.note) == ["ignored: the request is already expired"])
        #expect(late.decisions.first?.author == "Bob <bob@corp.example>")
        #expect(csvLines(loop.workspace, "out-b.csv") == 0)
    }

    @Test func scheduledRunsSkipTheWorkflowUnlessTheJobRequiresIt() async throws {
        for (mode, raises) in [("skip", false), ("require", true)] {
            let fixture = try loopFixture(schedules: scheduleYAML("hourly", targets: ["beta"], "triggers: [ { every: 1h } ]"),
                                          workflow: "{ approvers: [bob@corp.example], onScheduledRuns: \(mode) }")
            let clock = ManualClock(at("2026-11-25T10:00:30Z"))
            let loop = ReconcileLoop(workspace: try makeWorkspace(fixture, folder, "home-\(mode)"), clock: clock,
                                     interval: 3_600, logger: quiet)
            _ = await passAndRun(loop)
            clock.set(at("2026-11-25T11:00:00Z"))
            #expect(await passAndRun(loop).started == ["beta"])
            let report = try #require(try loop.workspace.history(collection: "beta", limit: 1).first)
            #expect(report.trigger == .schedule)
            #expect(report.status == (raises ? .awaitingApproval : .succeeded), "onScheduledRuns: \(mode)")
            #expect(csvLines(loop.workspace, "out-b.csv") == (raises ? 0 : 4))
            let requests = try loop.workspace.requests()
            #expect(requests.count == (raises ? 1 : 0))
            if raises { #expect(requests.first?.requestedBy == "schedule hourly" && requests.first?.trigger == .schedule) }
        }
    }
}
