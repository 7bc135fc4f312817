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

    /// Commits `publications` in order on the remote branch's tip and pushes them. Returns the
    /// commit of each. Throws `PublishError` when they could not be pushed; nothing on the remote
    /// changed then.
    public func publish(_ publications: [Publication], now: @Sendable () -> Date = Date.init) throws -> [ObjectID] {
        guard !publications.isEmpty else { return [] }
        var attempt = 0
        var pause = firstBackoff
        while true {
            attempt += 1
            let commits: [ObjectID]
            do {
                commits = try build(publications, on: try repository.referenceTarget(remoteRef), at: now())
                guard let last = commits.last else { return [] }
                try repository.setReference(localRef, to: last, message: "syncwright: reports")
                try repository.push(localRef, to: localRef, credentials: credentials)
                // The remote now holds it: the next publish builds on it without fetching.
                try repository.setReference(remoteRef, to: last, message: "syncwright: pushed reports")
                return commits
            } catch where error.isRejected {
                guard attempt < maxAttempts else {
                    throw PublishError(message: "the remote's \(branch) branch kept moving; gave up after \(attempt) attempts: \(error)",
                                       contended: true)
                }
                Thread.sleep(forTimeInterval: pause * Double.random(in: 0.5...1.5))
                pause = min(pause * 2, 2)
                do {
                    try repository.fetch(credentials: credentials)
                } catch {
                    throw PublishError(message: "\(error)", contended: false)
                }
            } catch {
                throw PublishError(message: "\(error)", contended: false)
            }
        }
    }

    /// The chain of commits for `publications` on `tip` (nil: the branch starts here, as an orphan).
    func build(_ publications: [Publication], on tip: ObjectID?, at time: Date) throws(GitError) -> [ObjectID] {
        var parent = tip
        var baseTree = try parent.map { (commit) throws(GitError) -> ObjectID in try repository.tree(of: commit) }
        var commits: [ObjectID] = []
        for publication in publications {
            let withFiles = try repository.updatedTree(base: baseTree,
                                                       writing: publication.files.map { ($0.path, Data($0.text.utf8)) })
            let readme = try self.readme(of: withFiles)
            let tree = try repository.updatedTree(base: withFiles, writing: [("README.md", Data(readme.utf8))])
            let commit = try repository.createCommit(tree: tree, parents: parent.map { [$0] } ?? [],
                                                     message: publication.message, author: author, time: time)
            commits.append(commit)
            parent = commit
            baseTree = tree
        }
        return commits
    }

    /// README.md for `tree`: read from the branch's own folders, so that it counts what every
    /// reconciler publishing here has added. Run ids sort by time, so each collection's newest
    /// run is its folder's last entry.
    func readme(of tree: ObjectID) throws(GitError) -> String {
        var rows: [ReportPages.CollectionRow] = []
        for collection in try repository.entryNames(in: tree, folder: "runs") {
            let (count, last) = try repository.lastEntry(in: tree, folder: "runs/\(collection)")
            guard let last else { continue }
            let report = try repository.blob(in: tree, path: "runs/\(collection)/\(last)/report.json")
                .flatMap { try? RunReport.decode(String(decoding: $0, as: UTF8.self)) }
            rows.append(.init(collection: collection, timesRun: count, latest: report, latestRunID: last))
        }
        let latestApply = try repository.lastEntry(in: tree, folder: "applies").last
        return ReportPages.readme(rows: rows, latestApply: latestApply, pendingRequests: [])
    }
}
