import Foundation
import GitKit
import TestSupport
import Testing

@Suite struct CommitAndPushTests {
    let author = GitSignature(name: "Syncwright", email: "syncwright@localhost")

    /// Commits `files` on top of `refs/remotes/origin/reports` (or as an orphan) into the local branch.
    func commit(_ repo: GitRepository, _ files: [String: String], message: String) throws -> ObjectID {
        let tip = try repo.referenceTarget("refs/remotes/origin/reports")
        let tree = try repo.updatedTree(base: try tip.map { try repo.tree(of: $0) },
                                        writing: files.sorted { $0.key < $1.key }.map { ($0.key, Data($0.value.utf8)) })
        let commit = try repo.createCommit(tree: tree, parents: tip.map { [$0] } ?? [], message: message, author: author)
        try repo.setReference("refs/heads/reports", to: commit, message: "test")
        return commit
    }

    @Test func commitsWithoutAWorkTreeAndPushesAnOrphanBranch() throws {
        let fixture = try GitFixture(files: ["a.yaml": "a: 1\n"])
        let home = try TemporaryFolder()
        let repo = try GitRepository.cloneBare(from: fixture.originURL, to: home.sub("repo.git"))
        #expect(try repo.referenceTarget("refs/remotes/origin/reports") == nil)

        let first = try commit(repo, ["runs/nightly/1/summary.md": "# one\n", "README.md": "v1\n"], message: "first\n\nSyncwright-Run: 1\n")
        try repo.push("refs/heads/reports", to: "refs/heads/reports")
        let second = try commit(repo, ["runs/nightly/2/summary.md": "# two\n", "README.md": "v2\n"], message: "second")
        #expect(second != first)
        try repo.push("refs/heads/reports", to: "refs/heads/reports")

        // The git CLI reads the origin: an orphan branch, linear, with every file.
        let origin = fixture.originPath
        #expect(try fixture.git(["rev-parse", "reports"], in: origin).trimmingCharacters(in: .whitespacesAndNewlines) == second.hex)
        #expect(try fixture.git(["rev-list", "--count", "reports"], in: origin) == "2\n")
        // An orphan: its only root is the first report commit, which has no parent.
        #expect(try fixture.git(["rev-list", "--max-parents=0", "reports"], in: origin) == first.hex + "\n")
        #expect(try fixture.git(["show", "reports:runs/nightly/1/summary.md"], in: origin) == "# one\n")
        #expect(try fixture.git(["show", "reports:README.md"], in: origin) == "v2\n")
        #expect(try fixture.git(["ls-tree", "-r", "--name-only", "reports"], in: origin)
                == "README.md\nruns/nightly/1/summary.md\nruns/nightly/2/summary.md\n")
        #expect(try fixture.git(["log", "-1", "--format=%an <%ae>|%cn <%ce>", "reports~1"], in: origin)
                == "Syncwright <syncwright@localhost>|Syncwright <syncwright@localhost>\n")
        #expect(try fixture.git(["log", "-1", "--format=%(trailers:key=Syncwright-Run,valueonly)", "reports~1"], in: origin)
                .trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        #expect(try fixture.git(["fsck", "--no-progress"], in: origin).isEmpty)
    }

    @Test func aStalePushIsRejectedAndNeverOverwritesTheRemote() throws {
        let fixture = try GitFixture(files: ["a.yaml": "a: 1\n"])
        let homes = try TemporaryFolder()
        let one = try GitRepository.cloneBare(from: fixture.originURL, to: homes.sub("one.git"))
        let two = try GitRepository.cloneBare(from: fixture.originURL, to: homes.sub("two.git"))
        _ = try commit(one, ["runs/a.md": "a\n"], message: "a")
        try one.push("refs/heads/reports", to: "refs/heads/reports")
        // `two` has not seen that commit: its orphan push must be refused, not forced.
        _ = try commit(two, ["runs/b.md": "b\n"], message: "b")
        let error = #expect(throws: GitError.self) { try two.push("refs/heads/reports", to: "refs/heads/reports") }
        #expect(error?.isRejected == true)
        #expect(try fixture.git(["ls-tree", "-r", "--name-only", "reports"], in: fixture.originPath) == "runs/a.md\n")

        // After a fetch it rebuilds on the new tip, and both files arrive.
        try two.fetch()
        _ = try commit(two, ["runs/b.md": "b\n"], message: "b")
        try two.push("refs/heads/reports", to: "refs/heads/reports")
        #expect(try fixture.git(["ls-tree", "-r", "--name-only", "reports"], in: fixture.originPath) == "runs/a.md\nruns/b.md\n")
        #expect(try fixture.git(["rev-list", "--count", "--merges", "reports"], in: fixture.originPath) == "0\n")
    }

    @Test func anUnreachableRemoteIsAnErrorNotARejection() throws {
        let fixture = try GitFixture(files: ["a.yaml": "a: 1\n"])
        let home = try TemporaryFolder()
        let repo = try GitRepository.cloneBare(from: fixture.originURL, to: home.sub("repo.git"))
        _ = try commit(repo, ["x.md": "x\n"], message: "x")
        try FileManager.default.moveItem(atPath: fixture.originPath, toPath: fixture.originPath + ".away")
        let error = #expect(throws: GitError.self) { try repo.push("refs/heads/reports", to: "refs/heads/reports") }
        #expect(error?.isRejected == false)
        #expect(error?.description.contains("pushing refs/heads/reports to \(fixture.originURL)") == true)
    }

    @Test func readsFoldersOfATree() throws {
        let fixture = try GitFixture(files: ["a.yaml": "a: 1\n"])
        let home = try TemporaryFolder()
        let repo = try GitRepository.cloneBare(from: fixture.originURL, to: home.sub("repo.git"))
        let tree = try repo.updatedTree(base: nil, writing: [("runs/n/20261125T010000Z-aa/report.json", Data("{}".utf8)),
                                                             ("runs/n/20261125T020000Z-bb/report.json", Data("{\"x\":1}".utf8))])
        #expect(try repo.entryNames(in: tree, folder: "runs") == ["n"])
        let last = try repo.lastEntries(in: tree, folder: "runs/n")
        #expect(last.count == 2 && last.last == ["20261125T020000Z-bb"])
        #expect(try repo.lastEntries(in: tree, folder: "runs/n", sharingPrefix: 9).last == ["20261125T020000Z-bb", "20261125T010000Z-aa"])
        #expect(try repo.lastEntries(in: tree, folder: "runs/n", sharingPrefix: 16).last == ["20261125T020000Z-bb"])
        #expect(try repo.lastEntries(in: tree, folder: "runs/none").count == 0)
        #expect(try repo.blob(in: tree, path: "runs/n/20261125T020000Z-bb/report.json") == Data("{\"x\":1}".utf8))
        #expect(try repo.blob(in: tree, path: "nothing") == nil)
    }

    @Test func twoClonesPushingAtOnceLoseNothing() throws {
        let fixture = try GitFixture(files: ["a.yaml": "a: 1\n"])
        let homes = try TemporaryFolder()
        let clones = try ["one", "two"].map { try GitRepository.cloneBare(from: fixture.originURL, to: homes.sub("\($0).git")) }
        let each = 15
        nonisolated(unsafe) var failures: [String] = []
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let repo = clones[index]
            for n in 0..<each {
                var attempts = 0
                while true {
                    attempts += 1
                    do {
                        _ = try commit(repo, ["runs/\(index)-\(n).md": "\(n)\n"], message: "\(index)-\(n)")
                        try repo.push("refs/heads/reports", to: "refs/heads/reports")
                        break
                    } catch let error as GitError where error.isRejected && attempts < 50 {
                        try? repo.fetch()
                    } catch {
                        lock.withLock { failures.append("\(index)-\(n): \(error)") }
                        break
                    }
                }
            }
        }
        #expect(failures.isEmpty)
        let files = try fixture.git(["ls-tree", "-r", "--name-only", "reports"], in: fixture.originPath).split(separator: "\n")
        #expect(files.count == 2 * each)
        #expect(try fixture.git(["rev-list", "--count", "reports"], in: fixture.originPath) == "\(2 * each)\n")
        #expect(try fixture.git(["rev-list", "--count", "--merges", "reports"], in: fixture.originPath) == "0\n")
    }
}
