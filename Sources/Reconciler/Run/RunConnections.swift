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

/// Where a run reads its jobs and connections: the applied state (a run), or a revision's
/// manifests over it (`plan --preview`: what the revision changes, adds or deletes, and the
/// applied state for the rest).
struct ManifestLookup {
    let store: any StateStore
    /// A revision's objects that differ from the applied ones (all of them before a first apply).
    var revised: [ObjectKey: ObjectRecord] = [:]
    /// Applied objects the revision deletes.
    var deleted: Set<ObjectKey> = []

    func spec(_ key: ObjectKey) throws -> Spec? {
        if deleted.contains(key) { return nil }
        if let record = revised[key] { return try Canonical.decode(kind: key.kind, json: record.spec).1 }
        return try store.manifest(key)?.spec
    }

    /// The names of every object of `kind`.
    func names(of kind: Kind) throws -> [String] {
        var names = Set(try store.hashes(of: kind).keys)
        for key in revised.keys where key.kind == kind { names.insert(key.name) }
        for key in deleted where key.kind == kind { names.remove(key.name) }
        return names.sorted()
    }

    func job(_ name: String) throws -> JobSpec {
        guard case .job(let job)? = try spec(ObjectKey(.job, name)) else { throw ReconcilerError.notApplied(ObjectKey(.job, name)) }
        return job
    }

    func connection(_ name: String) throws -> ConnectionSpec {
        guard case .connection(let connection)? = try spec(ObjectKey(.connection, name)) else {
            throw ReconcilerError.notApplied(ObjectKey(.connection, name))
        }
        return connection
    }
}

/// The directories opened during one run, by connection name, and the specs read for it (each
/// decoded once). One directory per connection for the whole run: a later job reads what an
/// earlier one wrote, and in a preview what it would have written.
struct RunConnections {
    let manifests: ManifestLookup
    /// For a preview: a server is opened under a `StagedDirectory`, so that what a job would
    /// write there is seen by the later jobs, and nothing reaches the server.
    var previewing = false
    private var open: [String: Directory] = [:]
    /// Where each `resolve: { job: … }` reference leads, once looked up in this run. Such
    /// targets are where the referenced job leaves its rows (worked out as its plan would), so
    /// they hold after that job has run too: a later job that refers to the same job's rows
    /// reuses them rather than reading both directories again.
    var jobTargets: [ValueReference: ReferenceTargets] = [:]
    private var jobs: [String: JobSpec] = [:]
    private var connections: [String: ConnectionSpec] = [:]

    init(_ manifests: ManifestLookup) { self.manifests = manifests }

    mutating func job(_ name: String) throws -> JobSpec {
        if let known = jobs[name] { return known }
        let spec = try manifests.job(name)
        jobs[name] = spec
        return spec
    }

    mutating func connection(_ name: String) throws -> ConnectionSpec {
        if let known = connections[name] { return known }
        let spec = try manifests.connection(name)
        connections[name] = spec
        return spec
    }

    mutating func get(_ connection: String, _ make: () throws -> Directory) throws -> Directory {
        if let directory = open[connection] { return directory }
        var directory = try make()
        if previewing && !directory.traits.stagesChanges { directory = StagedDirectory(over: directory) }
        open[connection] = directory
        return directory
    }

    mutating func evict(_ connection: String) { open[connection] = nil }

    func isOpen(_ connection: String) -> Bool { open[connection] != nil }
}

/// A job ready to run: its spec, its compiled engine, and its two directories.
struct OpenedJob {
    let spec: JobSpec
    var engine: JobEngine
    let source: Directory
    let destination: Directory
}

/// Opening a job's directories from the stored connection specs: the connection factory.
extension Workspace {
    /// Masked in every log, report and preview, whatever the manifests say.
    static let defaultSecretAttributes: Set<AttributeName> = ["userPassword", "unicodePwd"]

    /// The job's engine and its two directories, opened from the stored connections.
    func prepare(job name: String, revision: String, directories: inout RunConnections) throws -> OpenedJob {
        let job = try directories.job(name)
        let sourceConnection = try directories.connection(job.source.connection)
        let destinationConnection = try directories.connection(job.destination.connection)
        let secrets = Self.defaultSecretAttributes.union(
            [job.secretAttributes, sourceConnection.secretAttributes, destinationConnection.secretAttributes]
                .flatMap { $0 ?? [] }.map { AttributeName($0) })
        var engine = try JobEngine(name: name, spec: job, destinationNeedsDN: destinationConnection.type != .csv,
                                   secretAttributes: secrets)
        engine.maxValuesPerRequest = destinationConnection.maxValuesPerRequest ?? engine.maxValuesPerRequest
        var joinDelimiters: [AttributeName: String] = [:]
        for mapping in job.mappings { if let d = mapping.delimiter { joinDelimiters[AttributeName(mapping.destination)] = d } }
        let source = try directories.get(job.source.connection) {
            try open(job.source.connection, sourceConnection, revision: revision, asDestination: false, multiValue: [:])
        }
        let destination = try directories.get(job.destination.connection) {
            try open(job.destination.connection, destinationConnection, revision: revision, asDestination: true,
                     multiValue: joinDelimiters)
        }
        if job.mappings.contains(where: { secrets.contains(AttributeName($0.destination)) }) { destination.willHoldSecrets() }
        return OpenedJob(spec: job, engine: engine, source: source, destination: destination)
    }

    /// Looks up where each reference of the job's mappings leads, as the directories are now
    /// (earlier jobs of this run have written theirs): another job's rows, planned read-only
    /// against its destination (once per run: see `jobTargets`), or the destination's own
    /// objects (at each job, as they change).
    func resolveReferences(_ opened: inout OpenedJob, revision: String, directories: inout RunConnections) throws {
        for reference in opened.engine.references {
            let started = DispatchTime.now()
            do {
                if let job = reference.job {
                    if let known = directories.jobTargets[reference] {
                        opened.engine.resolved[reference] = known
                    } else {
                        let itself = job == opened.engine.name
                        let target = itself ? opened : try prepare(job: job, revision: revision, directories: &directories)
                        // A job's own rows: its plan reads the same, so the directories keep it.
                        let targets = try target.engine.referenceTargets(for: reference, source: target.source,
                                                                         destination: target.destination, planNext: itself)
                        opened.engine.resolved[reference] = targets
                        directories.jobTargets[reference] = targets
                    }
                } else {
                    opened.engine.resolved[reference] = try JobEngine.attributeTargets(
                        reference, destination: opened.destination, pageSize: opened.engine.pageSize)
                }
            } catch {
                throw ReconcilerError.reference(job: opened.engine.name, reference: reference.summary, problem: Self.describe(error))
            }
            logger.debug("reference looked up", metadata: [
                "job": "\(opened.engine.name)", "reference": "\(reference.summary)",
                "targets": "\(opened.engine.resolved[reference]?.count ?? 0)", "ms": "\(RunTimer.milliseconds(since: started))"])
        }
    }

    func open(_ name: String, _ spec: ConnectionSpec, revision: String, asDestination: Bool,
                      multiValue: [AttributeName: String]) throws -> Directory {
        let what = "connection \(name)"
        if spec.type == .ldap {
            guard let url = spec.url, let baseDN = spec.baseDN else { throw ReconcilerError.connection(name: name, problem: "it names no url or baseDN") }
            let password = try spec.passwordFrom?.resolve("the password of \(what)")
            var settings = LDAPSettings(
                url: url, startTLS: spec.startTLS ?? false, caFile: spec.caFile, insecureSkipVerify: spec.insecureSkipVerify ?? false,
                bindDN: spec.bindDN, password: password, baseDN: baseDN,
                pageSize: spec.pageSize ?? (spec.flavor == .activeDirectory ? 1_000 : 500),
                timeout: spec.timeout.flatMap { DurationText($0)?.seconds } ?? 30, maxOutstanding: spec.maxOutstanding ?? 32)
            settings.activeDirectory = spec.flavor == .activeDirectory
            return LDAPDirectory(settings, what: what)
        }
        let location: FileLocation
        if let repoPath = spec.repoPath {
            guard let commit = ObjectID(hex: revision) else { throw ReconcilerError.connection(name: name, problem: "the revision \(revision) is no commit id") }
            guard let data = try repository.file(at: commit, path: repoPath) else {
                throw ReconcilerError.connection(name: name, problem: "\(repoPath) does not exist at revision \(commit.short)")
            }
            location = .contents(data, label: "\(repoPath)@\(commit.short)")
        } else if let path = spec.path {
            let absolute = path.hasPrefix("/") ? path : (home.path as NSString).appendingPathComponent(path)
            location = .path(absolute)
        } else {
            throw ReconcilerError.connection(name: name, problem: "it names no file")
        }
        switch spec.type {
        case .csv:
            return CSVDirectory(location, what: what, delimiter: spec.delimiter?.first ?? ",",
                                multiValueDelimiters: multiValue, missingIsEmpty: asDestination)
        case .ldif:
            return LDIFDirectory(location, what: what, missingIsEmpty: asDestination)
        case .ldap:
            throw ReconcilerError.connection(name: name, problem: "an ldap connection has no file") // returned above
        }
    }
}
