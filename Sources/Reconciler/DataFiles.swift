import Directory
import Foundation
import GitKit
import Manifests
import Planner

/// Row counts of the data files (connections' `repoPath`) a revision changes.
enum DataFiles {
    /// The data files among `paths` (what differs from `base` to `head`), read at both revisions
    /// and matched row by row. `specs` gives the connections and jobs at `head`, and is asked only
    /// when a changed path can be a data file (not a manifest): a file is a connection's
    /// `repoPath`, and its rows are matched by the key columns of the first job (by name) that
    /// reads it.
    static func changes(in repository: GitRepository, base: ObjectID, head: ObjectID, paths: [PathChange],
                        specs: () throws -> (connections: [String: ConnectionSpec], jobs: [String: JobSpec])) throws -> [DataFileChange] {
        let changed = Set(paths.filter { $0.status != .deleted }.map(\.path))
        guard changed.contains(where: { !ManifestParser.isManifestPath($0) }) else { return [] }
        let (connections, jobs) = try specs()
        var files: [String: (name: String, spec: ConnectionSpec)] = [:]
        for (name, spec) in connections.sorted(by: { $0.key < $1.key }) {
            guard let path = spec.repoPath, spec.type != .ldap, changed.contains(path), files[path] == nil else { continue }
            files[path] = (name, spec)
        }
        return try files.keys.sorted().map { path in
            let (name, spec) = files[path]!
            let key = spec.type == .ldif ? nil : rowKey(of: name, jobs: jobs)
            let label = spec.type == .ldif ? ["dn"] : key?.map(\.name)
            let new: [String: [Int]], old: [String: [Int]]
            do {
                new = try rows(of: path, at: head, spec, key: key, repository)
                old = try rows(of: path, at: base, spec, key: key, repository)
            } catch {
                return DataFileChange(path: path, rows: 0, added: 0, removed: 0, changed: 0, key: label,
                                      problem: Workspace.describe(error))
            }
            var added = 0, removed = 0, changedRows = 0
            for (identity, fingerprints) in new {
                let before = old[identity] ?? []
                // Duplicates of one key are matched in order; the surplus is added or removed.
                let matched = min(before.count, fingerprints.count)
                changedRows += zip(before.prefix(matched), fingerprints.prefix(matched)).filter { $0 != $1 }.count
                added += fingerprints.count - matched
                removed += before.count - matched
            }
            for (identity, fingerprints) in old where new[identity] == nil { removed += fingerprints.count }
            return DataFileChange(path: path, rows: new.values.reduce(0) { $0 + $1.count },
                                  added: added, removed: removed, changed: changedRows, key: label)
        }
    }

    /// The key columns of the first job (by name) that reads the connection, if it has any.
    private static func rowKey(of connection: String, jobs: [String: JobSpec]) -> [AttributeName]? {
        for name in jobs.keys.sorted() where jobs[name]!.source.connection == connection {
            let columns: [AttributeName] = jobs[name]!.mappings.filter(\.key).compactMap(\.source).map { AttributeName($0) }
            return columns.isEmpty ? nil : columns
        }
        return nil
    }

    /// The file's rows by identity (the key's values, the DN in LDIF, or the whole row), each as a
    /// fingerprint of its fields. An absent file has no rows.
    private static func rows(of path: String, at commit: ObjectID, _ spec: ConnectionSpec, key: [AttributeName]?,
                             _ repository: GitRepository) throws -> [String: [Int]] {
        guard let data = try repository.file(at: commit, path: path) else { return [:] }
        let location = FileLocation.contents(data, label: "\(path)@\(commit.short)")
        let directory: any Directory = spec.type == .ldif
            ? LDIFDirectory(location, what: path, missingIsEmpty: true)
            : CSVDirectory(location, what: path, delimiter: spec.delimiter?.first ?? ",", multiValueDelimiters: [:],
                           missingIsEmpty: true)
        var out: [String: [Int]] = [:]
        try directory.read(ReadScope(), pageSize: 10_000) { page in
                for entry in page {
                    var fields: [String] = []
                    for index in 0..<entry.nameCount {
                        let values = entry.values(at: index).map { String(decoding: $0, as: UTF8.self) }
                        fields.append("\(entry.name(at: index).name.lowercased())=\(values.joined(separator: "\u{1}"))")
                    }
                    fields.sort()
                    let whole = fields.joined(separator: "\u{0}")
                    let identity: String
                    if spec.type == .ldif {
                        identity = DistinguishedName.normalize(entry.dn)
                    } else if let key {
                        identity = key.map { entry.values(of: $0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\u{1}") }
                            .joined(separator: "\u{0}")
                    } else {
                        identity = whole
                    }
                    out[identity, default: []].append(whole.hashValue)
                }
            }
        return out
    }
}
