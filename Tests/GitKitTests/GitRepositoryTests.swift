import Foundation
import GitKit
import TestSupport
import Testing

@Suite struct GitRepositoryTests {
    @Test func bareCloneReadsTheTreeLikeGit() throws {
        let fixture = try GitFixture(files: ["a.yaml": "a: 1\n", "dir/b.yml": "b: 2\n", "dir/sub/c.yaml": "c: 3\n",
                                             "data/x.csv": "id\n1\n"])
        let home = try TemporaryFolder()
        let repo = try GitRepository.cloneBare(from: fixture.originURL, to: home.sub("repo.git"))
        let tip = try repo.resolveCommit("main")
        #expect(tip.hex == (try fixture.git(["rev-parse", "HEAD"])).trimmingCharacters(in: .whitespacesAndNewlines))
        let files = try repo.files(at: tip, where: { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") })
        #expect(files.map(\.path).sorted() == ["a.yaml", "dir/b.yml", "dir/sub/c.yaml"])
        for file in files {
            #expect(String(decoding: file.contents, as: UTF8.self) == (try fixture.git(["show", "HEAD:\(file.path)"])))
        }
        let gitPaths = try fixture.git(["ls-tree", "-r", "--name-only", "HEAD"]).split(separator: "\n").map(String.init)
        #expect(try repo.paths(at: tip).sorted() == gitPaths.sorted())
        #expect(try repo.file(at: tip, path: "data/x.csv") == Data("id\n1\n".utf8))
        #expect(try repo.file(at: tip, path: "data/none.csv") == nil)
        // The clone is bare: no work tree files.
        #expect(!FileManager.default.fileExists(atPath: home.sub("repo.git/a.yaml")))
        #expect(FileManager.default.fileExists(atPath: home.sub("repo.git/HEAD")))
    }

    @Test func resolvesBranchesTagsAndShortShas() throws {
        let fixture = try GitFixture(files: ["a.yaml": "1"])
        let first = try fixture.commit("second")
        try fixture.git(["tag", "v1"])
        try fixture.git(["push", "-q", "origin", "v1"])
        try fixture.write(["a.yaml": "2"])
        let second = try fixture.commit("third")
        try fixture.git(["push", "-q", "origin", "main:feature"])
        let home = try TemporaryFolder()
        let repo = try GitRepository.cloneBare(from: fixture.originURL, to: home.sub("repo.git"))
        #expect(try repo.resolveCommit("main").hex == second)
        #expect(try repo.resolveCommit("feature").hex == second)
        #expect(try repo.resolveCommit("v1").hex == first)
        #expect(try repo.resolveCommit(String(first.prefix(8))).hex == first)
        #expect(try repo.resolveCommit(first).hex == first)
        let error = #expect(throws: GitError.self) { try repo.resolveCommit("no-such-branch") }
        #expect(error?.isNotFound == true)
        #expect(error?.description == "resolving ref 'no-such-branch' failed: no branch, tag or commit is named 'no-such-branch'")
    }

    @Test func fetchSeesNewCommitsAndPrunesDeletedBranches() throws {
        let fixture = try GitFixture(files: ["a.yaml": "1"])
        try fixture.git(["push", "-q", "origin", "main:old"])
        let home = try TemporaryFolder()
        let repo = try GitRepository.cloneBare(from: fixture.originURL, to: home.sub("repo.git"))
        #expect(try repo.resolveCommit("old").hex.count == 40)
        try fixture.write(["a.yaml": "2"])
        let newer = try fixture.commit("newer")
        try fixture.git(["push", "-q", "origin", ":old"])
        #expect(try repo.resolveCommit("main").hex != newer)
        try repo.fetch()
        #expect(try repo.resolveCommit("main").hex == newer)
        #expect(throws: GitError.self) { try repo.resolveCommit("old") }
    }

    @Test func changedPathsMatchGitDiff() throws {
        let fixture = try GitFixture(files: ["keep.yaml": "k", "edit.yaml": "1", "gone.yaml": "g", "move/a.yaml": "m"])
        let base = try fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try fixture.write(["edit.yaml": "2", "new/n.yml": "n"])
        try fixture.remove("gone.yaml")
        try FileManager.default.createDirectory(atPath: fixture.workTree + "/moved", withIntermediateDirectories: true)
        try fixture.git(["mv", "move/a.yaml", "moved/a.yaml"])
        let head = try fixture.commit("change")
        let repo = try GitRepository.open(at: fixture.workTree + "/.git")
        let changes = try repo.changedPaths(from: ObjectID(hex: base)!, to: ObjectID(hex: head)!)
        let gitSays = try fixture.git(["diff", "--no-renames", "--name-status", base, head])
            .split(separator: "\n").map { line -> PathChange in
                let parts = line.split(separator: "\t")
                let status: PathChange.Status = parts[0] == "A" ? .added : parts[0] == "D" ? .deleted : .modified
                return PathChange(path: String(parts[1]), status: status)
            }
        #expect(Set(changes) == Set(gitSays))
        #expect(Set(changes.map(\.path)) == ["edit.yaml", "new/n.yml", "gone.yaml", "move/a.yaml", "moved/a.yaml"])
    }

    @Test func commitInfoNamesTheAuthor() throws {
        let fixture = try GitFixture(files: ["a.yaml": "1"])
        let home = try TemporaryFolder()
        let repo = try GitRepository.cloneBare(from: fixture.originURL, to: home.sub("repo.git"))
        let info = try repo.commitInfo(try repo.resolveCommit("main"))
        #expect(info.authorName == "Ada Admin")
        #expect(info.authorEmail == "ada@corp.example")
        #expect(info.summary == "initial manifests")
    }

    @Test func cloneOfAMissingRemoteSaysWhatFailed() throws {
        let home = try TemporaryFolder()
        let error = #expect(throws: GitError.self) {
            try GitRepository.cloneBare(from: "file:///nonexistent/config.git", to: home.sub("repo.git"))
        }
        #expect(error?.operation == "cloning file:///nonexistent/config.git")
        #expect(error?.message.isEmpty == false)
    }

    @Test func discoverFindsTheRepositoryAboveAFolder() throws {
        let fixture = try GitFixture(files: ["dir/a.yaml": "1"])
        let repo = try GitRepository.discover(from: fixture.workTree + "/dir")
        #expect(try repo.resolveCommit("HEAD").hex
                == (try fixture.git(["rev-parse", "HEAD"])).trimmingCharacters(in: .whitespacesAndNewlines))
        let outside = try TemporaryFolder()
        #expect(throws: GitError.self) { try GitRepository.discover(from: outside.path) }
    }
}
