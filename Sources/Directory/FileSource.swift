import Foundation

/// Where a file directory's bytes come from.
public enum FileLocation: Sendable, Equatable {
    /// A file on this machine; the directory can be written.
    case path(String)
    /// Bytes read elsewhere (a `repoPath` file at the applied commit); read-only.
    case contents(Data, label: String)

    var label: String {
        switch self {
        case .path(let path): path
        case .contents(_, let label): label
        }
    }

    /// The file's bytes; nil when a path does not exist and `missingIsEmpty` is set.
    func load(what: String, missingIsEmpty: Bool) throws -> Data? {
        switch self {
        case .contents(let data, _):
            return data
        case .path(let path):
            if !FileManager.default.fileExists(atPath: path) {
                if missingIsEmpty { return nil }
                throw DirectoryError("\(what): cannot read \(path): the file does not exist")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw DirectoryError("\(what): cannot read \(path): \(String(cString: strerror(errno)))")
            }
            return data
        }
    }

    func writablePath(what: String) throws -> String {
        switch self {
        case .path(let path): return path
        case .contents(_, let label):
            throw DirectoryError("\(what): \(label) is read from the config repository and cannot be written; "
                                 + "use path for a destination")
        }
    }
}

/// In-memory entries of a file directory, with DN lookup and deletion marks.
struct EntryTable {
    var entries: [Entry?] = []
    /// Each entry's key (its normalised DN, or CSV row name), by position.
    var keys: [String] = []
    var index: [String: Int] = [:]

    /// Adds `entry` under `key`; returns the position an entry had under that key before, if any
    /// (the new one then replaces it in the index).
    @discardableResult
    mutating func append(_ entry: Entry, key: String) -> Int? {
        let previous = index.updateValue(entries.count, forKey: key)
        entries.append(entry)
        keys.append(key)
        return previous
    }

    /// Takes back the entry `append` just added under `key`, putting back the position the key
    /// had before.
    mutating func undoAppend(key: String, previous: Int) {
        entries.removeLast()
        keys.removeLast()
        index[key] = previous
    }

    mutating func reserveCapacity(_ count: Int) {
        entries.reserveCapacity(count)
        keys.reserveCapacity(count)
        index.reserveCapacity(count)
    }
}
