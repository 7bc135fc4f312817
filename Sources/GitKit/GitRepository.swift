import CGit2
import Foundation

/// A file read from a tree at a commit.
public struct RepoFile: Sendable, Equatable {
    public let path: String
    public let contents: Data
}

/// One path that differs between two trees.
public struct PathChange: Sendable, Equatable, Hashable {
    public enum Status: String, Sendable { case added, modified, deleted }
    public let path: String
    public let status: Status
    public init(path: String, status: Status) {
        self.path = path
        self.status = status
    }
}

/// Who made a commit, and when.
public struct CommitInfo: Sendable, Equatable {
    public let id: ObjectID
    public let authorName: String
    public let authorEmail: String
    public let time: Date
    public let summary: String
}

/// An open git repository, owning its libgit2 handle.
///
/// `@unchecked Sendable`: libgit2 allows one repository handle to be used from one thread at a
/// time; every method here takes `lock` for the whole libgit2 conversation, so concurrent callers
/// are serialised.
public final class GitRepository: @unchecked Sendable {
    let handle: OpaquePointer
    private let lock = NSLock()
    /// The path libgit2 opened (the `.git` folder of a work tree, or the bare folder).
    public let path: String
    /// Remote URLs, read from the config once and kept; used under `lock` only.
    private var remoteURLs: [String: String] = [:]

    private init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    deinit { git_repository_free(handle) }

    /// A new in-memory remote for the URL of remote `name`; the caller frees it. Call under
    /// `lock` only.
    ///
    /// libgit2 1.5 leaks about 20 KiB each time it matches a config key against a regular
    /// expression without a match (its PCRE2 match data is not freed), and `git_remote_lookup`
    /// does that for every key of the config. A reconciler that fetches and pushes forever would
    /// grow by it, so the URL is looked up once, and each operation gets an anonymous remote that
    /// reads no config. (A kept remote is no answer: it keeps its transport between connections,
    /// so a push after a fetch would reuse the fetch's transport.)
    func remote(_ name: String) throws(GitError) -> OpaquePointer {
        let url: String
        if let known = remoteURLs[name] {
            url = known
        } else {
            var named: OpaquePointer?
            try check(git_remote_lookup(&named, handle, name), "looking up remote \(name)")
            defer { git_remote_free(named) }
            guard let found = named.flatMap({ git_remote_url($0) }).map({ String(cString: $0) }) else {
                throw GitError(message: "the remote has no URL", operation: "looking up remote \(name)")
            }
            remoteURLs[name] = found
            url = found
        }
        var options = git_remote_create_options()
        try check(git_remote_create_options_init(&options, UInt32(GIT_REMOTE_CREATE_OPTIONS_VERSION)),
                  "preparing remote options")
        options.repository = handle
        options.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF.rawValue | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC.rawValue
        var remote: OpaquePointer?
        try check(git_remote_create_with_opts(&remote, url, &options), "opening remote \(name) (\(url))")
        guard let remote else { throw GitError(message: "no remote", operation: "opening remote \(name)") }
        return remote
    }

    func locked<T>(_ body: () throws(GitError) -> T) throws(GitError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: Opening

    /// Makes a bare clone of `url` at `path` (which must not exist or be empty).
    public static func cloneBare(from url: String, to path: String,
                                 credentials: GitCredentials = .none) throws(GitError) -> GitRepository {
        ensureLibgit2()
        let box = CredentialBox(credentials, url: url)
        var options = git_clone_options()
        try check(git_clone_options_init(&options, UInt32(GIT_CLONE_OPTIONS_VERSION)), "preparing clone options")
        options.bare = 1
        // For a remote on this machine, copy the object database (as `git clone /path` does) instead
        // of re-packing every object through the transport, which costs seconds on a large repository.
        if url.hasPrefix("file://") || url.hasPrefix("/") {
            options.local = GIT_CLONE_LOCAL
        }
        options.fetch_opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL
        try configure(&options.fetch_opts.callbacks, with: box)
        var out: OpaquePointer?
        var code = withExtendedLifetime(box) { git_clone(&out, url, path, &options) }
        // A local clone copies the remote's object folders as they are. While the remote receives
        // a push, git keeps the incoming objects in a quarantine folder (tmp_objdir-incoming-*)
        // that vanishes mid-copy: the copy then fails, though nothing is wrong. Try again.
        var attempts = 1
        while code < 0, options.local == GIT_CLONE_LOCAL, attempts < 5,
              let last = git_error_last(), let text = last.pointee.message, String(cString: text).contains("tmp_objdir") {
            attempts += 1
            try? FileManager.default.removeItem(atPath: path)
            usleep(50_000)
            code = withExtendedLifetime(box) { git_clone(&out, url, path, &options) }
        }
        if let failure = box.failure(code, "cloning \(url)") { throw failure }
        try check(code, "cloning \(url)")
        guard let out else { throw GitError(message: "libgit2 returned no repository", operation: "cloning \(url)") }
        let repo = GitRepository(handle: out, path: path)
        // Normalise the layout: branches are always read from refs/remotes/origin/*.
        try repo.fetch(credentials: credentials)
        return repo
    }

    /// Connects to `url` for fetching and disconnects, writing nothing: checks the remote's
    /// identity (host key or certificate) and that the credentials are accepted.
    public static func probe(_ url: String, credentials: GitCredentials = .none) throws(GitError) {
        ensureLibgit2()
        let operation = "connecting to \(url)"
        var remote: OpaquePointer?
        try check(git_remote_create_detached(&remote, url), operation)
        defer { git_remote_free(remote) }
        let box = CredentialBox(credentials, url: url)
        var callbacks = git_remote_callbacks()
        try check(git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION)), operation)
        try configure(&callbacks, with: box)
        let code = withExtendedLifetime(box) { git_remote_connect(remote, GIT_DIRECTION_FETCH, &callbacks, nil, nil) }
        if let failure = box.failure(code, operation) { throw failure }
        try check(code, operation)
        git_remote_disconnect(remote)
    }

    /// Opens the repository at exactly `path` (bare or not).
    public static func open(at path: String) throws(GitError) -> GitRepository {
        ensureLibgit2()
        var out: OpaquePointer?
        try check(git_repository_open(&out, path), "opening repository \(path)")
        guard let out else { throw GitError(message: "libgit2 returned no repository", operation: "opening \(path)") }
        return GitRepository(handle: out, path: path)
    }

    /// Opens the repository that contains `path`, searching upwards like `git` does.
    public static func discover(from path: String) throws(GitError) -> GitRepository {
        ensureLibgit2()
        var out: OpaquePointer?
        try check(git_repository_open_ext(&out, path, 0, nil),
                  "finding a git repository at or above \(path)")
        guard let out else { throw GitError(message: "libgit2 returned no repository", operation: "opening \(path)") }
        return GitRepository(handle: out, path: path)
    }

    // MARK: Remote

    /// Fetches every branch into `refs/remotes/<remote>/*` (pruning deleted ones) and every tag.
    public func fetch(remote name: String = "origin", credentials: GitCredentials = .none) throws(GitError) {
        try locked { () throws(GitError) in
            let remote = try self.remote(name)
            defer { git_remote_free(remote) }
            let url = git_remote_url(remote).map { String(cString: $0) } ?? name
            let box = CredentialBox(credentials, url: url)
            var options = git_fetch_options()
            try check(git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION)), "preparing fetch options")
            options.prune = GIT_FETCH_PRUNE
            options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL
            try configure(&options.callbacks, with: box)
            let refspec = "+refs/heads/*:refs/remotes/\(name)/*"
            let code: Int32 = withExtendedLifetime(box) {
                refspec.withCString { spec in
                    var specs: [UnsafeMutablePointer<CChar>?] = [UnsafeMutablePointer(mutating: spec)]
                    return specs.withUnsafeMutableBufferPointer { buffer in
                        var array = git_strarray(strings: buffer.baseAddress, count: 1)
                        return git_remote_fetch(remote, &array, &options, "syncwright: fetch")
                    }
                }
            }
            if let failure = box.failure(code, "fetching \(url)") { throw failure }
            try check(code, "fetching \(url)")
        }
    }

    // MARK: Resolving

    /// Resolves `ref` to a commit.
    ///
    /// A bare name is looked up first as a fetched branch (`refs/remotes/origin/NAME`), then as a
    /// tag, then by `git rev-parse` rules (full or short sha, `HEAD~1`, local branches).
    public func resolveCommit(_ ref: String, remote: String = "origin") throws(GitError) -> ObjectID {
        try locked { () throws(GitError) -> ObjectID in
            let candidates = ["refs/remotes/\(remote)/\(ref)", "refs/tags/\(ref)", ref]
            for candidate in candidates {
                var object: OpaquePointer?
                let code = git_revparse_single(&object, handle, candidate)
                if code == GIT_ENOTFOUND.rawValue || code == GIT_EINVALIDSPEC.rawValue || code == GIT_EAMBIGUOUS.rawValue {
                    if code == GIT_EAMBIGUOUS.rawValue {
                        throw GitError(code: code, message: "the short id is ambiguous; give more characters",
                                       operation: "resolving ref '\(ref)'")
                    }
                    continue
                }
                try check(code, "resolving ref '\(ref)'")
                defer { git_object_free(object) }
                var peeled: OpaquePointer?
                try check(git_object_peel(&peeled, object, GIT_OBJECT_COMMIT), "resolving ref '\(ref)' to a commit")
                defer { git_object_free(peeled) }
                guard let peeled, let id = git_object_id(peeled) else { continue }
                return ObjectID(id.pointee)
            }
            throw GitError(code: GIT_ENOTFOUND.rawValue,
                           message: "no branch, tag or commit is named '\(ref)'",
                           operation: "resolving ref '\(ref)'")
        }
    }

    /// Who made `commit`, and when.
    public func commitInfo(_ commit: ObjectID) throws(GitError) -> CommitInfo {
        try locked { () throws(GitError) -> CommitInfo in
            let object = try lookupCommit(commit)
            defer { git_commit_free(object) }
            let author = git_commit_author(object)
            let name = author?.pointee.name.map { String(cString: $0) } ?? ""
            let email = author?.pointee.email.map { String(cString: $0) } ?? ""
            let summary = git_commit_summary(object).map { String(cString: $0) } ?? ""
            let time = Date(timeIntervalSince1970: TimeInterval(git_commit_time(object)))
            return CommitInfo(id: commit, authorName: name, authorEmail: email, time: time, summary: summary)
        }
    }

    func lookupCommit(_ commit: ObjectID) throws(GitError) -> OpaquePointer {
        var out: OpaquePointer?
        var oid = git_oid()
        try check(git_oid_fromstr(&oid, commit.hex), "parsing commit id \(commit.hex)")
        try check(git_commit_lookup(&out, handle, &oid), "looking up commit \(commit.short)")
        guard let out else { throw GitError(message: "no commit", operation: "looking up commit \(commit.short)") }
        return out
    }

    func lookupTree(of commit: ObjectID) throws(GitError) -> OpaquePointer {
        let object = try lookupCommit(commit)
        defer { git_commit_free(object) }
        var tree: OpaquePointer?
        try check(git_commit_tree(&tree, object), "reading the tree of commit \(commit.short)")
        guard let tree else { throw GitError(message: "no tree", operation: "reading commit \(commit.short)") }
        return tree
    }

    // MARK: Reading trees

    /// Every blob in the tree at `commit` whose path satisfies `include`, with its contents.
    public func files(at commit: ObjectID, where include: (String) -> Bool) throws(GitError) -> [RepoFile] {
        try locked { () throws(GitError) -> [RepoFile] in
            let tree = try lookupTree(of: commit)
            defer { git_tree_free(tree) }
            var found: [(String, git_oid)] = []
            try collect(tree: tree, prefix: "", include: include, into: &found)
            var result: [RepoFile] = []
            result.reserveCapacity(found.count)
            for (path, oid) in found {
                result.append(RepoFile(path: path, contents: try readBlob(oid, path: path)))
            }
            return result
        }
    }

    /// The paths of every blob in the tree at `commit`.
    public func paths(at commit: ObjectID) throws(GitError) -> [String] {
        try locked { () throws(GitError) -> [String] in
            let tree = try lookupTree(of: commit)
            defer { git_tree_free(tree) }
            var found: [(String, git_oid)] = []
            try collect(tree: tree, prefix: "", include: { _ in true }, into: &found)
            return found.map(\.0)
        }
    }

    /// The blob at `path` in the tree at `commit`, or nil when there is none.
    public func file(at commit: ObjectID, path: String) throws(GitError) -> Data? {
        try blob(in: try tree(of: commit), path: path)
    }

    private func collect(tree: OpaquePointer, prefix: String, include: (String) -> Bool,
                         into found: inout [(String, git_oid)]) throws(GitError) {
        let count = git_tree_entrycount(tree)
        for index in 0..<count {
            guard let entry = git_tree_entry_byindex(tree, index),
                  let namePointer = git_tree_entry_name(entry),
                  let oid = git_tree_entry_id(entry) else { continue }
            let path = prefix + String(cString: namePointer)
            switch git_tree_entry_type(entry) {
            case GIT_OBJECT_TREE:
                var subtree: OpaquePointer?
                var id = oid.pointee
                try check(git_tree_lookup(&subtree, handle, &id), "reading folder \(path)")
                guard let subtree else { continue }
                defer { git_tree_free(subtree) }
                try collect(tree: subtree, prefix: path + "/", include: include, into: &found)
            case GIT_OBJECT_BLOB:
                if include(path) { found.append((path, oid.pointee)) }
            default:
                continue // submodules (commits) carry no content here
            }
        }
    }

    func readBlob(_ oid: git_oid, path: String) throws(GitError) -> Data {
        var id = oid
        var blob: OpaquePointer?
        try check(git_blob_lookup(&blob, handle, &id), "reading \(path)")
        guard let blob else { throw GitError(message: "no blob", operation: "reading \(path)") }
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard size > 0, let raw = git_blob_rawcontent(blob) else { return Data() }
        return Data(bytes: raw, count: size) // copied while the blob is alive
    }

    // MARK: Diffing

    /// The paths that differ between the trees of `old` and `new`. A rename shows as a delete
    /// and an add, which is what path-scoped planning needs.
    public func changedPaths(from old: ObjectID, to new: ObjectID) throws(GitError) -> [PathChange] {
        try locked { () throws(GitError) -> [PathChange] in
            let oldTree = try lookupTree(of: old)
            defer { git_tree_free(oldTree) }
            let newTree = try lookupTree(of: new)
            defer { git_tree_free(newTree) }
            var options = git_diff_options()
            try check(git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION)), "preparing diff options")
            var diff: OpaquePointer?
            try check(git_diff_tree_to_tree(&diff, handle, oldTree, newTree, &options),
                      "diffing \(old.short)..\(new.short)")
            defer { git_diff_free(diff) }
            var changes: [PathChange] = []
            for index in 0..<git_diff_num_deltas(diff) {
                guard let delta = git_diff_get_delta(diff, index) else { continue }
                let d = delta.pointee
                let newPath = d.new_file.path.map { String(cString: $0) }
                let oldPath = d.old_file.path.map { String(cString: $0) }
                switch d.status {
                case GIT_DELTA_ADDED:
                    if let newPath { changes.append(PathChange(path: newPath, status: .added)) }
                case GIT_DELTA_DELETED:
                    if let oldPath { changes.append(PathChange(path: oldPath, status: .deleted)) }
                case GIT_DELTA_RENAMED:
                    if let oldPath { changes.append(PathChange(path: oldPath, status: .deleted)) }
                    if let newPath { changes.append(PathChange(path: newPath, status: .added)) }
                default:
                    if let newPath { changes.append(PathChange(path: newPath, status: .modified)) }
                }
            }
            return changes
        }
    }
}
