import Foundation
import Manifests
import Notify
import Reports
import StateStore

/// What a delivery pass did.
public struct DeliveryPass: Sendable, Equatable {
    public var delivered = 0
    /// Attempts that failed and will be made again.
    public var retrying = 0
    /// Notifications given up on in this pass (too old, or refused for good).
    public var undelivered = 0
    /// One sentence per failed attempt: the destination and why.
    public var problems: [String] = []
}

extension Workspace {
    /// The default `repeatAfter`: an identical notification is held back for an hour.
    static let defaultRepeatAfter: TimeInterval = 3_600

    /// The channel `name` as applied at `revision` (nil when none is): read from the store once
    /// per revision, as every run of it asks. A run records what its revision's channels say;
    /// sending reads the channel as applied then.
    func channel(_ name: String, revision: String) throws -> NotificationChannelSpec? {
        let cached = channels.get()
        if cached.revision == revision, let spec = cached.specs[name] { return spec }
        let spec = try appliedChannel(name)
        channels.update { cache in
            if cache.revision != revision { cache = (revision, [:]) }
            cache.specs[name] = .some(spec)
        }
        return spec
    }

    /// The channel `name` as applied now, or nil.
    func appliedChannel(_ name: String) throws -> NotificationChannelSpec? {
        guard case .notificationChannel(let channel)? = try store.manifest(ObjectKey(.notificationChannel, name))?.spec else { return nil }
        return channel
    }

    /// What a recorded run notifies, decided when it is recorded on the collection's
    /// notification `state`: the triggers that hold, then per channel (and mail recipient) a
    /// message to queue; or nothing, held back as a repeat, when the last notification sent was
    /// the same one (same triggers, status and failing jobs) within `repeatAfter`. `recovered` is
    /// never held back, and anything sent in between (a recovery) makes the next failure news
    /// again. `change` is what recording the run does to the state.
    func notifications(for report: RunReport, collection spec: JobCollectionSpec, state: NotificationState?, at now: Date) throws
        -> (queued: [QueuedNotification], notified: RunReport.Notified?, change: NotificationStateChange?) {
        guard let settings = spec.notifications else { return ([], nil, nil) }
        let triggers = try firedTriggers(report, wanted: settings.when)
        guard !triggers.isEmpty else {
            return ([], RunReport.Notified(triggers: [], queued: [], reason: "no trigger held (when: "
                                           + settings.when.map(\.rawValue).joined(separator: ", ") + ")"), nil)
        }
        let failing = report.jobs.filter { $0.status == .failed || $0.stats.failed > 0 }.map(\.name).sorted()
        let dedupeKey = Canonical.hash([report.collection, triggers.map(\.rawValue).sorted().joined(separator: ","),
                                        report.status.rawValue, failing.joined(separator: ",")].joined(separator: "\u{1F}"))
        let window = settings.repeatAfter.flatMap { DurationText($0).map { TimeInterval($0.seconds) } } ?? Self.defaultRepeatAfter
        if !triggers.contains(.recovered), let state, state.dedupeKey == dedupeKey, now.timeIntervalSince(state.sentAt) < window {
            let reason = "held back: the same notification was sent less than \(settings.repeatAfter ?? "1h") ago (repeatAfter)"
            return ([], RunReport.Notified(triggers: triggers.map(\.rawValue), queued: [], reason: reason),
                    NotificationStateChange(collection: report.collection, decidedOn: state, change: .heldBack))
        }
        var queued: [QueuedNotification] = []
        var destinations: [String] = []
        for name in settings.channels ?? [] {
            guard let channel = try channel(name, revision: report.revision) else {
                continue // validation keeps a collection's channels applied
            }
            let recipients: [String?] = channel.type == .smtp ? settings.recipients : [nil]
            for recipient in recipients {
                let message = NotificationContent.message(for: report, triggers: triggers, suppressed: state?.heldBack ?? 0,
                                                          link: reportLink(report), channel: channel, channelName: name,
                                                          recipient: recipient)
                let notification = QueuedNotification(
                    runId: report.runId, collection: report.collection, channel: name, recipient: recipient, dedupeKey: dedupeKey,
                    status: .pending, message: message, createdAt: now, nextAttemptAt: now)
                queued.append(notification)
                destinations.append(notification.destination)
            }
        }
        return (queued, RunReport.Notified(triggers: triggers.map(\.rawValue), queued: destinations, reason: nil),
                NotificationStateChange(collection: report.collection, decidedOn: state, change: .sent(dedupeKey: dedupeKey, at: now)))
    }

    /// The collection's notification state as this process last saw it: all collections' are
    /// read at once on first use, then kept up to date by the runs this process records. A
    /// change by another process is caught when the run is recorded (`notificationStateMoved`).
    func notificationState(_ collection: String) throws -> NotificationState? {
        if let states = notificationStates.get() { return states[collection] }
        let states = try store.notificationStates()
        notificationStates.update { cached in cached = cached ?? states }
        return notificationStates.get()?[collection]
    }

    /// Notes a collection's notification state, as recorded (or found to be).
    func noteNotificationState(_ collection: String, _ state: NotificationState?) {
        notificationStates.update { cached in cached?[collection] = state }
    }

    /// Notifications of workflow requests whose status changes (or that are new), through the
    /// channels of their collection: a request raised is told to the job's approvers, with what
    /// the job would change and how to approve; one approved, denied, expired or executed is told
    /// to the requester (when that is an email address) and the approvers, but not to the one who
    /// decided. Never held back. Queued in the transaction that stores the requests.
    func notifications(forRequests requests: [ApprovalRequest], at now: Date) throws -> [QueuedNotification] {
        var out: [QueuedNotification] = []
        for request in requests {
            if let stored = try store.request(request.id), stored.status == request.status { continue }
            guard case .jobCollection(let collection)? = try store.manifest(ObjectKey(.jobCollection, request.collection))?.spec,
                  let settings = collection.notifications else { continue }
            let decider = request.decidedBy.map { Workflow.email(of: $0).lowercased() }
            var seen: Set<String> = []
            let recipients = (request.status == .pending ? request.approvers : [request.requestedBy] + request.approvers).filter { who in
                let address = Workflow.email(of: who).lowercased()
                return Workflow.isEmail(who) && address != decider && seen.insert(address).inserted
            }
            let subject = NotificationContent.requestSubject(request)
            let text = NotificationContent.requestText(request)
            for name in settings.channels ?? [] {
                guard let channel = try appliedChannel(name) else { continue }
                for recipient in channel.type == .smtp ? recipients.map(Optional.some) : [nil] {
                    let key = "\(request.id).\(request.status.rawValue).\(Canonical.hash((recipient ?? name).lowercased()).prefix(12))@syncwright"
                    let payload = channel.type == .webhook
                        ? NotificationContent.requestPayload(request, subject: subject, text: text, format: channel.format ?? .json) : nil
                    out.append(QueuedNotification(
                        runId: request.id, collection: request.collection, channel: name, recipient: recipient,
                        dedupeKey: "request:\(request.id):\(request.status.rawValue)", status: .pending,
                        message: NotificationMessage(subject: subject, text: text, html: NotificationContent.htmlParagraphs(text),
                                                     payload: payload, key: key),
                        createdAt: now, nextAttemptAt: now))
                }
            }
        }
        return out
    }

    /// Records a finished run with the notifications it calls for (and those of its workflow
    /// `requests`), in one transaction: a crash loses neither. They are decided on the
    /// collection's notification state as last seen; when another process changed it meanwhile,
    /// nothing is recorded, and the run decides again on the state as it is. `collection` nil:
    /// no longer applied, so no one is notified. `rendered` is called once the page is made.
    func recordNotifying(_ report: inout RunReport, collection: JobCollectionSpec?, logs: [String: [String]],
                         requests: [ApprovalRequest], rendered: () -> Void = {}) throws {
        let requestNotifications = try self.notifications(forRequests: requests, at: report.finishedAt)
        let name = report.collection
        var state = collection?.notifications == nil ? nil : try notificationState(name)
        for attempt in 1... {
            var notifications: [QueuedNotification] = []
            var change: NotificationStateChange?
            if let collection {
                let decided = try self.notifications(for: report, collection: collection, state: state, at: report.finishedAt)
                (notifications, report.notifications, change) = (decided.0, decided.1, decided.2)
            }
            let publication = ReportPages.publication(for: report, logs: logs)
            rendered()
            do {
                try store.record(report, logs: logs.mapValues { $0.joined(separator: "\n") }, page: publication,
                                 requests: requests.map(Self.publishable), notifications: notifications + requestNotifications,
                                 notificationState: change)
                if let change { noteNotificationState(name, change.result) }
                return
            } catch StateError.notificationStateMoved(_, let current) where attempt < 5 {
                noteNotificationState(name, current)
                state = current
            }
        }
    }

    /// How long a finished run's recording is tried again while the store cannot be reached.
    static let recordPatience: TimeInterval = 60

    /// `recordNotifying` for a run that has begun, tried again while the store cannot be reached
    /// (a database restarting), for up to `recordPatience`: until it is recorded, its row says it
    /// is still in progress, and its collection would not run again while this process lives. A
    /// write refused because this replica lost its lease is not tried again (the replica that
    /// takes over records the run). A try whose outcome was unknown may have stored it: then
    /// it is not recorded twice.
    func recordFinished(_ report: inout RunReport, collection: JobCollectionSpec?, logs: [String: [String]],
                        requests: [ApprovalRequest], rendered: () -> Void = {}) throws {
        let deadline = Date().addingTimeInterval(Self.recordPatience)
        var pause: TimeInterval = 0.25
        while true {
            do {
                try recordNotifying(&report, collection: collection, logs: logs, requests: requests, rendered: rendered)
                return
            } catch let error as StateError {
                switch error {
                case .writeFailed, .readFailed, .outcomeUnknown:
                    if (try? store.runReport(id: report.runId)) != nil { return }
                    guard Date() < deadline else { throw error }
                    logger.warning("recording a finished run failed; trying again", metadata: [
                        "run": "\(report.runId)", "in": "\(pause) s", "error": "\(error)"])
                    Thread.sleep(forTimeInterval: pause)
                    pause = min(pause * 2, 5)
                default:
                    throw error
                }
            }
        }
    }

    /// The triggers among `wanted` that hold for this run. `recovered`: it succeeded, and the
    /// collection's run before it did not.
    func firedTriggers(_ report: RunReport, wanted: [NotificationTrigger]) throws -> [NotificationTrigger] {
        var out: [NotificationTrigger] = []
        for trigger in wanted {
            let holds: Bool
            switch trigger {
            case .always: holds = true
            case .recordsUpdated: holds = report.jobs.contains { $0.stats.created + $0.stats.updated + $0.stats.deleted > 0 }
            case .errors: holds = report.jobs.contains { $0.stats.failed > 0 }
            case .jobFails: holds = report.jobs.contains { $0.status == .failed }
            case .recovered:
                guard report.status == .succeeded else { holds = false; break }
                let previous = try store.runReports(collection: report.collection, limit: 2).first { $0.runId != report.runId }
                holds = previous.map { [.failed, .partial, .aborted, .interrupted].contains($0.status) } ?? false
            }
            if holds { out.append(trigger) }
        }
        return out
    }

    /// The run's summary page on the reports branch, through `reportLinks`.
    func reportLink(_ report: RunReport) -> String? {
        home.config.reportLinks.map { $0.replacingOccurrences(of: "{path}", with: "\(ReportPages.folder(of: report))/summary.md") }
    }

    /// Sends the notifications that are due, oldest first. A failure is retried with backoff
    /// (30 s, doubling, at most an hour) until the message is older than `notificationLimit`
    /// (default a day), or refused for good; then it is recorded as undelivered, which `status`
    /// shows. Never throws for a delivery: each outcome is recorded.
    @discardableResult
    public func deliverNotifications(at now: Date = Date(), limit: Int = 200) throws -> DeliveryPass {
        var pass = DeliveryPass()
        let maxAge = TimeInterval(home.config.notificationLimit.flatMap { DurationText($0)?.seconds } ?? 86_400)
        // In batches, until none is due: one that fails is put off (its next attempt is later),
        // so each batch is new work.
        while true {
            let batch = try store.dueNotifications(at: now, limit: limit)
            try deliver(batch, at: now, maxAge: maxAge, into: &pass)
            if batch.count < limit { return pass }
        }
    }

    private func deliver(_ batch: [QueuedNotification], at now: Date, maxAge: TimeInterval, into pass: inout DeliveryPass) throws {
        for notification in batch {
            guard let id = notification.id else { continue }
            do {
                try send(notification)
                try store.markDelivered(id, at: Date())
                pass.delivered += 1
                logger.info("notification delivered", metadata: ["run": "\(notification.runId)", "to": "\(notification.destination)"])
            } catch {
                let reason = (error as? DeliveryError)?.description ?? Self.describe(error)
                let permanent = (error as? DeliveryError)?.permanent ?? false
                let backoff = min(3_600, 30 * pow(2, Double(min(notification.attempts, 10))))
                let next = now.addingTimeInterval(backoff)
                let giveUp = permanent || next.timeIntervalSince(notification.createdAt) > maxAge
                try store.markFailed(id, error: reason, next: giveUp ? nil : next, at: now)
                pass.problems.append("\(notification.destination) (run \(notification.runId)): \(reason)")
                if giveUp { pass.undelivered += 1 } else { pass.retrying += 1 }
                logger.warning("notification not delivered", metadata: [
                    "run": "\(notification.runId)", "to": "\(notification.destination)", "error": "\(reason)",
                    "next": "\(giveUp ? "never" : RunReport.timestamp(next))"])
            }
        }
    }

    /// Sends one notification through its channel, as the channel is applied now.
    func send(_ notification: QueuedNotification) throws {
        guard let channel = try appliedChannel(notification.channel) else {
            throw DeliveryError("the channel \(notification.channel) is no longer applied", permanent: true)
        }
        let tls = TLSSettings(caFile: channel.caFile, insecureSkipVerify: channel.insecureSkipVerify ?? false)
        let timeout = channel.timeout.flatMap { DurationText($0)?.seconds } ?? 30
        switch channel.type {
        case .smtp:
            guard let host = channel.host, let from = channel.from, let recipient = notification.recipient else {
                throw DeliveryError("the channel \(notification.channel) names no host, sender or recipient", permanent: true)
            }
            let password = try channel.passwordFrom?.resolve("the password of channel \(notification.channel)")
            let security = SMTPSettings.Security(rawValue: (channel.tls ?? .starttls).rawValue) ?? .starttls
            try Mailer.send(Mail(from: from, to: [recipient], subject: notification.message.subject, text: notification.message.text,
                                 html: notification.message.html, messageID: notification.message.key, date: notification.createdAt),
                            via: SMTPSettings(host: host, port: channel.effectivePort, security: security, tls: tls,
                                              username: channel.username, password: password, timeoutSeconds: timeout))
        case .webhook:
            guard let urlFrom = channel.urlFrom, let payload = notification.message.payload else {
                throw DeliveryError("the channel \(notification.channel) names no URL", permanent: true)
            }
            let url = try urlFrom.resolve("the URL of channel \(notification.channel)").trimmingCharacters(in: .whitespacesAndNewlines)
            try Webhook.post(Data(payload.utf8), idempotencyKey: notification.message.key,
                             to: WebhookSettings(url: url, tls: tls, timeoutSeconds: timeout))
        }
    }

    /// Sends a test message through each channel of `collection` now (not queued), and says, per
    /// destination, whether it was delivered or why not.
    public func testNotifications(collection name: String, at now: Date = Date()) throws -> [(to: String, problem: String?)] {
        let collection = try storedCollection(name)
        guard let settings = collection.notifications else {
            throw ReconcilerError.notificationsMissing(collection: name)
        }
        var out: [(String, String?)] = []
        for channelName in settings.channels ?? [] {
            guard let channel = try appliedChannel(channelName) else {
                out.append(("channel \(channelName)", "it is not applied"))
                continue
            }
            for recipient in channel.type == .smtp ? settings.recipients.map(Optional.some) : [nil] {
                let subject = "[Syncwright] \(name): test message"
                let text = "A test of the notifications of collection \(name), sent by `syncwright notify test` at "
                    + "\(RunReport.timestamp(now)) through channel \(channelName).\n"
                let key = "test-\(Int(now.timeIntervalSince1970)).\(Canonical.hash((recipient ?? channelName).lowercased()).prefix(12))@syncwright"
                let payload: String? = channel.type == .webhook ? NotificationContent.testPayload(collection: name, subject: subject,
                                                                                                   text: text, format: channel.format ?? .json) : nil
                let notification = QueuedNotification(
                    runId: "test", collection: name, channel: channelName, recipient: recipient, dedupeKey: "test", status: .pending,
                    message: NotificationMessage(subject: subject, text: text, html: "<p>\(text)</p>", payload: payload, key: key),
                    createdAt: now, nextAttemptAt: now)
                do {
                    try send(notification)
                    out.append((notification.destination, nil))
                } catch {
                    out.append((notification.destination, (error as? DeliveryError)?.description ?? Self.describe(error)))
                }
            }
        }
        return out
    }

    /// Notifications not delivered (given up on, or waiting after a failed attempt), newest first.
    public func troubledNotifications(limit: Int = 20) throws -> [QueuedNotification] {
        try store.troubledNotifications(limit: limit)
    }
}

/// What a notification says: the subject, a summary per job, the first failures, a link.
enum NotificationContent {
    static func requestSubject(_ r: ApprovalRequest) -> String {
        switch r.status {
        case .pending: "[Syncwright] approval needed: job \(r.job) of \(r.collection) (request \(r.id))"
        case .approved: "[Syncwright] request \(r.id) approved: job \(r.job) runs at the reconciler's next pass"
        case .denied: "[Syncwright] request \(r.id) denied: job \(r.job) does not run"
        case .expired: "[Syncwright] request \(r.id) expired: job \(r.job) does not run"
        case .executed: "[Syncwright] request \(r.id) executed: job \(r.job) ran" + (r.executedRunId.map { " in run \($0)" } ?? "")
        }
    }

    /// The request's facts; for a pending one, what the job would change and how to decide.
    static func requestText(_ r: ApprovalRequest) -> String {
        let p = r.preview
        var lines = ["Request \(r.id): job \(r.job) of collection \(r.collection) is \(r.status.rawValue).",
                     "Raised by run \(r.runId) (\(r.trigger.rawValue), by \(r.requestedBy)) at \(RunReport.timestamp(r.requestedAt)); "
                        + "approvers: \(r.approvers.joined(separator: ", ")).",
                     "",
                     "What the job would do (a dry run when the request was raised): read \(p.read); \(p.create) to create, "
                        + "\(p.update) to update, \(p.rename) to rename, \(p.delete) to delete, \(p.unchanged) unchanged, \(p.failed) failed."]
        if let error = p.error { lines.append("It would fail: \(error)") }
        lines += p.changes.map { "  \($0)" }
        if p.moreChanges > 0 { lines.append("  … and \(p.moreChanges) more changes") }
        switch r.status {
        case .pending:
            lines += ["", "It expires at \(RunReport.timestamp(r.expiresAt)) without a decision. To approve, either run",
                      "  syncwright approve \(r.id) --reason \"…\"",
                      "or merge a pull request that adds approvals/approve-\(r.id).yaml:",
                      "  apiVersion: syncwright.dev/v1",
                      "  kind: Approval",
                      "  metadata: { name: approve-\(r.id) }",
                      "  spec: { request: \(r.id), decision: approve, reason: \"…\" }",
                      "To deny: syncwright deny \(r.id) --reason \"…\" (or decision: deny, with a reason)."]
        case .approved, .denied:
            lines += ["", "Decided by \(r.decidedBy ?? "an approver")" + (r.decidedAt.map { " at \(RunReport.timestamp($0))" } ?? "")
                        + (r.reason.map { ": \($0)" } ?? "") + "."]
        case .expired:
            lines += ["", r.note.map { "Why: \($0)." } ?? "It expired."]
        case .executed:
            lines += ["", "Decided by \(r.decidedBy ?? "an approver")" + (r.reason.map { ": \($0)" } ?? "") + "; "
                        + "see `syncwright history` for the run\(r.executedRunId.map { " \($0)" } ?? "")."]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func htmlParagraphs(_ text: String) -> String {
        let escaped = text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
        return "<pre style=\"font-family: inherit; white-space: pre-wrap\">\(escaped)</pre>\n"
    }

    static func requestPayload(_ r: ApprovalRequest, subject: String, text: String, format: WebhookFormat) -> String {
        if let chat = chatMessage(subject: subject, text: text, format: format) { return json(chat) }
        var request: [String: Any] = ["id": r.id, "job": r.job, "collection": r.collection, "status": r.status.rawValue,
                                      "runId": r.runId, "requestedBy": r.requestedBy, "approvers": r.approvers,
                                      "expiresAt": RunReport.timestamp(r.expiresAt),
                                      "preview": ["read": r.preview.read, "create": r.preview.create, "update": r.preview.update,
                                                  "rename": r.preview.rename, "delete": r.preview.delete,
                                                  "unchanged": r.preview.unchanged, "failed": r.preview.failed]]
        if let decidedBy = r.decidedBy { request["decidedBy"] = decidedBy }
        if let reason = r.reason { request["reason"] = reason }
        if let note = r.note { request["note"] = note }
        if let run = r.executedRunId { request["executedRunId"] = run }
        return json(["version": 1, "event": "request.\(r.status.rawValue)", "subject": subject, "request": request])
    }

    static func subject(_ report: RunReport, _ triggers: [NotificationTrigger]) -> String {
        let failed = report.jobs.filter { $0.status == .failed }.count
        let objectsFailed = report.jobs.reduce(0) { $0 + $1.stats.failed }
        let changed = report.jobs.reduce(0) { $0 + $1.stats.created + $1.stats.updated + $1.stats.deleted }
        var details: [String] = []
        if triggers.contains(.recovered) { details.append("recovered") }
        if failed > 0 { details.append("\(failed) job\(failed == 1 ? "" : "s") failed") }
        if objectsFailed > 0 { details.append("\(objectsFailed) object\(objectsFailed == 1 ? "" : "s") failed") }
        if failed == 0 && objectsFailed == 0 { details.append("\(changed) object\(changed == 1 ? "" : "s") changed") }
        return "[Syncwright] \(report.collection): \(report.status.rawValue), " + details.joined(separator: ", ")
    }

    /// Lines of plain text: the facts, a table of jobs, the first failures.
    static func text(_ report: RunReport, _ triggers: [NotificationTrigger], suppressed: Int, link: String?) -> String {
        var lines = ["Run \(report.runId) of \(report.collection): \(report.status.rawValue)",
                     "Trigger: \(report.trigger.rawValue); revision \(report.revision.prefix(7)); notified for: \(triggers.map(\.rawValue).joined(separator: ", "))"]
        if suppressed > 0 {
            lines.append("\(suppressed) earlier notification\(suppressed == 1 ? " was" : "s were") held back as repeats since the last one sent.")
        }
        lines.append("")
        lines.append("job: status, read / created / updated / deleted / unchanged / failed")
        for job in report.jobs {
            let s = job.stats
            lines.append("  \(job.name): \(job.status.rawValue), \(s.read) / \(s.created) / \(s.updated) / \(s.deleted) / \(s.unchanged) / \(s.failed)")
        }
        let errors = errorLines(report)
        if !errors.isEmpty { lines += ["", "Errors:"] + errors.map { "  \($0)" } }
        if let link { lines += ["", "Report: \(link)"] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Each job's error, then its first failures with a count of the rest.
    static func errorLines(_ report: RunReport) -> [String] {
        var out: [String] = []
        for job in report.jobs {
            if let error = job.error { out.append("\(job.name): \(error)") }
            for failure in job.failures ?? [] { out.append("\(job.name): \(failure.object): \(failure.reason)") }
            let rest = job.stats.failed - (job.failures?.count ?? 0)
            if rest > 0 { out.append("\(job.name): \(rest) more failed (`syncwright logs \(report.runId) \(job.name)` lists them)") }
        }
        return out
    }

    static func html(_ report: RunReport, _ triggers: [NotificationTrigger], suppressed: Int, link: String?) -> String {
        func e(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var out = "<p>Run <code>\(e(report.runId))</code> of <b>\(e(report.collection))</b>: <b>\(e(report.status.rawValue))</b><br>"
            + "Trigger: \(e(report.trigger.rawValue)); revision <code>\(e(String(report.revision.prefix(7))))</code>; "
            + "notified for: \(e(triggers.map(\.rawValue).joined(separator: ", ")))</p>\n"
        if suppressed > 0 {
            out += "<p>\(suppressed) earlier notification\(suppressed == 1 ? " was" : "s were") held back as repeats since the last one sent.</p>\n"
        }
        out += "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr><th>Job</th><th>Status</th><th>Read</th><th>Created</th>"
            + "<th>Updated</th><th>Deleted</th><th>Unchanged</th><th>Failed</th></tr>\n"
        for job in report.jobs {
            let s = job.stats
            out += "<tr><td>\(e(job.name))</td><td>\(e(job.status.rawValue))</td><td>\(s.read)</td><td>\(s.created)</td>"
                + "<td>\(s.updated)</td><td>\(s.deleted)</td><td>\(s.unchanged)</td><td>\(s.failed)</td></tr>\n"
        }
        out += "</table>\n"
        let errors = errorLines(report)
        if !errors.isEmpty { out += "<p>Errors:</p>\n<ul>\n" + errors.map { "<li>\(e($0))</li>\n" }.joined() + "</ul>\n" }
        if let link { out += "<p><a href=\"\(e(link))\">The run's report</a></p>\n" }
        return out
    }

    static func message(for report: RunReport, triggers: [NotificationTrigger], suppressed: Int, link: String?,
                        channel: NotificationChannelSpec, channelName: String, recipient: String?) -> NotificationMessage {
        let subject = subject(report, triggers)
        let text = text(report, triggers, suppressed: suppressed, link: link)
        let key = "\(report.runId).\(Canonical.hash((recipient ?? channelName).lowercased()).prefix(12))@syncwright"
        var payload: String?
        if channel.type == .webhook {
            payload = webhookPayload(report, triggers, suppressed: suppressed, link: link, subject: subject, text: text,
                                     format: channel.format ?? .json)
        }
        return NotificationMessage(subject: subject, text: text, html: html(report, triggers, suppressed: suppressed, link: link),
                                   payload: payload, key: key)
    }

    /// A Slack or Teams message of `subject` and `text`; nil for `json`, whose body is Syncwright's own.
    static func chatMessage(subject: String, text: String, format: WebhookFormat) -> [String: Any]? {
        switch format {
        case .json: nil
        case .slack: ["text": "*\(subject)*\n```\n\(text)```"]
        case .teams: ["@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": subject, "title": subject,
                      "text": text.replacingOccurrences(of: "\n", with: "<br>")]
        }
    }

    /// Compact JSON with sorted keys: stable, so that a repeat sends the same bytes.
    static func json(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A test message's webhook body.
    static func testPayload(collection: String, subject: String, text: String, format: WebhookFormat) -> String {
        json(chatMessage(subject: subject, text: text, format: format)
             ?? ["version": 1, "test": true, "collection": collection, "subject": subject, "text": text])
    }

    /// The JSON body: Syncwright's own (docs/notifications.md), or a Slack or Teams message.
    static func webhookPayload(_ report: RunReport, _ triggers: [NotificationTrigger], suppressed: Int, link: String?,
                               subject: String, text: String, format: WebhookFormat) -> String {
        if let chat = chatMessage(subject: subject, text: text, format: format) { return json(chat) }
        var body: [String: Any] = [
            "version": 1, "runId": report.runId, "collection": report.collection, "status": report.status.rawValue,
            "trigger": report.trigger.rawValue, "revision": report.revision, "triggers": triggers.map(\.rawValue),
            "startedAt": RunReport.timestamp(report.startedAt), "finishedAt": RunReport.timestamp(report.finishedAt),
            "subject": subject, "suppressedBefore": suppressed, "errors": errorLines(report),
            "jobs": report.jobs.map { job -> [String: Any] in
                var entry: [String: Any] = ["name": job.name, "status": job.status.rawValue, "read": job.stats.read,
                                            "created": job.stats.created, "updated": job.stats.updated,
                                            "deleted": job.stats.deleted, "unchanged": job.stats.unchanged,
                                            "failed": job.stats.failed]
                if let error = job.error { entry["error"] = error }
                return entry
            },
        ]
        if let link { body["link"] = link }
        return json(body)
    }
}
