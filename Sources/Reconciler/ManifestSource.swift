import Foundation
import GitKit
import Manifests
import Directory
import Sync

/// Where the manifests of one revision are read from.
public protocol ManifestSource {
    /// What the plan calls this revision: a full sha, or a folder path.
    var revision: String { get }
    /// Every manifest file.
    func manifestFiles() throws -> [ManifestFile]
    /// The manifest files among `paths` that exist at this revision.
    func manifestFiles(_ paths: [String]) throws -> [ManifestFile]
    /// Whether a repository-relative path exists (for `repoPath`).
    func exists(_ path: String) -> Bool
    /// A repository-relative file's contents at this revision, nil when it is absent.
    func contents(_ path: String) -> Data?
}

/// A commit in a git repository, read without a work tree.
public struct CommitSource: ManifestSource {
    let repository: GitRepository
    public let commit: ObjectID
    private let allPaths: Set<String>?

    /// `listAllPaths` walks the whole tree once, which a full build wants and a path-scoped one does not.
    init(repository: GitRepository, commit: ObjectID, listAllPaths: Bool) throws {
        self.repository = repository
        self.commit = commit
        self.allPaths = listAllPaths ? Set(try repository.paths(at: commit)) : nil
    }

    public var revision: String { commit.hex }

    public func manifestFiles() throws -> [ManifestFile] {
        try repository.files(at: commit, where: ManifestParser.isManifestPath)
            .map { ManifestFile(path: $0.path, contents: $0.contents) }
    }

    public func manifestFiles(_ paths: [String]) throws -> [ManifestFile] {
        try paths.compactMap { path in
            try repository.file(at: commit, path: path).map { ManifestFile(path: path, contents: $0) }
        }
    }

    public func contents(_ path: String) -> Data? {
        (try? repository.file(at: commit, path: path)) ?? nil
    }

    public func exists(_ path: String) -> Bool {
        if let allPaths { return allPaths.contains(path) }
        return ((try? repository.file(at: commit, path: path)) ?? nil) != nil
    }
}

/// A plain folder (`validate --path`), such as a work tree before it is committed.
public struct FolderSource: ManifestSource {
    public let root: String

    public init(root: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReconcilerError.folder(path: root, problem: "\(root) is not a folder")
        }
        self.root = root
    }

    public var revision: String { root }

    public func manifestFiles() throws -> [ManifestFile] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else {
            throw ReconcilerError.folder(path: root, problem: "cannot list the folder \(root)")
        }
        var paths: [String] = []
        while let path = enumerator.nextObject() as? String {
            if path == ".git" || path.hasSuffix("/.git") { enumerator.skipDescendants(); continue }
            if ManifestParser.isManifestPath(path) { paths.append(path) }
        }
        return try manifestFiles(paths.sorted())
    }

    public func manifestFiles(_ paths: [String]) throws -> [ManifestFile] {
        try paths.map { path in
            let full = (root as NSString).appendingPathComponent(path)
            guard let data = FileManager.default.contents(atPath: full) else {
                throw ReconcilerError.folder(path: full, problem: "cannot read \(full)")
            }
            return ManifestFile(path: path, contents: data)
        }
    }

    public func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent(path))
    }

    public func contents(_ path: String) -> Data? {
        FileManager.default.contents(atPath: (root as NSString).appendingPathComponent(path))
    }
}

extension ManifestSource {
    /// Parses and validates every manifest: the full, position-exact check.
    func fullDesiredState(_ files: [ManifestFile]? = nil) throws -> DesiredState {
        let files = try files ?? manifestFiles()
        let (manifests, problems) = ManifestParser.parse(files: files)
        var all = problems
        var state: DesiredState?
        // Documents declared but invalid: a reference to one is not also reported as missing.
        let invalid = problems.isEmpty ? [] : ManifestParser.declaredKeys(in: files).subtracting(manifests.map(\.key))
        do {
            state = try DesiredState.build(manifests: manifests, scope: .full, invalid: invalid, fileExists: exists)
        } catch let error as ManifestError {
            all += error.problems
        }
        if all.isEmpty { all += sourceFieldProblems(manifests) }
        guard all.isEmpty, var state else {
            throw ReconcilerError.invalidManifests(revision: revision, ManifestError(all))
        }
        // Policies last: they read the objects as they will be applied (templates expanded).
        let policies = fullPolicyReview(state)
        guard policies.denied.isEmpty else {
            throw ReconcilerError.invalidManifests(revision: revision, ManifestError(policies.denied.map(\.problem)))
        }
        state.policies = policies
        return state
    }
}

extension ManifestSource {
    /// Jobs whose source is a CSV file in the repository read fields its header lacks: each is a
    /// problem at the mapping or filter that names it (a misspelt column would empty an attribute).
    /// Templates and filters are parsed once per distinct text; a file with a problem is parsed
    /// again to locate it exactly.
    func sourceFieldProblems(_ manifests: [Manifest]) -> [ManifestProblem] {
        var connections: [String: ConnectionSpec] = [:]
        for manifest in manifests { if case .connection(let c) = manifest.spec { connections[manifest.metadata.name] = c } }
        var headers: [String: (names: [String], lowered: Set<String>)?] = [:]
        var templateFields: [String: [String]] = [:]
        var filterFields: [String: [String]] = [:]
        var found: [(manifest: Manifest, field: String, name: String, message: String)] = []
        for manifest in manifests {
            guard case .job(let job) = manifest.spec, let connection = connections[job.source.connection],
                  connection.type == .csv, let path = connection.repoPath else { continue }
            if headers[path] == nil {
                let names = contents(path).flatMap { data in
                    try? CSVDirectory.header(of: data, delimiter: connection.delimiter?.first ?? ",", what: path)
                }
                headers[path] = .some(names.map { ($0, Set($0.map { $0.lowercased() })) })
            }
            guard let header = headers[path] ?? nil, !header.names.isEmpty else { continue }
            func check(_ name: String, _ field: String) {
                guard !header.lowered.contains(name.lowercased()) else { return }
                let message = "names '\(name)', which \(path) (connection \(job.source.connection)) does not have"
                    + Suggestion.phrase(for: name, among: header.names)
                    + "; its header has \(header.names.prefix(30).joined(separator: ", "))"
                found.append((manifest, field, name, message))
            }
            for (index, mapping) in job.mappings.enumerated() {
                if let source = mapping.source { check(source, "spec.mappings[\(index)].source") }
                if let value = mapping.value {
                    if templateFields[value] == nil {
                        templateFields[value] = ((try? ValueTemplate.parse(value))?.fieldNames ?? []).map(\.name)
                    }
                    for name in templateFields[value] ?? [] { check(name, "spec.mappings[\(index)].value") }
                }
            }
            if let filter = job.source.filter {
                if filterFields[filter] == nil { filterFields[filter] = (try? FilterExpression.parse(filter))?.fields ?? [] }
                for name in filterFields[filter] ?? [] { check(name, "spec.source.filter") }
            }
        }
        guard !found.isEmpty else { return [] }
        // Each file with a problem, parsed again with every field's position.
        var located: [String: [ObjectKey: Manifest]] = [:]
        for file in Set(found.map(\.manifest.file)) {
            guard let data = contents(file) else { continue }
            let (again, _) = ManifestParser.parse(file: file, contents: data, locatingEveryField: true)
            located[file] = Dictionary(again.map { ($0.key, $0) }) { a, _ in a }
        }
        return found.map { problem in
            let manifest = located[problem.manifest.file]?[problem.manifest.key] ?? problem.manifest
            return ManifestProblem(manifest.location(of: problem.field), field: problem.field, problem.message)
        }
    }
}
