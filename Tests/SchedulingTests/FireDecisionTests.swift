import Foundation
import Manifests
@testable import Scheduling
import Testing

@Test("an on-time fire runs with no note")
func onTime() {
    let d = FireDecision.decide(pending: [utc("2026-11-25T02:30:00Z")], now: utc("2026-11-25T02:30:01Z"),
                                missedRuns: .runOnce, startingDeadline: nil)
    #expect(d == FireDecision(action: .run(scheduledFor: utc("2026-11-25T02:30:00Z")), missed: [], note: nil))
}

@Test("after downtime, runOnce runs one catch-up and says which run it catches up")
func runOnceCatchUp() {
    let d = FireDecision.decide(pending: [utc("2026-11-25T02:30:00Z")], now: utc("2026-11-25T06:00:00Z"),
                                missedRuns: .runOnce, startingDeadline: nil)
    #expect(d.action == .run(scheduledFor: utc("2026-11-25T02:30:00Z")))
    #expect(d.note == "missed run of 2026-11-25T02:30:00Z, caught up at 2026-11-25T06:00:00Z")
    let many = FireDecision.decide(pending: [utc("2026-11-23T02:30:00Z"), utc("2026-11-24T02:30:00Z"), utc("2026-11-25T02:30:00Z")],
                                   now: utc("2026-11-25T06:00:00Z"), missedRuns: .runOnce, startingDeadline: nil)
    #expect(many.action == .run(scheduledFor: utc("2026-11-25T02:30:00Z")), "one run, not three")
    #expect(many.missed.count == 3)
    #expect(many.note == "missed 3 runs, from 2026-11-23T02:30:00Z to 2026-11-25T02:30:00Z, caught up at 2026-11-25T06:00:00Z")
}

@Test("skip records the missed runs and runs nothing")
func skipMissed() {
    let d = FireDecision.decide(pending: [utc("2026-11-24T02:30:00Z"), utc("2026-11-25T02:30:00Z")],
                                now: utc("2026-11-25T06:00:00Z"), missedRuns: .skip, startingDeadline: nil)
    #expect(d.action == .skip)
    #expect(d.missed.count == 2)
    #expect(d.note == "missed 2 runs, from 2026-11-24T02:30:00Z to 2026-11-25T02:30:00Z; missedRuns is skip, so nothing ran")
}

@Test("skip still runs the fire that is on time, and records the older ones")
func skipKeepsTheCurrentFire() {
    let d = FireDecision.decide(pending: [utc("2026-11-25T05:00:00Z"), utc("2026-11-25T06:00:00Z")],
                                now: utc("2026-11-25T06:00:02Z"), missedRuns: .skip, startingDeadline: nil)
    #expect(d.action == .run(scheduledFor: utc("2026-11-25T06:00:00Z")))
    #expect(d.missed == [utc("2026-11-25T05:00:00Z")])
}

@Test("a fire older than startingDeadline is never started, whatever missedRuns says")
func startingDeadline() {
    let d = FireDecision.decide(pending: [utc("2026-11-25T02:30:00Z")], now: utc("2026-11-25T02:45:00Z"),
                                missedRuns: .runOnce, startingDeadline: 600)
    #expect(d.action == .skip)
    #expect(d.note == "missed run of 2026-11-25T02:30:00Z more than the startingDeadline of 600 s ago, so not started")
    let inTime = FireDecision.decide(pending: [utc("2026-11-25T02:30:00Z")], now: utc("2026-11-25T02:35:00Z"),
                                     missedRuns: .runOnce, startingDeadline: 600)
    #expect(inTime.action == .run(scheduledFor: utc("2026-11-25T02:30:00Z")))
}
