import CGit2
import Foundation

/// A name and email for commits.
public struct GitSignature: Sendable, Equatable {
    public var name: String
    public var email: String
    public init(name: String, email: String) {
        self.name = name
        self.email = email
    }
}

/// What a push did.
public struct PushResult: Sendable, Equatable {
    /// The commit the remote's branch now points at.
    public let commit: ObjectID
}

extension GitRepository {
    // MARK: References

    /// The commit a full reference name (`refs/remotes/origin/reports`) points at, or nil when
    /// there is no such reference.
    public func referenceTarget(_ name: String) throws(GitError) -> ObjectID? {
        try locked { () throws(GitError) -> ObjectID? in
            var oid = git_oid()
            let code = git_reference_name_to_id(&oid, handle, name)
            if code == GIT_ENOTFOUND.rawValue { return nil }
            try check(code, "reading reference \(name)")
            return ObjectID(oid)
        }
    }

    /// Points the local reference `name` at `commit`, creating or moving it.
    public func setReference(_ name: String, to commit: ObjectID, message: String) throws(GitError) {
        try locked { () throws(GitError) in
            var oid = commit.oid
            var reference: OpaquePointer?
            try check(git_reference_create(&reference, handle, name, &oid, 1, message), "setting \(name) to \(commit.short)")
            git_reference_free(reference)
        }
    }

    // MARK: Trees

    /// The tree of `commit`.
    public func tree(of commit: ObjectID) throws(GitError) -> ObjectID {
        try locked { () throws(GitError) -> ObjectID in
            let tree = try lookupTree(of: commit)
            defer { git_tree_free(tree) }
            return ObjectID(git_tree_id(tree).pointee)
        }
    }

    /// A new tree: `base` (nil for an empty tree) with `files` written at their paths, creating
    /// folders as needed. Only the folders on the way to a changed file are rewritten, so the
    /// cost does not depend on how much else the tree holds.
    public func updatedTree(base: ObjectID?, writing files: [(path: String, contents: Data)]) throws(GitError) -> ObjectID {
        try locked { () throws(GitError) -> ObjectID in
            var baseTree: OpaquePointer?
            if let base {
                var oid = base.oid
                try check(git_tree_lookup(&baseTree, handle, &oid), "reading tree \(base.short)")
            } else {
                // git_tree_create_updated needs a baseline: start from the empty tree.
                var builder: OpaquePointer?
                try check(git_treebuilder_new(&builder, handle, nil), "starting an empty tree")
                defer { git_treebuilder_free(builder) }
                var empty = git_oid()
                try check(git_treebuilder_write(&empty, builder), "writing an empty tree")
                try check(git_tree_lookup(&baseTree, handle, &empty), "reading the empty tree")
            }
            defer { git_tree_free(baseTree) }
            var blobs: [git_oid] = []
            blobs.reserveCapacity(files.count)
            for file in files {
                var oid = git_oid()
                let code = file.contents.withUnsafeBytes { bytes in
                    git_blob_create_from_buffer(&oid, handle, bytes.baseAddress, bytes.count)
                }
                try check(code, "writing \(file.path)")
                blobs.append(oid)
            }
            // The C strings must outlive the call: keep them in one array of duplicated buffers.
            let paths = files.map { strdup($0.path) }
            defer { paths.forEach { free($0) } }
            var updates = files.indices.map { index in
                git_tree_update(action: GIT_TREE_UPDATE_UPSERT, id: blobs[index], filemode: GIT_FILEMODE_BLOB,
                                path: UnsafePointer(paths[index]))
            }
            var out = git_oid()
            try check(git_tree_create_updated(&out, handle, baseTree, updates.count, &updates), "building the new tree")
            return ObjectID(out)
        }
    }

    /// The names in the folder `path` of `tree` (git's order: byte-wise), or [] when there is no
    /// such folder.
    public func entryNames(in tree: ObjectID, folder path: String) throws(GitError) -> [String] {
        try locked { () throws(GitError) -> [String] in
            guard let folder = try lookupFolder(tree, path) else { return [] }
            defer { git_tree_free(folder) }
            return (0..<git_tree_entrycount(folder)).compactMap { index in
                git_tree_entry_byindex(folder, index).flatMap { git_tree_entry_name($0) }.map { String(cString: $0) }
            }
        }
    }

    /// How many entries the folder `path` of `tree` holds, and its last entries in git's order:
    /// the last one, and those before it that share its first `prefixLength` characters (all
    /// but the last are left out when `prefixLength` is nil). Reads no other entry names.
    public func lastEntries(in tree: ObjectID, folder path: String,
                            sharingPrefix prefixLength: Int? = nil) throws(GitError) -> (count: Int, last: [String]) {
        try locked { () throws(GitError) -> (count: Int, last: [String]) in
            guard let folder = try lookupFolder(tree, path) else { return (0, []) }
            defer { git_tree_free(folder) }
            let count = git_tree_entrycount(folder)
            var names: [String] = []
            var index = count
            while index > 0, let entry = git_tree_entry_byindex(folder, index - 1), let raw = git_tree_entry_name(entry) {
                let name = String(cString: raw)
                if let first = names.first {
                    guard let prefixLength, name.prefix(prefixLength) == first.prefix(prefixLength) else { break }
                }
                names.append(name)
                index -= 1
                if prefixLength == nil { break }
            }
            return (count, names)
        }
    }

    /// The blob at `path` in `tree`, or nil.
    public func blob(in tree: ObjectID, path: String) throws(GitError) -> Data? {
        try locked { () throws(GitError) -> Data? in
            guard let id = try entryID(in: tree, path: path, type: GIT_OBJECT_BLOB) else { return nil }
            return try readBlob(id, path: path)
        }
    }

    /// Whether `tree` has an entry (of any type) at `path`; reads no blob.
    public func contains(_ tree: ObjectID, path: String) throws(GitError) -> Bool {
        try locked { () throws(GitError) -> Bool in try entryID(in: tree, path: path, type: nil) != nil }
    }

    /// The subtree at `path` ("" for the root), or nil when there is none. The caller frees it.
    private func lookupFolder(_ tree: ObjectID, _ path: String) throws(GitError) -> OpaquePointer? {
        var id = tree.oid
        if !path.isEmpty {
            guard let found = try entryID(in: tree, path: path, type: GIT_OBJECT_TREE) else { return nil }
            id = found
        }
        var folder: OpaquePointer?
        try check(git_tree_lookup(&folder, handle, &id), "reading folder \(path.isEmpty ? tree.short : path)")
        return folder
    }

    /// The id of the entry at `path` in `tree` when it is of `type` (nil: of any type); nil when
    /// there is none.
    private func entryID(in tree: ObjectID, path: String, type: git_object_t?) throws(GitError) -> git_oid? {
        var oid = tree.oid
        var root: OpaquePointer?
        try check(git_tree_lookup(&root, handle, &oid), "reading tree \(tree.short)")
        defer { git_tree_free(root) }
        var entry: OpaquePointer?
        let code = git_tree_entry_bypath(&entry, root, path)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try check(code, "looking up \(path)")
        defer { git_tree_entry_free(entry) }
        guard let entry, type.map({ git_tree_entry_type(entry) == $0 }) ?? true, let id = git_tree_entry_id(entry) else { return nil }
        return id.pointee
    }

    // MARK: Commits

    /// Writes a commit of `tree` with `parents`, by `author` (also the committer), without
    /// touching any reference.
    public func createCommit(tree: ObjectID, parents: [ObjectID], message: String, author: GitSignature,
                             time: Date = Date()) throws(GitError) -> ObjectID {
        try locked { () throws(GitError) -> ObjectID in
            var signature: UnsafeMutablePointer<git_signature>?
            try check(git_signature_new(&signature, author.name, author.email, git_time_t(time.timeIntervalSince1970), 0),
                      "making the signature \(author.name) <\(author.email)>")
            defer { git_signature_free(signature) }
            var treeID = tree.oid
            var treeObject: OpaquePointer?
            try check(git_tree_lookup(&treeObject, handle, &treeID), "reading tree \(tree.short)")
            defer { git_tree_free(treeObject) }
            var parentObjects: [OpaquePointer?] = []
            defer { parentObjects.forEach { git_commit_free($0) } }
            for parent in parents {
                parentObjects.append(try lookupCommit(parent))
            }
            var out = git_oid()
            // An empty parent list (a root commit) has no buffer: libgit2 is given NULL then.
            let code = parentObjects.withUnsafeMutableBufferPointer { buffer in
                git_commit_create(&out, handle, nil, signature, signature, "UTF-8", message, treeObject,
                                  parents.count, buffer.baseAddress)
            }
            try check(code, "writing the commit")
            return ObjectID(out)
        }
    }

    /// Who committed `commit` (which may differ from its author).
    public func committer(of commit: ObjectID) throws(GitError) -> GitSignature {
        try locked { () throws(GitError) -> GitSignature in
            let object = try lookupCommit(commit)
            defer { git_commit_free(object) }
            let committer = git_commit_committer(object)
            return GitSignature(name: committer?.pointee.name.map { String(cString: $0) } ?? "",
                                email: committer?.pointee.email.map { String(cString: $0) } ?? "")
        }
    }

    // MARK: Pushing

    /// Pushes the local reference `source` to `destination` on the remote, never forcing.
    ///
    /// Throws a `GitError` whose `isRejected` is true when the remote refused because its branch
    /// moved on (found before sending, or reported by the server through `push_update_reference`);
    /// any other error means the remote could not be reached or failed.
    ///
    /// Remotes on this machine are pushed through `git receive-pack` (see `PipeTransport`), so the
    /// remote checks the branch's old value as a server does.
    @discardableResult
    public func push(_ source: String, to destination: String, remote name: String = "origin",
                     credentials: GitCredentials = .none) throws(GitError) -> PushResult {
        try locked { () throws(GitError) -> PushResult in
            let remote = try self.remote(name)
            defer { git_remote_free(remote) }
            let url = git_remote_url(remote).map { String(cString: $0) } ?? name
            let operation = "pushing \(destination) to \(url)"
            var local = git_oid()
            try check(git_reference_name_to_id(&local, handle, source), "reading \(source)")
            let box = CredentialBox(credentials, url: url)
            var options = git_push_options()
            try check(git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION)), "preparing push options")
            try configure(&options.callbacks, with: box)
            options.callbacks.push_update_reference = { refname, status, payload in
                guard let status, let payload else { return 0 }
                let box = Unmanaged<CredentialBox>.fromOpaque(payload).takeUnretainedValue()
                box.rejected.append((refname.map { String(cString: $0) } ?? "", String(cString: status)))
                return 0
            }
            if PipeTransport.serves(url) { options.callbacks.transport = PipeTransport.transportCallback }
            let refspec = "\(source):\(destination)" // no leading +: never a forced update
            let code: Int32 = withExtendedLifetime(box) {
                refspec.withCString { spec in
                    var specs: [UnsafeMutablePointer<CChar>?] = [UnsafeMutablePointer(mutating: spec)]
                    return specs.withUnsafeMutableBufferPointer { buffer in
                        var array = git_strarray(strings: buffer.baseAddress, count: 1)
                        return git_remote_push(remote, &array, &options)
                    }
                }
            }
            if code == GIT_ENONFASTFORWARD.rawValue {
                throw GitError(code: code, message: "the remote's \(destination) has commits this clone has not fetched",
                               operation: operation)
            }
            if let failure = box.failure(code, operation) { throw failure }
            do throws(GitError) {
                try check(code, operation)
            } catch {
                // libgit2's words ("early EOF") say little: say what was pushed where, and what to check.
                throw GitError(code: error.code, message: "\(error.message) (check that \(url) exists and can be reached "
                    + "from here, that the credentials in config.yaml may push to it, and that no server hook refuses "
                    + "\(destination))", operation: operation)
            }
            if let refusal = box.rejected.first {
                throw GitError(code: GIT_ENONFASTFORWARD.rawValue, message: "the remote refused \(refusal.ref): \(refusal.reason)",
                               operation: operation)
            }
            // The remote holds it now: move the remote-tracking branch, as `git push` does (the
            // anonymous remote has no fetch refspec for libgit2 to do it with). Best effort: the
            // push has happened, and the next fetch sets the same value if another process holds
            // the ref's lock right now.
            if destination.hasPrefix("refs/heads/") {
                let tracking = "refs/remotes/\(name)/" + destination.dropFirst("refs/heads/".count)
                var reference: OpaquePointer?
                if git_reference_create(&reference, handle, tracking, &local, 1, "syncwright: push") == 0 {
                    git_reference_free(reference)
                }
            }
            return PushResult(commit: ObjectID(local))
        }
    }
}
