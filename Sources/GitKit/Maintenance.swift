import Foundation

extension GitRepository {
    /// Packs the repository's loose objects once there are many, as git does for its own
    /// clones: `git gc --auto`, in the foreground of the calling thread. libgit2 writes every
    /// object loose, and each report commit adds some, so a long-running reconciler's clone grows
    /// without end otherwise.
    ///
    /// git decides whether there is work (its `gc.auto` threshold: about 6,700 loose objects, or
    /// more than `gc.autoPackLimit` packs) and takes its own lock (`gc.pid`), so two homes' worth
    /// of processes never pack at once. Only objects already in a pack, or unreachable ones older
    /// than two weeks, are removed: nothing a concurrent writer made is touched. Returns git's
    /// stderr, nil when it had nothing to say.
    @discardableResult
    public func packLooseObjects() throws(GitError) -> String? {
        let operation = "packing the loose objects of \(path) (git gc --auto)"
        let child: GitProcess
        do {
            child = try GitProcess(arguments: ["git", "--git-dir", path, "-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"])
        } catch let error as GitError {
            throw GitError(code: error.code, message: "\(error.message): is git installed?", operation: operation)
        } catch {
            throw GitError(message: "\(error)", operation: operation)
        }
        child.finish()
        guard child.exitStatus == 0 else {
            throw GitError(code: -1, message: child.errorText() ?? "git exited with status \(child.exitStatus ?? -1)",
                           operation: operation)
        }
        return child.errorText()
    }
}
