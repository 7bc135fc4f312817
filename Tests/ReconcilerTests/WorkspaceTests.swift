import Foundation
import GitKit
import Logging
import Manifests
import Planner
@testable import Reconciler
import StateStore
import TestSupport
import Testing

let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

func makeWorkspace(_ fixture: GitFixture, _ folder: TemporaryFolder, _ name: String = "home") throws -> Workspace {
    let home = try Home.create(at: folder.sub(name), config: HomeConfig(remote: fixture.originURL), force: false)
    return try Workspace(home: home, logger: quiet)
}

let baseFiles: [String: String] = [
    "connections.yaml": Fixtures.connection("src") + "---\n" + Fixtures.connection("dst", type: "ldif"),
    "data/in.csv": "id,m,x,y\n1,a,b,c\n",
    "jobs/a.yaml": Fixtures.job("a"),
    "jobs/b.yaml": Fixtures.job("b"),
    "templates/t.yaml": """
        apiVersion: syncwright.dev/v1
        kind: JobCollectionTemplate
        metadata: { name: t }
        spec: { jobs: [ { job: a } ] }

        """,
    "collections/c.yaml": Fixtures.collection("c", jobs: ["b"], template: "t"),
]

@Suite struct WorkspaceTests {
    /// Each step edits the repository; after it, both oracles must agree.
    @Test func pathScopedPlanningMatchesFullPlanningAtEveryStep() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let workspace = try makeWorkspace(fixture, folder)
        try workspace.apply(ref: nil)

        let steps: [(String, () throws -> Void)] = [
            ("edit a job's mapping", { try fixture.write(["jobs/a.yaml": Fixtures.job("a", extraMapping: "{ source: m, destination: mail }")]) }),
            ("add a job and a collection", {
                try fixture.write(["jobs/new.yml": Fixtures.job("n"), "collections/d.yaml": Fixtures.collection("d", jobs: ["n", "a"])])
            }),
            ("change the template: collection c re-expands", {
                try fixture.write(["templates/t.yaml": (baseFiles["templates/t.yaml"] ?? "").replacingOccurrences(
                    of: "[ { job: a } ]", with: "[ { job: a, onFailure: continue }, { job: n } ]")])
            }),
            ("move a job to another file", {
                try fixture.remove("jobs/b.yaml")
                try fixture.write(["jobs/all.yaml": Fixtures.job("b") + "---\n" + Fixtures.job("extra")])
            }),
            ("delete a collection and the job only it used", {
                try fixture.remove("collections/d.yaml")
            }),
            ("change only a data file", { try fixture.write(["data/in.csv": "id,m,x,y\n1,a,b,c\n2,d,e,f\n"]) }),
            ("add a template on a template", {
                try fixture.write(["templates/u.yaml": """
                    apiVersion: syncwright.dev/v1
                    kind: JobCollectionTemplate
                    metadata: { name: u }
                    spec: { template: t, jobs: [ { job: extra } ] }

                    """, "collections/c.yaml": Fixtures.collection("c", jobs: ["b"], template: "u")])
            }),
            ("edit the base template under it", {
                try fixture.write(["templates/t.yaml": baseFiles["templates/t.yaml"] ?? ""])
            }),
        ]
        for (name, edit) in steps {
            try edit()
            let head = try fixture.commit(name)
            try workspace.fetch()
            let scoped = try workspace.manifestPlan(ref: nil)
            #expect(scoped.mode == .pathScoped, "\(name)")
            let applied = try workspace.store.appliedRevision()?.revision
            let full = try workspace.fullPlan(commit: try #require(ObjectID(hex: head)), appliedRevision: applied)
            #expect(scoped.plan == full.plan, "\(name): path-scoped and full plans differ")
            try workspace.apply(ref: nil)

            let fresh = try makeWorkspace(fixture, folder, "fresh-\(UUID().uuidString.prefix(6))")
            try fresh.apply(ref: nil)
            #expect(try workspace.store.allRecords() == fresh.store.allRecords(), "\(name): stored states differ")
            #expect(try workspace.store.appliedRevision()?.revision == head)
        }
    }

    @Test func aTemplateChangeShowsOnTheCollectionsUsingIt() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let workspace = try makeWorkspace(fixture, folder)
        try workspace.apply(ref: nil)
        try fixture.write(["templates/t.yaml": (baseFiles["templates/t.yaml"] ?? "").replacingOccurrences(
            of: "{ job: a }", with: "{ job: a, onFailure: continue }")])
        try fixture.commit("template")
        try workspace.fetch()
        let planned = try workspace.plan(ref: nil)
        #expect(planned.parsedFiles == 1)
        #expect(planned.plan.changes.map(\.key) == [ObjectKey(.jobCollectionTemplate, "t"), ObjectKey(.jobCollection, "c")])
        #expect(planned.plan.changes[1].fields == [
            FieldChange(path: "spec.jobs[job=a].onFailure", old: .string("abort"), new: .string("continue")),
        ])
    }

    @Test func aNoChangePlanParsesNothing() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let workspace = try makeWorkspace(fixture, folder)
        let first = try workspace.plan(ref: nil)
        #expect(first.mode == .full && first.parsedFiles == 5)
        try workspace.apply(ref: nil)
        let again = try workspace.plan(ref: nil)
        #expect(again.mode == .unchanged && again.parsedFiles == 0 && again.plan.isEmpty)
    }

    @Test func anInvalidRevisionAppliesNothing() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let workspace = try makeWorkspace(fixture, folder)
        try workspace.apply(ref: nil)
        let before = try workspace.store.allRecords()
        let revision = try workspace.store.appliedRevision()
        // A valid edit and a broken reference in one commit: neither may be applied.
        try fixture.write(["jobs/a.yaml": Fixtures.job("a", extraMapping: "{ source: m, destination: mail }")])
        try fixture.remove("jobs/b.yaml")
        let bad = try fixture.commit("remove a job still in use")
        try workspace.fetch()
        do {
            try workspace.apply(ref: nil)
            Issue.record("apply of an invalid revision succeeded")
        } catch ReconcilerError.invalidManifests(let rev, let error) {
            #expect(rev == bad)
            #expect(error.problems.map(\.description) == [
                "collections/c.yaml:7:14: spec.jobs[0].job: no Job named 'b' exists",
            ])
        }
        #expect(try workspace.store.allRecords() == before)
        #expect(try workspace.store.appliedRevision() == revision)
    }

    @Test func applyingAnOlderRefByTagOrShaWorks() throws {
        let fixture = try GitFixture(files: baseFiles)
        let first = try fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try fixture.write(["jobs/c.yaml": Fixtures.job("c")])
        try fixture.commit("add c")
        let folder = try TemporaryFolder()
        let workspace = try makeWorkspace(fixture, folder)
        try workspace.apply(ref: nil)
        let plan = try workspace.apply(ref: String(first.prefix(10)))
        #expect(plan.changes.map(\.key) == [ObjectKey(.job, "c")])
        #expect(plan.changes.map(\.action) == [.delete])
        #expect(throws: ReconcilerError.self) { try workspace.plan(ref: "nope") }
    }

    /// Errors carry what is at fault, so that a caller can tell causes apart without reading text.
    @Test func errorsNameWhatIsAtFault() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let workspace = try makeWorkspace(fixture, folder)
        #expect { try workspace.run(collection: "anything") } throws: {
            if case .nothingApplied? = $0 as? ReconcilerError { true } else { false }
        }
        try workspace.apply(ref: nil)
        let known = try workspace.collections().map(\.name)
        #expect { try workspace.run(collection: "nope") } throws: {
            guard case let .unknownCollection(name, applied, orRun)? = $0 as? ReconcilerError else { return false }
            return name == "nope" && applied == known && !orRun
        }
        #expect { try workspace.plan(ref: "nope") } throws: {
            guard case let .unknownRef(ref, _)? = $0 as? ReconcilerError else { return false }
            return ref == "nope"
        }
        #expect { try workspace.logs(run: "r-none", job: nil) } throws: {
            guard case let .unknownRun(id)? = $0 as? ReconcilerError else { return false }
            return id == "r-none"
        }
        #expect { try workspace.request("req-none") } throws: {
            guard case let .unknownRequest(id, pending)? = $0 as? ReconcilerError else { return false }
            return id == "req-none" && pending.isEmpty
        }
    }
}

@Suite struct HomeTests {
    @Test func initCreatesConfigCloneAndState() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let home = try Home.create(at: folder.sub("h"), config: HomeConfig(remote: fixture.originURL, reportsBranch: "runs"),
                                   force: false)
        #expect(FileManager.default.fileExists(atPath: home.statePath))
        #expect(try runProcess("/usr/bin/git", ["--git-dir", home.repositoryPath, "rev-parse", "--is-bare-repository"])
            .stdout == "true\n")
        let reopened = try Home.open(folder.sub("h"))
        #expect(reopened.config == HomeConfig(remote: fixture.originURL, branch: "main", reportsBranch: "runs"))
        // No stray staging folder is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.sub("h")).sorted()
                == ["config.yaml", "repo.git", "state.sqlite"])
    }

    @Test func initOnAnExistingHomeNeedsForce() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let workspace = try makeWorkspace(fixture, folder)
        try workspace.apply(ref: nil)
        #expect(throws: ReconcilerError.self) {
            try Home.create(at: folder.sub("home"), config: HomeConfig(remote: fixture.originURL), force: false)
        }
        #expect(try workspace.store.appliedRevision() != nil)
        let replaced = try Home.create(at: folder.sub("home"), config: HomeConfig(remote: fixture.originURL), force: true)
        #expect(try SQLiteStateStore(path: replaced.statePath).appliedRevision() == nil)
    }

    @Test func aFailedInitLeavesNothingBehind() throws {
        let folder = try TemporaryFolder()
        #expect(throws: ReconcilerError.self) {
            try Home.create(at: folder.sub("h"), config: HomeConfig(remote: "file:///nonexistent.git"), force: false)
        }
        #expect(!FileManager.default.fileExists(atPath: folder.sub("h")))
        let fixture = try GitFixture(files: baseFiles)
        let error = #expect(throws: ReconcilerError.self) {
            try Home.create(at: folder.sub("h"), config: HomeConfig(remote: fixture.originURL, branch: "develop"), force: false)
        }
        #expect(error?.description == "the branch 'develop' does not exist in \(fixture.originURL)")
        #expect(!FileManager.default.fileExists(atPath: folder.sub("h")))
    }

    @Test func aMistypedConfigFieldIsNamed() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let home = try Home.create(at: folder.sub("h"), config: HomeConfig(remote: fixture.originURL), force: false)
        let text = try String(contentsOfFile: home.configPath, encoding: .utf8)
        try (text + "credentials:\n  sshkey: { privateKey: /k }\n").write(toFile: home.configPath, atomically: true, encoding: .utf8)
        let error = #expect(throws: ReconcilerError.self) { try Home.open(folder.sub("h")) }
        #expect(error?.description == "\(home.configPath):5:3: credentials.sshkey: unknown field "
                + "(expected one of: passwordFrom, sshKey, tokenFrom, username)")
    }

    @Test func aLockTimeoutThatIsNoDurationIsNamed() throws {
        let fixture = try GitFixture(files: baseFiles)
        let folder = try TemporaryFolder()
        let home = try Home.create(at: folder.sub("h"), config: HomeConfig(remote: fixture.originURL), force: false)
        let text = try String(contentsOfFile: home.configPath, encoding: .utf8)
        try (text + "destinationLockTimeout: soon\n").write(toFile: home.configPath, atomically: true, encoding: .utf8)
        let error = #expect(throws: ReconcilerError.self) { try Home.open(folder.sub("h")) }
        #expect(error?.description.contains("destinationLockTimeout: 'soon' is not a duration (write e.g. 30s, 10m)") == true,
                "\(error?.description ?? "")")
        try (text + "destinationLockTimeout: 90s\n").write(toFile: home.configPath, atomically: true, encoding: .utf8)
        #expect(try Home.open(folder.sub("h")).config.lockTimeout == 90)
    }

    @Test func secretsAreReadByReferenceAndNamedWhenMissing() throws {
        let folder = try TemporaryFolder()
        try "s3cret\n".write(toFile: folder.sub("token"), atomically: true, encoding: .utf8)
        #expect(try SecretReference(file: folder.sub("token")).resolve("the git token") == "s3cret")
        let missing = #expect(throws: ReconcilerError.self) {
            try SecretReference(env: "SYNCWRIGHT_TEST_UNSET_VARIABLE").resolve("the git token")
        }
        #expect(missing?.description == "the git token is read from the environment variable SYNCWRIGHT_TEST_UNSET_VARIABLE, which is not set")
    }

    @Test func aMissingHomeSaysRunInit() throws {
        let folder = try TemporaryFolder()
        let error = #expect(throws: ReconcilerError.self) { try Home.open(folder.sub("nothing")) }
        #expect(error?.description == "no Syncwright home at \(folder.sub("nothing")): run `syncwright init <repo-url>` first")
    }
}
