import Foundation
import Planner
@testable import Reconciler
import TestSupport
import Testing

/// A changed data file is counted by rows: matched by the reading job's key, by DN in LDIF, or
/// whole; a file that does not parse says so instead of counting.
@Suite struct DataFileTests {
    static let connections = """
        apiVersion: syncwright.dev/v1
        kind: Connection
        metadata: { name: hr }
        spec: { type: csv, repoPath: data/hr.csv }
        ---
        apiVersion: syncwright.dev/v1
        kind: Connection
        metadata: { name: extra }
        spec: { type: csv, repoPath: data/extra.csv, delimiter: ";" }
        ---
        apiVersion: syncwright.dev/v1
        kind: Connection
        metadata: { name: seed }
        spec: { type: ldif, repoPath: data/seed.ldif }
        ---
        apiVersion: syncwright.dev/v1
        kind: Connection
        metadata: { name: out }
        spec: { type: ldif, path: out.ldif }

        """
    static let job = """
        apiVersion: syncwright.dev/v1
        kind: Job
        metadata: { name: users }
        spec:
          source: { connection: hr }
          destination: { connection: out }
          mappings:
            - { source: id, destination: employeeNumber, key: true }
            - { source: login, destination: uid }

        """

    @Test func rowsAreMatchedByTheJobsKeyByDNOrWhole() throws {
        let fixture = try GitFixture(files: [
            "connections.yaml": Self.connections, "job.yaml": Self.job,
            "data/hr.csv": "id,login\n1,ann\n2,bob\n3,cat\n",
            "data/extra.csv": "a;b\nx;1\ny;2\n",
            "data/seed.ldif": "dn: uid=ann,dc=x\nuid: ann\n\ndn: uid=bob,dc=x\nuid: bob\n",
        ])
        let base = try fixture.git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try fixture.write([
            "data/hr.csv": "id,login\n1,ann\n2,robert\n4,dan\n5,eve\n",        // 2 changed, 3 removed, 4 and 5 added
            "data/extra.csv": "a;b\nx;1\ny;3\n",                                  // no job reads it: whole rows
            "data/seed.ldif": "dn: UID=ann,dc=x\nuid: ann\ncn: Ann\n\ndn: uid=cat,dc=x\nuid: cat\n", // by DN, case of the type aside
        ])
        let head = try fixture.commit("data")
        let plan = try Offline.diff(base: base, head: head, in: fixture.workTree)
        #expect(plan.changes.isEmpty && !plan.isEmpty)
        #expect(plan.dataFiles == [
            DataFileChange(path: "data/extra.csv", rows: 2, added: 1, removed: 1, changed: 0, key: nil),
            DataFileChange(path: "data/hr.csv", rows: 4, added: 2, removed: 1, changed: 1, key: ["id"]),
            DataFileChange(path: "data/seed.ldif", rows: 2, added: 1, removed: 1, changed: 1, key: ["dn"]),
        ])
        #expect(plan.dataFiles[1].summary == "data/hr.csv: 4 rows (+2 −1 ~1)")
        #expect(plan.text(colour: false).contains("~ data/hr.csv: 4 rows (+2 −1 ~1)"))

        // A file that no longer parses: its change is shown with the reason, not counts.
        try fixture.write(["data/hr.csv": "id,login\n1,ann,extra\n"])
        let broken = try fixture.commit("broken csv")
        let second = try Offline.diff(base: head, head: broken, in: fixture.workTree)
        let problem = try #require(second.dataFiles.first?.problem)
        #expect(second.dataFiles.first?.summary == "data/hr.csv: changed; its rows could not be counted: \(problem)")
        #expect(problem.contains("data/hr.csv"), "\(problem)")
    }
}
