/// What waits in the store: reports to publish, notifications to deliver, workflow requests to
/// decide or carry out. Counted for the reconciler's metrics, at every scrape: cheap by design.
public struct Backlog: Sendable, Equatable {
    /// Report pages queued and not yet on the reports branch.
    public var reports = 0
    /// Notifications waiting for their (next) delivery attempt.
    public var notifications = 0
    /// Workflow requests waiting for a decision.
    public var pendingRequests = 0
    /// Approved requests whose job waits for the next pass.
    public var approvedRequests = 0

    public init(reports: Int = 0, notifications: Int = 0, pendingRequests: Int = 0, approvedRequests: Int = 0) {
        self.reports = reports
        self.notifications = notifications
        self.pendingRequests = pendingRequests
        self.approvedRequests = approvedRequests
    }
}
