import CGit2
import Foundation

extension GitRepository {
    /// The identity git would author a commit as here: `GIT_AUTHOR_NAME` and `GIT_AUTHOR_EMAIL`
    /// when set, else `user.name` and `user.email` from the repository's, the user's and the
    /// system's git config. Nil when there is no email address.
    public func defaultSignature() -> GitSignature? {
        let environment = ProcessInfo.processInfo.environment
        if let email = environment["GIT_AUTHOR_EMAIL"], !email.isEmpty {
            return GitSignature(name: environment["GIT_AUTHOR_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? email, email: email)
        }
        return try? locked { () throws(GitError) -> GitSignature? in
            var signature: UnsafeMutablePointer<git_signature>?
            guard git_signature_default(&signature, handle) == 0, let signature else { return nil }
            defer { git_signature_free(signature) }
            let name = signature.pointee.name.map { String(cString: $0) } ?? ""
            let email = signature.pointee.email.map { String(cString: $0) } ?? ""
            return email.isEmpty ? nil : GitSignature(name: name, email: email)
        }
    }

    /// The messages of the newest `limit` commits on `tip`'s first-parent line, newest first.
    public func recentMessages(from tip: ObjectID, limit: Int) throws(GitError) -> [String] {
        try locked { () throws(GitError) -> [String] in
            var messages: [String] = []
            var current: ObjectID? = tip
            while let id = current, messages.count < limit {
                let commit = try lookupCommit(id)
                defer { git_commit_free(commit) }
                messages.append(git_commit_message(commit).map { String(cString: $0) } ?? "")
                current = git_commit_parentcount(commit) > 0 ? git_commit_parent_id(commit, 0).map { ObjectID($0.pointee) } : nil
            }
            return messages
        }
    }

    /// For each path, the newest commit that wrote the content the path has at `tip`: the commit
    /// whose tree has that blob there while none of its parents has. A merge that only brings in
    /// a branch's commit is not that commit; the branch's commit is.
    ///
    /// The walk starts at `tip` and stops at `hiding` (the last applied revision, whose content
    /// is known); a path whose content is older than that, or that `tip` does not hold, is
    /// absent from the result.
    public func commitsWriting(_ paths: [String], at tip: ObjectID, hiding: ObjectID?) throws(GitError) -> [String: CommitInfo] {
        guard !paths.isEmpty else { return [:] }
        let wanted = try locked { () throws(GitError) -> [(String, git_oid)] in
            let tree = try lookupTree(of: tip)
            defer { git_tree_free(tree) }
            return paths.compactMap { path in blobID(in: tree, path: path).map { (path, $0) } }
        }
        var found: [String: ObjectID] = [:]
        try locked { () throws(GitError) in
            var walk: OpaquePointer?
            try check(git_revwalk_new(&walk, handle), "walking the history of \(tip.short)")
            defer { git_revwalk_free(walk) }
            try check(git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue), "sorting the history walk")
            var start = tip.oid
            try check(git_revwalk_push(walk, &start), "walking the history of \(tip.short)")
            if var hidden = hiding?.oid {
                // A hidden commit that is not in this history (a rewritten branch) just hides nothing.
                _ = git_revwalk_hide(walk, &hidden)
            }
            var oid = git_oid()
            while found.count < wanted.count, git_revwalk_next(&oid, walk) == 0 {
                let id = ObjectID(oid)
                let commit = try lookupCommit(id)
                defer { git_commit_free(commit) }
                var tree: OpaquePointer?
                try check(git_commit_tree(&tree, commit), "reading the tree of commit \(id.short)")
                defer { git_tree_free(tree) }
                var parentTrees: [OpaquePointer] = []
                defer { parentTrees.forEach { git_tree_free($0) } }
                for index in 0..<git_commit_parentcount(commit) {
                    var parent: OpaquePointer?
                    try check(git_commit_parent(&parent, commit, index), "reading a parent of commit \(id.short)")
                    defer { git_commit_free(parent) }
                    var parentTree: OpaquePointer?
                    try check(git_commit_tree(&parentTree, parent), "reading the tree of a parent of \(id.short)")
                    if let parentTree { parentTrees.append(parentTree) }
                }
                for (path, blob) in wanted where found[path] == nil {
                    guard let tree, var here = blobID(in: tree, path: path) else { continue }
                    var target = blob
                    guard git_oid_equal(&here, &target) != 0 else { continue }
                    let inAParent = parentTrees.contains { parentTree in
                        guard var there = blobID(in: parentTree, path: path) else { return false }
                        return git_oid_equal(&there, &target) != 0
                    }
                    if !inAParent { found[path] = id }
                }
            }
        }
        var result: [String: CommitInfo] = [:]
        for (path, commit) in found { result[path] = try commitInfo(commit) }
        return result
    }

    /// The blob id at `path` in an open tree, or nil.
    private func blobID(in tree: OpaquePointer, path: String) -> git_oid? {
        var entry: OpaquePointer?
        guard git_tree_entry_bypath(&entry, tree, path) == 0, let entry else { return nil }
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_BLOB, let id = git_tree_entry_id(entry) else { return nil }
        return id.pointee
    }
}
