import Foundation

/// An exclusive lock on one file destination, held by a job from the read of the destination to
/// the commit, so two jobs (of one reconciler, of two homes, of two processes on one machine)
/// never rewrite a file each from its own read and lose the other's changes.
///
/// The lock is `flock(2)` on `.NAME.lock` beside the file, in its real folder (symlinks
/// resolved), so every spelling of one path takes the same lock. The kernel drops it when the
/// holder dies, so a killed job never leaves it stuck. It does not reach across machines (an NFS
/// folder shared by two hosts is not covered). Replicas on a PostgreSQL store need no more: only
/// the replica holding the store runs collections.
///
/// The handle has one owner, which releases it (or `deinit` does).
public final class DestinationLock {
    public let path: String
    private var fd: Int32

    /// The lock file for a destination file.
    public static func lockPath(for file: String) -> String {
        let folder = (file as NSString).deletingLastPathComponent
        let real = folder.isEmpty ? FileManager.default.currentDirectoryPath : folder
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let resolved = realpath(real, &buffer).map { _ in
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        } ?? real
        var name = (file as NSString).lastPathComponent
        // A symlinked file locks its target.
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: file) {
            let absolute = target.hasPrefix("/") ? target : (resolved as NSString).appendingPathComponent(target)
            return lockPath(for: absolute)
        }
        if name.isEmpty { name = "destination" }
        return (resolved as NSString).appendingPathComponent(".\(name).lock")
    }

    /// Takes the lock, waiting up to `timeout` seconds while another job holds it. `holder`
    /// describes this job to a job that waits (e.g. "collection nightly, job hr (pid 123)").
    /// `shouldStop` is asked while waiting. Throws a `DirectoryError` naming the file, how long
    /// it waited and who holds it.
    public init(file: String, what: String, holder: String, timeout: TimeInterval,
                shouldStop: () -> Bool = { false }) throws {
        path = Self.lockPath(for: file)
        let folder = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw DirectoryError.busy(connection: what, file: path, problem: "cannot create the lock file \(path): \(String(cString: strerror(errno)))")
        }
        let deadline = Date().addingTimeInterval(timeout)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw DirectoryError.busy(connection: what, file: path, problem: "cannot lock \(path): \(reason)")
            }
            if Date() >= deadline || shouldStop() {
                let other = (try? String(contentsOfFile: path, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                throw DirectoryError.busy(connection: what, file: path, problem: "\(file) is being written by another job"
                    + (other.isEmpty ? "" : " (\(other))") + "; waited \(Int(timeout)) s for it, so nothing was written. "
                    + "Run the jobs one after the other, or raise destinationLockTimeout in config.yaml")
            }
            usleep(50_000)
        }
        // Who holds it, for a job that waits.
        ftruncate(fd, 0)
        let text = holder + "\n"
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    /// Releases the lock (once).
    public func release() {
        guard fd >= 0 else { return }
        ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
