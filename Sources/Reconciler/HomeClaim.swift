import Foundation

/// The claim one writing command (`reconcile`, `run`, `apply`) holds on a home for its whole life:
/// an exclusive `flock` on `reconciler.lock`, which names the holder's pid and command.
///
/// The kernel drops the lock when its process ends, however it ends, so a killed process never
/// leaves a claim behind. The descriptor is close-on-exec: a child process (git) cannot keep it.
public final class HomeClaim: Sendable {
    private let descriptor: Int32

    /// Claims the home now, or throws at once naming the process that holds it.
    public static func claim(_ home: Home, for command: String) throws -> HomeClaim {
        let path = (home.path as NSString).appendingPathComponent("reconciler.lock")
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ReconcilerError.lockFile(path: path, problem: "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        var result: Int32
        repeat { result = flock(fd, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
        guard result == 0 else {
            let busy = errno == EWOULDBLOCK
            let holder = busy ? Self.holder(fd) : ""
            close(fd)
            guard busy else {
                throw ReconcilerError.lockFile(path: path, problem: "cannot lock \(path): \(String(cString: strerror(errno)))")
            }
            throw ReconcilerError.homeInUse(home: home.path, holder: holder, command: command)
        }
        let text = "pid \(getpid()): syncwright \(command)\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        return HomeClaim(descriptor: fd)
    }

    private init(descriptor: Int32) { self.descriptor = descriptor }

    /// The process holding the home now (its pid and command), or nil when none does.
    public static func holder(of home: Home) -> (pid: Int32, command: String)? {
        let path = (home.path as NSString).appendingPathComponent("reconciler.lock")
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A lock this process can take is held by no one.
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return (0, "") }
        let text = String(decoding: buffer.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let match = text.wholeMatch(of: #/pid (\d+): (.+)/#), let pid = Int32(match.1) else { return (0, text) }
        return (pid, String(match.2))
    }

    /// "syncwright reconcile (pid 1234)", from what the holder wrote.
    private static func holder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return "" }
        let text = String(decoding: buffer.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let match = text.wholeMatch(of: #/pid (\d+): (.+)/#) else { return "" }
        return "\(match.2) (pid \(match.1))"
    }

    /// Gives the claim up (it also ends with the process).
    public func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
