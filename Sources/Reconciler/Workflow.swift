import Foundation
import GitKit
import Logging
import Manifests
import Planner
import Reports
import Scheduling
import StateStore
import Sync

/// An Approval manifest written in a commit: what apply weighs against the request it names.
struct WrittenDecision: Sendable {
    let approval: String
    let spec: ApprovalSpec
    let file: String
    let commit: CommitInfo?
}

extension Workspace {
    /// How many changes a request's preview lists.
    static let requestPreviewLines = 20

    /// Who is asking, for a manual run: the git identity, else `$USER`.
    func requester() -> String {
        if let signature = repository.defaultSignature() { return "\(signature.name) <\(signature.email)>" }
        return ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"
    }

    /// A new pending request for `job`, with the dry run `set` as its preview.
    func makeRequest(job: String, collection: String, workflow: Workflow, set: ChangeSet, engine: JobEngine,
                     runId: String, revision: String, trigger: RunTrigger, scheduled: ScheduledRun?, at date: Date,
                     taken: Set<String>) throws -> ApprovalRequest {
        var id = ApprovalRequest.makeID(at: date)
        while try taken.contains(id) || store.request(id) != nil { id = ApprovalRequest.makeID(at: date) }
        let lines = set.failures.map { "! \($0.object) \($0.reason)" }
            + set.changes.prefix(Self.requestPreviewLines).flatMap { engine.logLines(for: $0) }
        let preview = ApprovalRequest.Preview(
            read: set.read, create: set.count(.create), update: set.count(.update), rename: set.count(.rename),
            delete: set.count(.delete), unchanged: set.unchanged, skipped: set.skipped, failed: set.failures.count,
            changes: lines, moreChanges: max(0, set.changes.count - Self.requestPreviewLines), error: set.guardViolation)
        return ApprovalRequest(
            id: id, job: job, collection: collection, status: .pending, runId: runId, revision: revision,
            jobHash: try store.hash(of: ObjectKey(.job, job)) ?? "", trigger: trigger,
            requestedBy: scheduled.map { "schedule \($0.schedule)" } ?? requester(), requestedAt: date,
            expiresAt: date.addingTimeInterval(TimeInterval(workflow.expirySeconds)), approvers: workflow.approvers,
            preview: preview)
    }

    /// A request to save, with its page to queue for publishing in the same transaction.
    static func publishable(_ request: ApprovalRequest) -> Publishable<ApprovalRequest> {
        Publishable(request, page: ReportPages.publication(for: request))
    }

    /// Every request, oldest first; only those with `statuses` when given.
    public func requests(statuses: Set<ApprovalRequest.Status>? = nil) throws -> [ApprovalRequest] {
        try store.requests(statuses: statuses)
    }

    /// One request, or an error naming what exists.
    public func request(_ id: String) throws -> ApprovalRequest {
        guard let request = try store.request(id) else {
            let open = try requests(statuses: [.pending]).map(\.id)
            throw ReconcilerError.unknownRequest(id, pending: open)
        }
        return request
    }

    /// Pending requests past their `expiresAfter` become `expired`; returns them.
    func expiredRequests(at now: Date) throws -> [ApprovalRequest] {
        try requests(statuses: [.pending]).filter { now >= $0.expiresAt }.map { request in
            var expired = request
            expired.status = .expired
            expired.note = "expired at \(RunReport.timestamp(request.expiresAt)) with no decision"
            return expired
        }
    }

    /// Expires the pending requests past their time, and publishes their pages; returns how many.
    @discardableResult
    public func expireRequests(at now: Date) throws -> Int {
        let expired = try expiredRequests(at: now)
        if !expired.isEmpty {
            try store.save(requests: expired.map(Self.publishable), at: now, notifications: try notifications(forRequests: expired, at: now))
            for request in expired { logger.info("request expired", metadata: ["request": "\(request.id)", "job": "\(request.job)"]) }
        }
        return expired.count
    }

    /// What applying `plan` does to the requests, saved in the apply's transaction:
    /// - pending requests past their time expire;
    /// - pending or approved requests whose job changed (or went) expire: an approval is for
    ///   the spec the approvers saw;
    /// - each Approval written since the applied revision decides its request when its commit's
    ///   author is an approver, and is recorded as ignored otherwise.
    func requestChanges(for plan: Plan, desired: DesiredState, commit: ObjectID, at now: Date) throws -> [ApprovalRequest] {
        var changed: [String: ApprovalRequest] = [:]
        for request in try expiredRequests(at: now) { changed[request.id] = request }
        let jobChanges = Dictionary(plan.changes.filter { $0.key.kind == .job }.map { ($0.key.name, $0) }) { a, _ in a }
        for request in try requests(statuses: [.pending, .approved]) where changed[request.id] == nil {
            guard let change = jobChanges[request.job] else { continue }
            let newHash = change.action == .delete ? nil : desired.objects[change.key]?.hash
            guard newHash != request.jobHash else { continue }
            var expired = request
            expired.status = .expired
            expired.note = change.action == .delete
                ? "job \(request.job) was deleted in revision \(commit.short)"
                : "job \(request.job) changed in revision \(commit.short) after the request; an approval is for the spec "
                    + "the approvers saw, so raise a new request"
            changed[request.id] = expired
        }
        let decisions = try writtenDecisions(in: plan, desired: desired, commit: commit)
        for decision in decisions {
            guard var request = try changed[decision.spec.request] ?? store.request(decision.spec.request)
            else {
                logger.warning("an Approval names no request of this home; it is ignored",
                               metadata: ["approval": "\(decision.approval)", "file": "\(decision.file)",
                                          "request": "\(decision.spec.request)"])
                continue
            }
            let author = decision.commit.map { "\($0.authorName) <\($0.authorEmail)>" } ?? "unknown"
            let email = decision.commit.map { Workflow.email(of: $0.authorEmail) }
            var entry = ApprovalRequest.Decision(
                approval: decision.approval, decision: decision.spec.decision.rawValue, author: author,
                commit: decision.commit?.id.hex ?? "", reason: decision.spec.reason, at: now, counted: false, note: nil)
            let approvers = Set(request.approvers.map(Workflow.email(of:)))
            if !request.status.isOpen {
                entry.note = "ignored: the request is already \(request.status.rawValue)"
            } else if let email, approvers.contains(email) {
                entry.counted = true
                request.status = decision.spec.decision == .approve ? .approved : .denied
                request.decidedBy = author
                request.decidedAt = now
                request.reason = decision.spec.reason
            } else {
                entry.note = "ignored: \(email ?? "an unknown author") is not an approver"
            }
            request.decisions.append(entry)
            changed[request.id] = request
            logger.info(entry.counted ? "decision counted" : "decision ignored",
                        metadata: ["request": "\(request.id)", "decision": "\(entry.decision)", "author": "\(author)",
                                   "note": "\(entry.note ?? "")"])
        }
        return changed.keys.sorted().compactMap { changed[$0] }
    }

    /// The Approvals `plan` creates or changes, each with the commit that wrote it.
    private func writtenDecisions(in plan: Plan, desired: DesiredState, commit: ObjectID) throws -> [WrittenDecision] {
        var found: [(String, ApprovalSpec, String)] = []
        for change in plan.changes where change.key.kind == .approval && change.action != .delete {
            guard let record = desired.objects[change.key],
                  case .approval(let spec)? = try? Canonical.decode(kind: .approval, json: record.spec).1 else { continue }
            found.append((change.key.name, spec, record.file))
        }
        let applied = try store.appliedRevision().flatMap { ObjectID(hex: $0.revision) }
        // An Approval that is applied and reads the same now may still have been written again
        // since the applied revision: withdrawn (a non-approver's decision reverted) and re-added by
        // an approver between two applies. Its file then has a new writer, which is weighed too.
        let planned = Set(found.map(\.0))
        var unchanged: [(String, ApprovalSpec, String)] = []
        if applied != nil {
            let deleted = Set(plan.changes.filter { $0.key.kind == .approval && $0.action == .delete }.map(\.key.name))
            for applied in try store.manifests(of: .approval)
            where !planned.contains(applied.metadata.name) && !deleted.contains(applied.metadata.name) {
                if case .approval(let approval) = applied.spec { unchanged.append((applied.metadata.name, approval, applied.file)) }
            }
        }
        guard !found.isEmpty || !unchanged.isEmpty else { return [] }
        let writers = try repository.commitsWriting(Array(Set(found.map(\.2) + unchanged.map(\.2))), at: commit, hiding: applied)
        let rewritten = unchanged.filter { writers[$0.2] != nil }
        return found.map { WrittenDecision(approval: $0.0, spec: $0.1, file: $0.2, commit: writers[$0.2]) }
            + rewritten.map { WrittenDecision(approval: $0.0, spec: $0.1, file: $0.2, commit: writers[$0.2]) }
    }

    /// Runs the job of an approved request, as its own run with trigger `approval`; the request
    /// becomes `executed`. A job whose spec changed since the request expires it instead.
    func runApproved(_ request: ApprovalRequest, control: RunControl?, at now: Date) throws -> RunReport? {
        var why: String?
        if try store.hash(of: ObjectKey(.job, request.job)) != request.jobHash {
            why = "job \(request.job) changed after the request; an approval is for the spec the approvers saw"
        } else if try !collections().contains(where: { $0.name == request.collection && $0.jobs.contains { $0.job == request.job } }) {
            why = "collection \(request.collection) no longer runs job \(request.job)"
        }
        if let why {
            var expired = request
            expired.status = .expired
            expired.note = why
            try store.save(requests: [Self.publishable(expired)], at: now)
            return nil
        }
        return try run(collection: request.collection, control: control, approved: request).report
    }
}

/// Writes decisions to the config branch: the commit `syncwright approve` and `deny` push.
public struct DecisionWriter: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    /// What was pushed.
    public struct Pushed: Sendable {
        public let path: String
        public let commit: String
        public let branch: String
        public let request: ApprovalRequest
    }

    /// The identity a decision is written as: `author` (`Name <email>`), else the git config's.
    public func signature(_ author: String?) throws -> GitSignature {
        if let author {
            let email = Workflow.email(of: author)
            guard let open = author.lastIndex(of: "<"), email.contains("@") else {
                throw ReconcilerError.badAuthor(author)
            }
            let name = author[..<open].trimmingCharacters(in: .whitespaces)
            return GitSignature(name: name.isEmpty ? email : name, email: email)
        }
        guard let signature = workspace.repository.defaultSignature() else {
            throw ReconcilerError.noIdentity
        }
        return signature
    }

    /// Commits `approvals/<decision>-<id>.yaml` on the config branch's tip and pushes it (never
    /// forcing; when the branch moved meanwhile, it fetches and commits again on the new tip).
    ///
    /// Refuses when the request is not pending or `author` is not one of its approvers: the
    /// reconciler would ignore that decision anyway.
    public func write(_ decision: ApprovalDecision, request id: String, reason: String?, author: String?,
                      now: Date = Date()) throws -> Pushed {
        try workspace.fetch()
        let request = try workspace.request(id)
        guard request.status.isOpen else {
            throw ReconcilerError.requestClosed(id: id, status: request.status.rawValue,
                                                detail: request.decidedBy.map { "decided by \($0)" } ?? request.note)
        }
        let signature = try self.signature(author)
        let approvers = request.approvers.map(Workflow.email(of:))
        guard approvers.contains(Workflow.email(of: signature.email)) else {
            throw ReconcilerError.notApprover(email: signature.email, job: request.job, approvers: request.approvers)
        }
        let config = workspace.home.config
        let repository = workspace.repository
        let remoteRef = "refs/remotes/origin/\(config.branch)"
        let scratch = "refs/syncwright/decision"
        let message = "\(decision == .approve ? "Approve" : "Deny") request \(id) (job \(request.job))"
            + (reason.map { "\n\n\($0)" } ?? "") + "\n"
        let credentials = try config.gitCredentials()
        for attempt in 1...5 {
            guard let tip = try repository.referenceTarget(remoteRef) else {
                throw ReconcilerError.noBranch(config.branch, remote: config.remote)
            }
            // approve-<id>, or approve-<id>-2 … when an earlier Approval (one that was ignored) has the name.
            var name = "\(decision.rawValue)-\(id)"
            var suffix = 1
            while try workspace.store.hash(of: ObjectKey(.approval, name)) != nil
                    || repository.file(at: tip, path: "approvals/\(name).yaml") != nil {
                suffix += 1
                name = "\(decision.rawValue)-\(id)-\(suffix)"
            }
            let path = "approvals/\(name).yaml"
            let quoted = reason.map { ", reason: \"\(Self.escaped($0))\"" } ?? ""
            let text = """
                # \(decision == .approve ? "Approves" : "Denies") request \(id): job \(request.job) of collection \(request.collection).
                apiVersion: \(apiVersion)
                kind: Approval
                metadata: { name: \(name) }
                spec: { request: \(id), decision: \(decision.rawValue)\(quoted) }

                """
            let tree = try repository.updatedTree(base: try repository.tree(of: tip), writing: [(path, Data(text.utf8))])
            let commit = try repository.createCommit(tree: tree, parents: [tip], message: message, author: signature, time: now)
            // Never push a revision the reconciler would refuse (a name taken by an unapplied Approval).
            do {
                _ = try workspace.plan(ref: commit.hex)
            } catch ReconcilerError.invalidManifests(_, let error) {
                throw ReconcilerError.decisionInvalid(branch: config.branch, problems: error.problems.map(\.description))
            }
            try repository.setReference(scratch, to: commit, message: "syncwright: \(decision.rawValue) \(id)")
            let pushed = Result { () throws(GitError) -> Void in
                try repository.push(scratch, to: "refs/heads/\(config.branch)", credentials: credentials)
            }
            switch pushed {
            case .success:
                // The push moved refs/remotes/origin/<branch> (best effort); nothing else to do here.
                return Pushed(path: path, commit: commit.hex, branch: config.branch, request: request)
            case .failure(let refusal) where refusal.isRejected && attempt < 5:
                try repository.fetch(credentials: credentials)
                // Refused although nobody moved the branch: a hook or a protected branch said no.
                if try repository.referenceTarget(remoteRef) == tip { throw refusal }
            case .failure(let failure):
                throw failure
            }
        }
        throw ReconcilerError.branchKeptMoving(config.branch)
    }

    /// Text safe inside a double-quoted YAML scalar.
    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
