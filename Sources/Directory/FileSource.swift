import Concurrency
import Foundation

/// Where a file directory's bytes come from.
public enum FileLocation: Sendable, Equatable {
    /// The file a directory here writes: nil for one read from the config repository.
    var writtenPath: String? {
        if case .path(let path) = self { path } else { nil }
    }

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
                throw DirectoryError.file(connection: what, path: path, problem: "cannot read \(path): the file does not exist")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw DirectoryError.file(connection: what, path: path, problem: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            return data
        }
    }

    /// The file's bytes in one buffer that entries may point into; nil as for `load`.
    func loadShared(what: String, missingIsEmpty: Bool) throws -> SharedBytes? {
        switch self {
        case .contents(let data, _):
            return SharedBytes(data)
        case .path(let path):
            let fd = open(path, O_RDONLY)
            if fd < 0 {
                if errno == ENOENT && missingIsEmpty { return nil }
                if errno == ENOENT { throw DirectoryError.file(connection: what, path: path, problem: "cannot read \(path): the file does not exist") }
                throw DirectoryError.file(connection: what, path: path, problem: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                throw DirectoryError.file(connection: what, path: path, problem: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                throw DirectoryError.file(connection: what, path: path, problem: "cannot read \(path): it is not a regular file")
            }
            let shared = SharedBytes(capacity: Int(info.st_size))
            // A large file is read in parts on all cores (filling fresh pages costs the kernel a
            // fault and a clear each, on the thread that reads); the sequential loop below then
            // only checks for the end, or reads what a file that grew meanwhile added.
            var filled = shared.readInParts(fd, size: Int(info.st_size))
            while true {
                if filled == shared.capacity { shared.grow() }
                let got = pread(fd, shared.start + filled, min(shared.capacity - filled, 1 << 24), off_t(filled))
                if got < 0 {
                    if errno == EINTR { continue }
                    throw DirectoryError.file(connection: what, path: path, problem: "cannot read \(path): \(String(cString: strerror(errno)))")
                }
                if got == 0 { break }
                filled += got
            }
            shared.count = filled
            return shared
        }
    }

    func writablePath(what: String) throws -> String {
        switch self {
        case .path(let path): return path
        case .contents(_, let label):
            throw DirectoryError.file(connection: what, path: label, problem: "\(label) is read from the config repository and cannot be written; "
                                 + "use path for a destination")
        }
    }
}

/// In-memory entries of a file directory, with DN lookup and deletion marks.
struct EntryTable<Item> {
    var entries: [Item?] = []
    /// Each entry's key (its normalised DN, or CSV row name), by position.
    private(set) var keys: [String] = []
    private(set) var index = KeyIndex()

    /// The hash `append` and the lookups use for `key` (may be worked out beforehand, on any thread).
    static func hash(_ key: String) -> Int { key.hashValue }

    init() {}

    /// A table of `entries` under `keys`, whose index is built separately (`KeyIndex.build`)
    /// and installed with `install(_:)` before any lookup.
    init(entries: [Item?], keys: [String]) {
        self.entries = entries
        self.keys = keys
    }

    mutating func install(_ index: KeyIndex) { self.index = index }

    /// The position of the entry indexed under `key`.
    func position(of key: String) -> Int? { index.position(of: key, hash: Self.hash(key), keys: keys) }

    /// Adds `entry` under `key`; returns the position an entry had under that key before, if any
    /// (the new one then replaces it in the index).
    @discardableResult
    mutating func append(_ entry: Item, key: String, hash: Int? = nil) -> Int? {
        entries.append(entry)
        keys.append(key)
        return index.insert(key, hash: hash ?? Self.hash(key), at: entries.count - 1, keys: keys)
    }

    /// Takes back the entry `append` just added under `key`, putting back the position the key
    /// had before.
    mutating func undoAppend(key: String, previous: Int) {
        index.restore(key, hash: Self.hash(key), from: entries.count - 1, to: previous)
        entries.removeLast()
        keys.removeLast()
    }

    /// Removes `key` from the index (its entry stays where it is).
    mutating func forget(_ key: String) { index.remove(key, hash: Self.hash(key), keys: keys) }

    /// Indexes the entry at `position` under `newKey` instead of its key.
    mutating func rekey(_ position: Int, to newKey: String) {
        forget(keys[position])
        keys[position] = newKey
        _ = index.insert(newKey, hash: Self.hash(newKey), at: position, keys: keys)
    }

    mutating func reserveCapacity(_ count: Int) {
        entries.reserveCapacity(count)
        keys.reserveCapacity(count)
        index.reserveCapacity(count)
    }
}

/// Positions by key, for a table's `keys`.
///
/// The index holds each key's hash, not the key: a lookup compares one number per probe and
/// then the one key it points at, instead of a string per probe (a million DNs are a million
/// separate strings). Two keys with one hash are told apart by a second index.
struct KeyIndex: Sendable {
    private var byHash: [Int: Int] = [:]
    /// Keys whose hash another key already holds in `byHash`.
    private var overflow: [String: Int] = [:]

    /// The index of `keys` (hashed as `hashes`); on a key that appears twice, the position of
    /// its second appearance instead.
    static func build(keys: [String], hashes: [Int]) -> Result<KeyIndex, Repeated> {
        var index = KeyIndex()
        index.reserveCapacity(keys.count)
        for position in keys.indices where index.insert(keys[position], hash: hashes[position], at: position, keys: keys) != nil {
            return .failure(Repeated(position: position))
        }
        return .success(index)
    }

    struct Repeated: Error { let position: Int }

    func position(of key: String, hash: Int, keys: [String]) -> Int? {
        if let found = byHash[hash], keys[found] == key { return found }
        return overflow.isEmpty ? nil : overflow[key]
    }

    /// Points `key` (which `keys` holds at `position`) at `position`; returns where it pointed before.
    mutating func insert(_ key: String, hash: Int, at position: Int, keys: [String]) -> Int? {
        if let holder = byHash[hash] {
            if keys[holder] != key { return overflow.updateValue(position, forKey: key) }
            if holder == position { return nil }
            byHash[hash] = position
            return holder
        }
        byHash[hash] = position
        return overflow.isEmpty ? nil : overflow.removeValue(forKey: key)
    }

    /// Points `key` back at `previous` instead of `current`.
    mutating func restore(_ key: String, hash: Int, from current: Int, to previous: Int) {
        if byHash[hash] == current { byHash[hash] = previous } else { overflow[key] = previous }
    }

    mutating func remove(_ key: String, hash: Int, keys: [String]) {
        if let holder = byHash[hash], keys[holder] == key { byHash[hash] = nil } else { overflow[key] = nil }
    }

    mutating func reserveCapacity(_ count: Int) { byHash.reserveCapacity(count) }
}

/// A file's bytes in one fixed buffer, shared by the records that point into it and never
/// changed once filled.
///
/// `@unchecked Sendable`: the bytes are written only while the file is read, before the buffer
/// is handed to anything else, and only read afterwards.
public final class SharedBytes: @unchecked Sendable {
    private(set) var start: UnsafeMutableRawPointer
    private(set) var capacity: Int
    fileprivate(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        start = Self.allocate(self.capacity)
    }

    private static func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        // Not huge pages: faulting them in stalled for compaction here (0.1 s to 1.2 s for 290 MB).
        .allocate(byteCount: count, alignment: 16)
    }

    convenience init(_ data: Data) {
        self.init(capacity: data.count)
        data.withUnsafeBytes { if let base = $0.baseAddress { start.copyMemory(from: base, byteCount: $0.count) } }
        count = data.count
    }

    /// Fills the first `size` bytes from `fd` with `pread` in parts on all cores, for files of
    /// 16 MiB or more; returns how many bytes are in place from the start (0 when the file is
    /// small, or when a part came up short because the file changed: the caller reads on).
    fileprivate func readInParts(_ fd: Int32, size: Int) -> Int {
        guard size >= 16 << 20, size <= capacity else { return 0 }
        let parts = max(2, ProcessInfo.processInfo.activeProcessorCount * 2)
        let short = ShortParts()
        let start = UInt(bitPattern: self.start)
        ParallelParts.forEach(parts: parts) { part in
            guard let base = UnsafeMutableRawPointer(bitPattern: start) else { return short.note() }
            var offset = size * part / parts
            let end = size * (part + 1) / parts
            while offset < end {
                let got = pread(fd, base + offset, end - offset, off_t(offset))
                if got < 0 && errno == EINTR { continue }
                if got <= 0 { return short.note() }
                offset += got
            }
        }
        return short.any ? 0 : size
    }

    /// Whether any part of `readInParts` came up short.
    private final class ShortParts: @unchecked Sendable {
        private let lock = NSLock()
        private var seen = false
        func note() { lock.withLock { seen = true } }
        var any: Bool { lock.withLock { seen } }
    }

    /// Doubles the room (the file grew while it was read).
    fileprivate func grow() {
        let bigger = Self.allocate(capacity * 2)
        bigger.copyMemory(from: start, byteCount: capacity)
        start.deallocate()
        start = bigger
        capacity *= 2
    }

    /// All the bytes.
    var buffer: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: start.assumingMemoryBound(to: UInt8.self), count: count)
    }

    /// The bytes in `range`.
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: start + range.lowerBound, count: range.count)
    }

    deinit { start.deallocate() }
}
