import Foundation

/// Writes a file so that a crash leaves the old contents or the new ones, never half of either:
/// a temp file in the same folder, fsync, rename over the target, fsync the folder.
///
/// The file replaced keeps its mode and owner. A file without write permission is refused, not
/// replaced. A new file is made with `newFileMode` (0600 for one that holds secrets). Temp files
/// that a killed writer left beside the target (`.NAME.tmp-PID-…`, whose PID no longer runs)
/// are removed first.
enum AtomicFile {
    static func write(_ data: Data, to path: String, what: String, newFileMode: mode_t = 0o644) throws {
        try write(to: path, what: what, newFileMode: newFileMode) { sink in data.withUnsafeBytes { sink($0) } }
    }

    /// The temp-file name prefix for `path`'s writes.
    static func tempPrefix(_ path: String) -> String { ".\((path as NSString).lastPathComponent).tmp-" }

    /// Removes temp files of writes to `path` whose process is gone (killed mid-write); never
    /// another name's, nor one a live process may still be writing.
    static func removeStaleTemps(of path: String) {
        let folder = (path as NSString).deletingLastPathComponent
        let prefix = tempPrefix(path)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count).split(separator: "-")
            guard rest.count == 2, let pid = Int32(rest[0]), UInt32(rest[1]) != nil else { continue }
            // ESRCH: no such process. EPERM means it is alive (someone else's): leave it.
            if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                unlink((folder as NSString).appendingPathComponent(name))
            }
        }
    }

    /// Streams the contents: `produce` hands chunks to its sink, which buffers and writes them.
    static func write(to path: String, what: String, newFileMode: mode_t = 0o644,
                      _ produce: (_ sink: (UnsafeRawBufferPointer) -> Void) throws -> Void) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true)
        } catch {
            throw DirectoryError.file(connection: what, path: folder, problem: "cannot create the folder \(folder): \(error.localizedDescription)")
        }
        var existing = stat()
        let replacing = stat(path, &existing) == 0
        if replacing && (existing.st_mode & 0o222 == 0 || access(path, W_OK) != 0) {
            throw DirectoryError.file(connection: what, path: path, problem: "\(path) is not writable (mode \(String(existing.st_mode & 0o7777, radix: 8))), "
                + "so it was left as it was; give it write permission (chmod u+w) if it is meant to be written")
        }
        removeStaleTemps(of: path)
        let temp = (folder as NSString).appendingPathComponent("\(tempPrefix(path))\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw DirectoryError.file(connection: what, path: path, problem: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        // The new file takes the old one's mode and owner (an owner only root may give; others
        // keep their own), or the mode asked for.
        if replacing {
            fchmod(fd, existing.st_mode & 0o7777)
            if existing.st_uid != geteuid() || existing.st_gid != getegid() { _ = fchown(fd, existing.st_uid, existing.st_gid) }
        } else {
            fchmod(fd, newFileMode)
        }
        var failure: String?
        func writeAll(_ buffer: UnsafeRawBufferPointer) {
            var offset = 0
            while failure == nil, offset < buffer.count, let base = buffer.baseAddress {
                let written = Foundation.write(fd, base + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += written
            }
        }
        var pending: [UInt8] = []
        pending.reserveCapacity(1 << 20)
        do {
            try produce { chunk in
                if pending.count + chunk.count > (1 << 20) {
                    pending.withUnsafeBytes { writeAll($0) }
                    pending.removeAll(keepingCapacity: true)
                }
                if chunk.count >= (1 << 20) { writeAll(chunk) } else { pending.append(contentsOf: chunk) }
            }
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        pending.withUnsafeBytes { writeAll($0) }
        if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if failure == nil && rename(temp, path) != 0 { failure = String(cString: strerror(errno)) }
        guard failure == nil else {
            unlink(temp)
            throw DirectoryError.file(connection: what, path: path, problem: "cannot write \(path), it was left as it was: \(failure ?? "")")
        }
        let dirfd = open(folder.isEmpty ? "." : folder, O_RDONLY)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }
}
