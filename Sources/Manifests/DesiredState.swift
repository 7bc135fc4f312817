import Foundation

/// One object as planned and stored: its effective spec (templates expanded) and the spec as written.
public struct ObjectRecord: Sendable, Equatable {
    public let key: ObjectKey
    /// The repository file that defines it.
    public let file: String
    /// Canonical JSON of `{metadata, spec}` after template expansion: what is compared and run.
    public let spec: String
    /// Canonical JSON of `{metadata, spec}` as written, for re-expansion without re-parsing.
    public let raw: String
    /// SHA-256 of `spec`.
    public let hash: String
    /// What the object refers to, for path-scoped re-checks.
    public let references: [Reference.Target]

    public init(key: ObjectKey, file: String, spec: String, raw: String, hash: String, references: [Reference.Target]) {
        self.key = key
        self.file = file
        self.spec = spec
        self.raw = raw
        self.hash = hash
        self.references = references
    }
}

/// What is already applied, as far as building a path-scoped desired state needs to know.
///
/// The state store implements it; a full build uses `EmptyCatalog`.
public protocol AppliedCatalog {
    /// The file that defines `key`, or nil when no such object is applied.
    func file(of key: ObjectKey) throws -> String?
    /// Applied objects that refer to any of `targets`, with their files.
    func referrers(of targets: Set<Reference.Target>) throws -> [ObjectKey: String]
    /// The applied object `key` as written (`ObjectRecord.raw`), with its file.
    func raw(_ key: ObjectKey) throws -> (json: String, file: String)?
    /// Applied objects defined in any of `files`.
    func keys(inFiles files: Set<String>) throws -> [ObjectKey]
}

/// A catalog with nothing applied.
public struct EmptyCatalog: AppliedCatalog {
    public init() {}
    public func file(of key: ObjectKey) -> String? { nil }
    public func referrers(of targets: Set<Reference.Target>) -> [ObjectKey: String] { [:] }
    public func raw(_ key: ObjectKey) -> (json: String, file: String)? { nil }
    public func keys(inFiles files: Set<String>) -> [ObjectKey] { [] }
}

/// Which files a build covers.
public enum BuildScope: Sendable, Equatable {
    /// Every manifest of the revision was parsed; nothing applied is trusted.
    case full
    /// Only these paths changed since the applied revision; applied objects in other files still hold.
    case changed(Set<String>)
}

/// The validated desired state of a revision (or, path-scoped, of the part of it that may differ).
public struct DesiredState: Sendable, Equatable {
    /// Objects to compare with what is applied: every object (full), or those in changed files plus
    /// collections whose templates changed (path-scoped).
    public var objects: [ObjectKey: ObjectRecord]
    public var scope: BuildScope
    /// The policies checked over `objects` (and, when a policy changed, over the applied objects
    /// it matches); set by the caller, which can read the files to locate what it finds.
    public var policies: PolicyReview?

    public init(objects: [ObjectKey: ObjectRecord], scope: BuildScope) {
        self.objects = objects
        self.scope = scope
    }

    /// Builds and validates. Throws every problem found, each with its file, line, column and field.
    ///
    /// - Parameters:
    ///   - manifests: the parsed documents (all of them, or those of the changed files).
    ///   - applied: what is applied; consulted only for a `.changed` scope.
    ///   - fileExists: whether a repository path exists at the revision (for `repoPath`).
    ///   - invalid: documents that failed to parse (their own problems are reported): a reference
    ///     to one is not reported as missing too.
    public static func build(manifests: [Manifest], scope: BuildScope, applied: AppliedCatalog = EmptyCatalog(),
                             invalid: Set<ObjectKey> = [], fileExists: (String) -> Bool) throws -> DesiredState {
        try withoutActuallyEscaping(fileExists) { fileExists in
            var builder = Builder(scope: scope, applied: applied, fileExists: fileExists)
            builder.invalid = invalid
            return try builder.run(manifests)
        }
    }
}

private struct Builder {
    let scope: BuildScope
    let applied: AppliedCatalog
    let fileExists: (String) -> Bool
    var problems: [ManifestProblem] = []
    var parsed: [ObjectKey: Manifest] = [:]
    var appliedFileCache: [ObjectKey: String?] = [:]
    var invalid: Set<ObjectKey> = []

    init(scope: BuildScope, applied: AppliedCatalog, fileExists: @escaping (String) -> Bool) {
        self.scope = scope
        self.applied = applied
        self.fileExists = fileExists
    }

    var changed: Set<String>? {
        if case .changed(let paths) = scope { return paths }
        return nil
    }

    /// The file of an applied object that still holds (its file did not change).
    mutating func heldFile(_ key: ObjectKey) throws -> String? {
        guard let changed else { return nil }
        if let cached = appliedFileCache[key] { return cached }
        let file = try applied.file(of: key)
        let held = file.flatMap { changed.contains($0) ? nil : $0 }
        appliedFileCache[key] = held
        return held
    }

    mutating func exists(_ key: ObjectKey) throws -> Bool {
        if parsed[key] != nil { return true }
        return try heldFile(key) != nil
    }

    mutating func run(_ manifests: [Manifest]) throws -> DesiredState {
        // Names are unique per kind.
        for manifest in manifests {
            if let first = parsed[manifest.key] {
                problems.append(ManifestProblem(manifest.location(of: "metadata.name"), field: "metadata.name",
                                                "duplicate \(manifest.kind.rawValue) name '\(manifest.metadata.name)' "
                                                + "(first defined at \(first.location(of: "metadata.name")))"))
                continue
            }
            if let other = try heldFile(manifest.key) {
                problems.append(ManifestProblem(manifest.location(of: "metadata.name"), field: "metadata.name",
                                                "duplicate \(manifest.kind.rawValue) name '\(manifest.metadata.name)' "
                                                + "(also defined in \(other))"))
                continue
            }
            parsed[manifest.key] = manifest
        }
        // Every reference resolves.
        for manifest in manifests where parsed[manifest.key] == manifest {
            for reference in manifest.references {
                switch reference.target {
                case .object(let key):
                    // A document that is itself invalid has its own errors: not "missing" as well.
                    if try !exists(key), !invalid.contains(key) {
                        let known = parsed.keys.filter { $0.kind == key.kind }.map(\.name).sorted()
                        problems.append(ManifestProblem(manifest.location(of: reference.field), field: reference.field,
                                                        "no \(key.kind.rawValue) named '\(key.name)' exists"
                                                            + Suggestion.phrase(for: key.name, among: known)))
                    }
                case .file(let path):
                    if !fileExists(path) {
                        problems.append(ManifestProblem(manifest.location(of: reference.field), field: reference.field,
                                                        "the file '\(path)' does not exist in the repository"))
                    }
                }
            }
        }
        try checkJobReferences(manifests)
        try checkNotificationChannels(manifests)
        // Path-scoped: applied objects in unchanged files must not lose what they refer to.
        var affectedCollections: [ObjectKey: Manifest] = [:]
        if let changed {
            let removed = Set(try applied.keys(inFiles: changed).filter { parsed[$0] == nil })
            var targets = Set(removed.map { Reference.Target.object($0) })
            targets.formUnion(changed.filter { !fileExists($0) }.map { Reference.Target.file($0) })
            for (key, file) in try applied.referrers(of: targets) where !changed.contains(file) {
                problems.append(ManifestProblem(SourceLocation(file: file, line: 1, column: 1), field: "",
                                                "\(key) refers to something this change removes"))
            }
            affectedCollections = try collectionsUsingChangedTemplates(removed: removed)
        }
        // Templates expand without cycles; a collection lists each job once.
        var objects: [ObjectKey: ObjectRecord] = [:]
        objects.reserveCapacity(parsed.count + affectedCollections.count)
        for manifest in parsed.values where parsed[manifest.key] == manifest {
            if let record = try record(for: manifest) { objects[manifest.key] = record }
        }
        for manifest in affectedCollections.values where objects[manifest.key] == nil {
            if let record = try record(for: manifest) { objects[manifest.key] = record }
        }
        if !problems.isEmpty { throw ManifestError(problems) }
        return DesiredState(objects: objects, scope: scope)
    }

    /// Applied collections (and, through them, templates) in unchanged files whose template changed.
    mutating func collectionsUsingChangedTemplates(removed: Set<ObjectKey>) throws -> [ObjectKey: Manifest] {
        var frontier = Set(parsed.keys.filter { $0.kind == .jobCollectionTemplate })
            .union(removed.filter { $0.kind == .jobCollectionTemplate })
        var seen = frontier
        var result: [ObjectKey: Manifest] = [:]
        while !frontier.isEmpty {
            let referrers = try applied.referrers(of: Set(frontier.map { .object($0) }))
            frontier = []
            for (key, _) in referrers where parsed[key] == nil {
                guard let manifest = try appliedManifest(key) else { continue }
                if key.kind == .jobCollection {
                    result[key] = manifest
                } else if key.kind == .jobCollectionTemplate, seen.insert(key).inserted {
                    frontier.insert(key)
                }
            }
        }
        return result
    }

    mutating func appliedManifest(_ key: ObjectKey) throws -> Manifest? {
        guard let (json, file) = try applied.raw(key) else { return nil }
        let (metadata, spec) = try Canonical.decode(kind: key.kind, json: json)
        return Manifest(metadata: metadata, spec: spec, file: file,
                        location: SourceLocation(file: file, line: 1, column: 1))
    }

    mutating func template(_ name: String) throws -> Manifest? {
        let key = ObjectKey(.jobCollectionTemplate, name)
        if let manifest = parsed[key] { return manifest }
        guard try heldFile(key) != nil else { return nil }
        return try appliedManifest(key)
    }

    /// The jobs a template contributes, its base templates' first. Nil after reporting a cycle.
    mutating func templateJobs(_ name: String, from manifest: Manifest, chain: [String]) throws -> [CollectionEntry]? {
        if chain.contains(name) {
            let cycle = (chain + [name]).joined(separator: " → ")
            problems.append(ManifestProblem(manifest.location(of: "spec.template"), field: "spec.template",
                                            "template cycle: \(cycle)"))
            return nil
        }
        guard let template = try template(name), case .jobCollectionTemplate(let spec) = template.spec else {
            return [] // a dangling reference is already reported
        }
        var jobs: [CollectionEntry] = []
        if let base = spec.template {
            guard let baseJobs = try templateJobs(base, from: manifest, chain: chain + [name]) else { return nil }
            jobs = baseJobs
        }
        return jobs + spec.jobs
    }

    mutating func record(for manifest: Manifest) throws -> ObjectRecord? {
        let raw = manifest.canonical.json
        var effective = manifest.spec
        switch manifest.spec {
        case .jobCollection(var spec):
            if let name = spec.template {
                guard let base = try templateJobs(name, from: manifest, chain: []) else { return nil }
                spec.jobs = base + spec.jobs
            }
            if spec.jobs.isEmpty {
                problems.append(ManifestProblem(manifest.location(of: "spec.jobs"), field: "spec.jobs",
                                                "a collection needs at least one job"))
            }
            checkUnique(spec.jobs, in: manifest)
            effective = .jobCollection(spec)
        case .jobCollectionTemplate(let spec):
            if let name = spec.template {
                guard let base = try templateJobs(name, from: manifest, chain: [manifest.metadata.name]) else {
                    return nil
                }
                checkUnique(base + spec.jobs, in: manifest)
            } else {
                checkUnique(spec.jobs, in: manifest)
            }
        default:
            break
        }
        let (json, hash) = effective == manifest.spec
            ? manifest.canonical
            : { let json = Canonical.json(metadata: manifest.metadata, spec: effective); return (json, Canonical.hash(json)) }()
        return ObjectRecord(key: manifest.key, file: manifest.file, spec: json, raw: raw, hash: hash,
                            references: manifest.references.map(\.target))
    }

    /// A mapping that resolves through another job names a job that writes to the same
    /// destination connection (the DNs it gives are that directory's), and whose rows a value
    /// can name: by its one key, or by a column or DN.
    mutating func checkJobReferences(_ manifests: [Manifest]) throws {
        for manifest in manifests where parsed[manifest.key] == manifest {
            guard case .job(let job) = manifest.spec else { continue }
            for (index, mapping) in job.mappings.enumerated() {
                guard let reference = mapping.resolve, let name = reference.job else { continue }
                let field = "spec.mappings[\(index)].resolve.job"
                let key = ObjectKey(.job, name)
                let target: Manifest? = if let parsed = parsed[key] { parsed }
                    else if try heldFile(key) != nil { try appliedManifest(key) } else { nil }
                guard let target, case .job(let other) = target.spec else { continue } // a missing job is reported above
                if other.destination.connection != job.destination.connection {
                    problems.append(ManifestProblem(manifest.location(of: field), field: field,
                        "job '\(name)' writes to connection '\(other.destination.connection)', not '\(job.destination.connection)', "
                        + "so the DNs it gives are not this destination's; resolve by attribute to look objects up here instead"))
                } else if reference.by == nil, reference.from == nil, other.mappings.filter(\.key).count > 1 {
                    problems.append(ManifestProblem(manifest.location(of: field), field: field,
                        "job '\(name)' matches rows by \(other.mappings.filter(\.key).count) keys, so one value cannot name a row; "
                        + "add by: (one of its source columns) or from: dn"))
                }
            }
        }
    }

    /// A collection's recipients are mailed through an smtp channel it lists, and an smtp channel
    /// it lists has recipients to mail.
    mutating func checkNotificationChannels(_ manifests: [Manifest]) throws {
        for manifest in manifests where parsed[manifest.key] == manifest {
            guard case .jobCollection(let collection) = manifest.spec, let notifications = collection.notifications else { continue }
            var types: [NotificationChannelType] = []
            for name in notifications.channels ?? [] {
                let key = ObjectKey(.notificationChannel, name)
                let channel: Manifest? = if let parsed = parsed[key] { parsed }
                    else if try heldFile(key) != nil { try appliedManifest(key) } else { nil }
                if let channel, case .notificationChannel(let spec) = channel.spec { types.append(spec.type) }
            }
            let field = "spec.notifications.recipients"
            if !notifications.recipients.isEmpty, !types.isEmpty, !types.contains(.smtp) {
                problems.append(ManifestProblem(manifest.location(of: "spec.notifications.channels"), field: field,
                    "recipients are mailed through an smtp channel, and none of the channels listed is one: list one, or leave recipients out"))
            } else if notifications.recipients.isEmpty, types.contains(.smtp) {
                problems.append(ManifestProblem(manifest.location(of: "spec.notifications.channels"), field: field,
                    "an smtp channel is listed, so name the recipients to mail"))
            }
        }
    }

    mutating func checkUnique(_ jobs: [CollectionEntry], in manifest: Manifest) {
        var seen: Set<String> = []
        for entry in jobs where !seen.insert(entry.job).inserted {
            let template: String? = switch manifest.spec {
            case .jobCollection(let s): s.template
            case .jobCollectionTemplate(let s): s.template
            default: nil
            }
            let viaTemplate = template.map { " (its template '\($0)' included)" } ?? ""
            problems.append(ManifestProblem(manifest.location(of: "spec.jobs"), field: "spec.jobs",
                                            "job '\(entry.job)' is listed twice\(viaTemplate)"))
        }
    }
}
