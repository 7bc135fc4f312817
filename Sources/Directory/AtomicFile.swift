import Foundation

/// Writes a file so that a crash leaves the old contents or the new ones, never half of either:
/// a temp file in the same folder, fsync, rename over the target, fsync the folder.
enum AtomicFile {
    static func write(_ data: Data, to path: String, what: String) throws {
        try write(to: path, what: what) { sink in data.withUnsafeBytes { sink($0) } }
    }

    /// Streams the contents: `produce` hands chunks to its sink, which buffers and writes them.
    static func write(to path: String, what: String,
                      _ produce: (_ sink: (UnsafeRawBufferPointer) -> Void) throws -> Void) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true)
        } catch {
            throw DirectoryError("\(what): cannot create the folder \(folder): \(error.localizedDescription)")
        }
        let temp = (folder as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw DirectoryError("\(what): cannot write \(path): \(String(cString: strerror(errno)))")
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
            throw DirectoryError("\(what): cannot write \(path), it was left as it was: \(failure ?? "")")
        }
        let dirfd = open(folder.isEmpty ? "." : folder, O_RDONLY)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }
}
