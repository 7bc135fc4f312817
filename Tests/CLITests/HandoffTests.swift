import Foundation
import TestSupport
import Testing

/// "Sync now" with a reconciler running: `syncwright run` hands the run over through the state
/// store, follows it, and exits with its outcome; `--no-wait` prints the run id.
@Suite struct HandoffTests {
    @Test func runHandsItsRunToTheRunningReconciler() throws {
        let fixture = try examplesFixture()
        let folder = try TemporaryFolder("handoff")
        let home = try TestHome(fixture, in: folder).arguments

        let reconciler = try launchSyncwright(["reconcile", "--interval", "1h"] + home)
        defer { if reconciler.isRunning { kill(reconciler.processIdentifier, SIGKILL); reconciler.waitUntilExit() } }
        // Ready once it holds the home.
        let lock = folder.sub("h/reconciler.lock")
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !((try? String(contentsOfFile: lock, encoding: .utf8)) ?? "").contains("reconcile") {
            usleep(50_000)
        }

        let run = try syncwright(["run", "nightly-directory-sync"] + home)
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("Handed the run to the reconciler (pid \(reconciler.processIdentifier))"))
        #expect(run.stdout.contains("of nightly-directory-sync: awaitingApproval (manual"), "\(run.stdout)")
        #expect(run.stdout.contains("hr-users-to-corp"))

        // A preview is handed over too (the reconciler has the connections' secrets).
        let preview = try syncwright(["run", "nightly-directory-sync", "--preview", "--show", "2"] + home)
        #expect(preview.status == 0, "\(preview.stderr)")
        #expect(preview.stderr.contains("Handed the preview to the reconciler (pid \(reconciler.processIdentifier))"))
        #expect(preview.stdout.hasPrefix("Preview of nightly-directory-sync at revision "), "\(preview.stdout)")
        #expect(preview.stdout.contains("hr-users-to-corp: read "))

        let queued = try syncwright(["run", "nightly-directory-sync", "--no-wait"] + home)
        #expect(queued.status == 0, "\(queued.stderr)")
        let words = queued.stdout.split(separator: " ")
        let runID = try #require(words.count > 2 ? String(words[2]) : nil)
        #expect(queued.stdout.hasPrefix("Handed run \(runID) of nightly-directory-sync to the reconciler"))
        var found = false
        let until = Date().addingTimeInterval(30)
        while Date() < until, !found {
            found = try syncwright(["history", "--format", "json"] + home).stdout.contains("\"runId\" : \"\(runID)\"")
            if !found { usleep(100_000) }
        }
        #expect(found, "the reconciler ran the handed-over run \(runID)")
        // An unknown collection is refused at once, as a local run would be.
        let unknown = try syncwright(["run", "nightly-directory-synk"] + home)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no collection named 'nightly-directory-synk' is applied (did you mean 'nightly-directory-sync'?)"),
                "\(unknown.stderr)")

        kill(reconciler.processIdentifier, SIGTERM)
        reconciler.waitUntilExit()
        #expect(reconciler.terminationStatus == 0)
    }
}
