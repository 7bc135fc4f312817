import Foundation
import GitKit

/// Why a publish did not land.
public struct PublishError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// True when the remote kept refusing because others kept publishing: try again later.
    public let contended: Bool
    public var description: String { message }
}

/// Publishes to the reports branch of the remote: one commit per publication on the branch's
/// tip, built without a work tree, pushed without forcing.
///
/// When the push is refused because the branch moved on, it fetches, rebuilds the same files on
/// the new tip, and pushes again, up to `maxAttempts` times with growing, jittered pauses.
public struct ReportPublisher: Sendable {
    public let repository: GitRepository
    public let branch: String
    public let author: GitSignature
    public let credentials: GitCredentials
    public var maxAttempts = 10
    /// The first pause after a refusal; each later one doubles, up to 2 s, with jitter.
    public var firstBackoff: TimeInterval = 0.05

    public init(repository: GitRepository, branch: String, author: GitSignature, credentials: GitCredentials) {
        self.repository = repository
        self.branch = branch
        self.author = author
        self.credentials = credentials
    }

    var remoteRef: String { "refs/remotes/origin/\(branch)" }
    var localRef: String { "refs/heads/\(branch)" }

    /// What a publish did, and where its time went.
    public struct Result: Sendable {
        /// The commit of each publication, in order.
        public let commits: [ObjectID]
        /// 1, or more when the remote refused because the branch had moved.
        public let attempts: Int
        /// Time spent building commits (all attempts), and pushing (the last attempt).
        public let buildMilliseconds: Double
        public let pushMilliseconds: Double
    }

    /// Commits `publications` in order on the remote branch's tip and pushes them. Throws
    /// `PublishError` when they could not be pushed; nothing on the remote changed then.
    public func publish(_ publications: [Publication], now: @Sendable () -> Date = Date.init) throws -> Result {
        guard !publications.isEmpty else { return Result(commits: [], attempts: 0, buildMilliseconds: 0, pushMilliseconds: 0) }
        var attempt = 0
        var pause = firstBackoff
        var building = 0.0
        while true {
            attempt += 1
            var base: ObjectID?
            do {
                let started = DispatchTime.now()
                base = try repository.referenceTarget(remoteRef)
                let commits = try build(publications, on: base, at: now())
                guard let last = commits.last else { return Result(commits: [], attempts: attempt, buildMilliseconds: 0, pushMilliseconds: 0) }
                try repository.setReference(localRef, to: last, message: "syncwright: reports")
                let built = DispatchTime.now()
                building += Self.milliseconds(started, built)
                try repository.push(localRef, to: localRef, credentials: credentials)
                // The remote now holds it: the next publish builds on it without fetching. (The push
                // moved it already; a failure here must not make a published report look unpublished,
                // or it would be published twice.)
                try? repository.setReference(remoteRef, to: last, message: "syncwright: pushed reports")
                return Result(commits: commits, attempts: attempt, buildMilliseconds: building,
                              pushMilliseconds: Self.milliseconds(built, DispatchTime.now()))
            } catch where error.isRejected {
                guard attempt < maxAttempts else {
                    throw PublishError(message: "the remote's \(branch) branch kept moving; gave up after \(attempt) attempts: \(error)",
                                       contended: true)
                }
                Thread.sleep(forTimeInterval: pause * Double.random(in: 0.5...1.5))
                pause = min(pause * 2, 2)
                do {
                    try repository.fetch(credentials: credentials)
                    // Refused although nobody moved the branch: the remote said no for another
                    // reason (a hook, a protected branch). Trying again would not change that.
                    if try repository.referenceTarget(remoteRef) == base {
                        throw PublishError(message: "\(error)", contended: false)
                    }
                } catch let error as PublishError {
                    throw error
                } catch {
                    throw PublishError(message: "\(error)", contended: false)
                }
            } catch {
                throw PublishError(message: "\(error)", contended: false)
            }
        }
    }

    /// Whether run `id` (with `report`) started after the row's latest run: by start time when
    /// both reports can be read, else by id.
    static func isLater(_ report: ReportPages.RunHeader?, _ id: String, than row: ReportPages.CollectionRow) -> Bool {
        if let report, let latest = row.latest, report.startedAt != latest.startedAt {
            return report.startedAt > latest.startedAt
        }
        return id > row.latestRunID
    }

    static func milliseconds(_ from: DispatchTime, _ to: DispatchTime) -> Double {
        Double(to.uptimeNanoseconds - from.uptimeNanoseconds) / 1_000_000
    }

    /// The chain of commits for `publications` on `tip` (nil: the branch starts here, as an orphan).
    func build(_ publications: [Publication], on tip: ObjectID?, at time: Date) throws(GitError) -> [ObjectID] {
        var parent = tip
        var baseTree = try parent.map { (commit) throws(GitError) -> ObjectID in try repository.tree(of: commit) }
        var commits: [ObjectID] = []
        // Reports a publisher pushed and was killed before noting (see below) are among the
        // branch's newest commits; their messages are looked up first, since reading the files
        // means reading the largest folders of the tree.
        let recent = Set(try tip.map { (tip) throws(GitError) in try repository.recentMessages(from: tip, limit: Self.recentWindow) } ?? [])
        var index = try ReadmeIndex(repository, tree: baseTree)
        for (position, publication) in publications.enumerated() {
            // Already on the branch, file for file (a publisher killed after its push reached
            // the remote, before it noted so): published once, never again. Its commit is the
            // tip that holds it.
            if let tip = parent, let tree = baseTree, recent.contains(publication.message),
               try Self.holds(repository, tree, publication.files) {
                commits.append(tip)
                continue
            }
            try index.add(publication.files, on: baseTree, repository)
            // README.md is brought up to date by the batch's last commit (and by the branch's
            // first): a batch of a thousand reports would otherwise write a thousand READMEs of a
            // thousand rows each, and the commits between keep the README they had.
            var files = publication.files.map { ($0.path, Data($0.text.utf8)) }
            if position == publications.count - 1 || baseTree == nil {
                files.append(("README.md", Data(index.readme.utf8)))
            }
            let tree = try repository.updatedTree(base: baseTree, writing: files)
            let commit = try repository.createCommit(tree: tree, parents: parent.map { [$0] } ?? [],
                                                     message: publication.message, author: author, time: time)
            commits.append(commit)
            parent = commit
            baseTree = tree
        }
        return commits
    }

    /// How many of the branch's newest commits are searched for reports already published: a
    /// report pushed before a crash is found unless more than this many commits were published
    /// on top of it before the outbox is published again.
    static let recentWindow = 100

    /// Whether `tree` holds every one of `files` with the same contents.
    static func holds(_ repository: GitRepository, _ tree: ObjectID, _ files: [ReportFile]) throws(GitError) -> Bool {
        guard !files.isEmpty else { return false }
        for file in files {
            guard let blob = try repository.blob(in: tree, path: file.path), blob == Data(file.text.utf8) else { return false }
        }
        return true
    }

    /// What README.md summarises, read from a tree once and then kept up to date publication by
    /// publication, so that a batch of N reports reads the branch's folders once, not N times.
    struct ReadmeIndex {
        var rows: [String: ReportPages.CollectionRow] = [:]
        var latestApply: String?
        var latestRejected: (name: String, facts: ReportPages.Rejection?)?
        var requests: [String: ReportPages.PendingRequest] = [:]
        /// The rejection the README shows: one newer than the latest apply stands.
        var standing: ReportPages.Rejection?

        /// Read from the branch's own folders, so that it counts what every reconciler
        /// publishing here has added. Run ids sort by time, so each collection's newest run is its
        /// folder's last entry.
        init(_ repository: GitRepository, tree: ObjectID?) throws(GitError) {
            guard let tree else { return }
            for name in try repository.entryNames(in: tree, folder: "requests") where name.hasSuffix(".json") {
                if let request = try repository.blob(in: tree, path: "requests/\(name)").flatMap(ReportPages.PendingRequest.decode) {
                    requests[request.id] = request
                }
            }
            for collection in try repository.entryNames(in: tree, folder: "runs") {
                // Ids of runs started in the same second sort by their random part: compare those
                // few by start time.
                let (count, last) = try repository.lastEntries(in: tree, folder: "runs/\(collection)",
                                                               sharingPrefix: "YYYYMMDDTHHMMSSZ".count)
                var row = ReportPages.CollectionRow(collection: collection, timesRun: count, latest: nil, latestRunID: "")
                for id in last {
                    let report = try repository.blob(in: tree, path: "runs/\(collection)/\(id)/report.json")
                        .flatMap(ReportPages.RunHeader.decode)
                    if row.latestRunID.isEmpty || ReportPublisher.isLater(report, id, than: row) {
                        row.latestRunID = id
                        row.latest = report
                    }
                }
                if !row.latestRunID.isEmpty { rows[collection] = row }
            }
            latestApply = try repository.lastEntries(in: tree, folder: "applies").last.first
            if let name = try repository.entryNames(in: tree, folder: "rejected").filter({ $0.hasSuffix(".json") }).max() {
                latestRejected = (name, try repository.blob(in: tree, path: "rejected/\(name)").flatMap(ReportPages.Rejection.decode))
            }
            // A rejection newer than the latest apply stands: the branch's tip is not what runs.
            // The names' timestamps tell (to the second); within one second the README as it was
            // does.
            if let rejected = latestRejected {
                let stamp = "YYYYMMDDTHHMMSSZ".count
                let rejectedAt = rejected.name.prefix(stamp), appliedAt = latestApply?.prefix(stamp) ?? ""
                if rejectedAt != appliedAt {
                    standing = rejectedAt > appliedAt ? rejected.facts : nil
                } else {
                    let before = try repository.blob(in: tree, path: "README.md")
                    standing = before.map { String(decoding: $0, as: UTF8.self).contains("> **Rejected:**") } == true ? rejected.facts : nil
                }
            }
        }

        /// Takes in one publication's `files`, about to be written on `tree` (which holds
        /// everything taken in before).
        mutating func add(_ files: [ReportFile], on tree: ObjectID?, _ repository: GitRepository) throws(GitError) {
            var addsApply = false, addsRejection = false
            for file in files {
                let parts = file.path.split(separator: "/").map(String.init)
                if parts.count == 2, parts[0] == "applies" {
                    addsApply = true
                    if parts[1] > (latestApply ?? "") { latestApply = parts[1] }
                }
                if parts.count == 2, parts[0] == "rejected" {
                    addsRejection = true
                    if parts[1].hasSuffix(".json"), parts[1] > (latestRejected?.name ?? "") {
                        latestRejected = (parts[1], ReportPages.Rejection.decode(Data(file.text.utf8)))
                    }
                }
                if parts.count == 2, parts[0] == "requests", parts[1].hasSuffix(".json"),
                   let request = ReportPages.PendingRequest.decode(Data(file.text.utf8)) {
                    requests[request.id] = request
                }
                guard parts.count == 4, parts[0] == "runs", parts[3] == "report.json" else { continue }
                let (collection, id) = (parts[1], parts[2])
                let exists = try tree.map { (tree) throws(GitError) -> Bool in try repository.contains(tree, path: file.path) } ?? false
                var row = rows[collection] ?? .init(collection: collection, timesRun: 0, latest: nil, latestRunID: "")
                if !exists { row.timesRun += 1 }
                let report = ReportPages.RunHeader.decode(Data(file.text.utf8))
                if row.latestRunID.isEmpty || ReportPublisher.isLater(report, id, than: row) {
                    row.latestRunID = id
                    row.latest = report
                }
                rows[collection] = row
            }
            // What this publication adds is newest.
            if addsApply {
                standing = nil
            } else if addsRejection {
                standing = latestRejected?.facts
            }
        }

        /// README.md as it stands.
        var readme: String {
            // Pending, and approved but not yet run. Request ids sort by time.
            let open = requests.keys.sorted().compactMap { requests[$0] }.filter { $0.status == "pending" || $0.status == "approved" }
            return ReportPages.readme(rows: rows.keys.sorted().compactMap { rows[$0] }, latestApply: latestApply,
                                      pendingRequests: open, rejection: standing)
        }
    }
}
