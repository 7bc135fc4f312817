import Foundation
import Manifests
import Scheduling
import Testing

/// Sync windows on the wall clock of their time zone. Instants are given in UTC and checked
/// against the zone's wall time by hand (Europe/Berlin is UTC+1 in winter, UTC+2 in summer).
@Suite struct SyncWindowTests {
    func at(_ text: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        return try #require(formatter.date(from: text))
    }

    let businessHours = SyncWindow(name: "office", timeZone: "Europe/Berlin",
                                   deny: [WindowSpan(days: [.mon, .tue, .wed, .thu, .fri], from: "08:00", to: "18:00")])

    @Test func aDenyWindowIsClosedInsideItsHoursOnItsDays() throws {
        // Monday 2026-11-30: 07:59 and 18:00 Berlin are open, 08:00 and 17:59 closed.
        #expect(SyncWindows.isOpen(businessHours, at: try at("2026-11-30T06:59:00Z")))
        #expect(!SyncWindows.isOpen(businessHours, at: try at("2026-11-30T07:00:00Z")))
        #expect(!SyncWindows.isOpen(businessHours, at: try at("2026-11-30T16:59:00Z")))
        #expect(SyncWindows.isOpen(businessHours, at: try at("2026-11-30T17:00:00Z")))
        // Saturday noon is open.
        #expect(SyncWindows.isOpen(businessHours, at: try at("2026-11-28T11:00:00Z")))
        // In summer (UTC+2), 08:00 Berlin is 06:00 UTC.
        #expect(!SyncWindows.isOpen(businessHours, at: try at("2026-07-06T06:00:00Z")))
        #expect(SyncWindows.isOpen(businessHours, at: try at("2026-07-06T05:59:00Z")))
        #expect(SyncWindows.wallText(try at("2026-11-30T09:15:00Z"), in: businessHours) == "2026-11-30 10:15 Europe/Berlin")
        #expect(SyncWindows.describe(businessHours) == "no writes Mon, Tue, Wed, Thu, Fri 08:00–18:00 (Europe/Berlin)")
    }

    @Test func anAllowWindowIsOpenOnlyInsideItsHoursAndMayRunPastMidnight() throws {
        let saturdayNight = SyncWindow(name: "night", timeZone: "UTC",
                                       allow: [WindowSpan(days: [.sat], from: "22:00", to: "02:00")])
        #expect(!SyncWindows.isOpen(saturdayNight, at: try at("2026-11-28T21:59:00Z")))   // Sat 21:59
        #expect(SyncWindows.isOpen(saturdayNight, at: try at("2026-11-28T22:00:00Z")))    // Sat 22:00
        #expect(SyncWindows.isOpen(saturdayNight, at: try at("2026-11-29T01:59:00Z")))    // Sun 01:59, the night after Saturday
        #expect(!SyncWindows.isOpen(saturdayNight, at: try at("2026-11-29T02:00:00Z")))   // Sun 02:00
        #expect(!SyncWindows.isOpen(saturdayNight, at: try at("2026-11-29T22:30:00Z")))   // Sun 22:30: not a listed day
        let wholeDay = SyncWindow(name: "all", timeZone: "UTC", allow: [WindowSpan(days: [.tue], from: "00:00", to: "24:00")])
        #expect(SyncWindows.isOpen(wholeDay, at: try at("2026-12-01T23:59:00Z")))
        #expect(!SyncWindows.isOpen(wholeDay, at: try at("2026-12-02T00:00:00Z")))
    }
}

/// The ready-made window in `policies/business-hours.yaml`, parsed as a repository would.
@Suite struct ReadyMadeWindowTests {
    @Test func businessHoursAreClosedOnWeekdaysInBerlin() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("policies/business-hours.yaml"))
        let (manifests, problems) = ManifestParser.parse(file: "policies/business-hours.yaml", contents: data)
        try #require(problems.isEmpty, "\(problems)")
        guard case .policy(let policy)? = manifests.first?.spec else { Issue.record("not a policy"); return }
        let window = try #require(policy.windows.first)
        let formatter = ISO8601DateFormatter()
        #expect(!SyncWindows.isOpen(window, at: try #require(formatter.date(from: "2026-11-30T09:00:00Z"))), "Monday 10:00 Berlin")
        #expect(SyncWindows.isOpen(window, at: try #require(formatter.date(from: "2026-11-30T17:30:00Z"))), "Monday 18:30 Berlin")
        #expect(SyncWindows.isOpen(window, at: try #require(formatter.date(from: "2026-11-28T09:00:00Z"))), "Saturday")
    }
}
