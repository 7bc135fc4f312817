import Concurrency
import Directory
import Foundation
import GitKit
import Logging
import Manifests
import Reports
import Scheduling
import StateStore
import Sync

extension Workspace {
    /// Stored runs, newest first. A collection that is neither applied nor has runs is an error.
    public func history(collection: String?, limit: Int) throws -> [RunReport] {
        let runs = try store.runReports(collection: collection, limit: limit)
        if let collection, runs.isEmpty {
            let known = try collections().map(\.name)
            if !known.contains(collection) {
                throw ReconcilerError.unknownCollection(collection, applied: known, orRun: true)
            }
        }
        return runs
    }

    /// A recorded run's job logs, failures (`!`) first, then the rest in order; only `job`'s
    /// when given. The run may be named by a unique prefix of its id.
    public func logs(run id: String, job: String?) throws -> (report: RunReport, logs: [(job: String, lines: [String])]) {
        guard let report = try store.runReport(id: id) else {
            throw ReconcilerError.unknownRun(id)
        }
        let names = report.jobs.map(\.name)
        if let job, !names.contains(job) {
            throw ReconcilerError.unknownJob(run: report.runId, job: job, jobs: names)
        }
        var out: [(String, [String])] = []
        for name in names where job == nil || name == job {
            let lines = (try store.jobLog(run: report.runId, job: name) ?? "").split(separator: "\n", omittingEmptySubsequences: true)
                .map(String.init)
            out.append((name, lines.filter { $0.hasPrefix("! ") } + lines.filter { !$0.hasPrefix("! ") }))
        }
        return (report, out)
    }
}
