import Foundation
import Reports

/// What the reconcile loop tells an observer (the daemon's metrics and health endpoints) as it
/// works. Called on the loop's tasks: implementations return quickly and never throw.
public protocol LoopObserver: Sendable {
    /// A pass began.
    func passStarted(at date: Date)
    /// A pass ended (its runs go on in the background).
    func passEnded(at date: Date)
    /// A fetch of the remote ended; `problem` says why it failed.
    func fetched(at date: Date, problem: String?)
    /// Applying the fetched branch ended (whether or not it moved); `problem` says why it failed.
    func applied(at date: Date, problem: String?)
    /// A scheduled run started (its slot taken), for a fire time of `scheduledFor`.
    func scheduledRunStarted(collection: String, scheduledFor: Date, at date: Date)
    /// A run's report was recorded (every run the process makes: scheduled, approved, handed over).
    func runRecorded(_ report: RunReport)
}
