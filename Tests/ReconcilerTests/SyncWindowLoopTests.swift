import Foundation
@testable import Reconciler
import StateStore
import TestSupport
import Testing

/// Sync windows on an injected clock: the reconciler skips a scheduled fire inside a closed
/// window (with the reason) and runs the next one after it; a manual run at the same time is
/// refused, and runs with the override, which its report records.
@Suite struct SyncWindowLoopTests {
    // 2026-11-25 is a Wednesday.
    static let window = """
        apiVersion: syncwright.dev/v1
        kind: Policy
        metadata: { name: quiet }
        spec:
          windows:
            - name: midday
              match: { connection: out-a }
              timeZone: UTC
              deny: [ { days: [Wed], from: "10:00", to: "12:00" } ]

        """

    @Test func scheduledFiresWaitForTheWindowAndManualRunsAreRefusedUnlessOverridden() async throws {
        let fixture = try loopFixture(schedules: scheduleYAML("hourly", targets: ["alpha", "beta"], "triggers: [ { every: 1h } ]"))
        try fixture.write(["policies/quiet.yaml": Self.window])
        _ = try fixture.commit("a window")
        let folder = try TemporaryFolder()
        let clock = ManualClock(at("2026-11-25T09:30:00Z"))
        let loop = ReconcileLoop(workspace: try makeWorkspace(fixture, folder), clock: clock, interval: 86_400, logger: quiet)
        func pass() async -> PassSummary {
            let (summary, runs) = await loop.pass()
            for run in runs { await run.work() }
            return summary
        }
        _ = await pass()

        clock.set(at("2026-11-25T10:00:05Z"))
        let inside = await pass()
        #expect(inside.started == ["beta"], "alpha writes out-a, closed until 12:00")
        let skipped = try #require(try loop.workspace.store.fires(target: "alpha").first)
        #expect(skipped.outcome == .skipped)
        #expect(skipped.note == "outside the sync window: job copy-a writes out-a, and policy quiet's window midday "
            + "(no writes Wed 10:00–12:00 (UTC)) is closed at 2026-11-25 10:00 UTC")
        #expect(csvLines(loop.workspace, "out-a.csv") == 0)

        // A manual run now is refused; with the override it runs, and says so.
        let control = RunControl(clock: clock, deadline: nil)
        #expect(throws: ReconcilerError.self) { try loop.workspace.run(collection: "alpha", control: control) }
        let overridden = try loop.workspace.run(collection: "alpha", control: control, overrideWindow: true).report
        #expect(overridden.status == .succeeded)
        #expect(overridden.windowOverride?.hasPrefix("run with --override-window: job copy-a writes out-a") == true)
        #expect(csvLines(loop.workspace, "out-a.csv") == 4)

        // After the window: the next fire runs.
        clock.set(at("2026-11-25T12:00:05Z"))
        let after = await pass()
        #expect(after.started.sorted() == ["alpha", "beta"])
        #expect(try loop.workspace.store.fires(target: "alpha").first?.outcome == .started)
    }
}
