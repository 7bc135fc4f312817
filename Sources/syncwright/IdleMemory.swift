import Foundation

/// Process-wide memory tuning for the long-running reconciler, which belongs to the executable,
/// not the library. It hands freed memory back to the system before the loop sleeps: the allocator keeps what runs
/// and passes freed (one arena per thread that ran), and a daemon idles far longer than it works.
public enum IdleMemory {
    /// glibc's `malloc_trim`, looked up at run time (malloc.h is not in the Glibc module, and
    /// other C libraries do not have it).
    private static let trim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()

    static func release() {
        _ = trim?(0)
    }

    /// glibc's `mallopt`, looked up at run time like `malloc_trim`.
    private static let option: (@convention(c) (Int32, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()

    /// For a long-running process: at most one malloc arena per core (glibc's default is eight
    /// per core). Every run and pass works on a thread of its own, and with many arenas the
    /// daemon's memory grew by fragments left in each, round after round. Call once, at start.
    public static func limitArenas() {
        let M_ARENA_MAX: Int32 = -8
        _ = option?(M_ARENA_MAX, Int32(max(2, ProcessInfo.processInfo.activeProcessorCount)))
    }
}
