import Foundation

/// Where a run's time goes: the whole run and the part inside jobs, in wall-clock time and in
/// this thread's CPU time (which many runs sharing few cores do not inflate), plus named CPU
/// laps of the bookkeeping around the jobs. `bench/reconcile_bench.py` reads what it logs.
struct RunTimer {
    private let startedWall = DispatchTime.now().uptimeNanoseconds
    private let startedCPU = RunTimer.threadCPU()
    private var wallInJobs: UInt64 = 0
    private var cpuInJobs: UInt64 = 0
    private var lapStart = RunTimer.threadCPU()
    /// CPU time per bookkeeping step, in the order measured.
    private(set) var laps: [(name: String, nanoseconds: UInt64)] = []

    /// Runs one job's work, adding its time to the time inside jobs.
    mutating func timeJob<T>(_ work: () throws -> T) rethrows -> T {
        let wall = DispatchTime.now().uptimeNanoseconds, cpu = Self.threadCPU()
        defer {
            wallInJobs += DispatchTime.now().uptimeNanoseconds - wall
            cpuInJobs += Self.threadCPU() - cpu
            lapStart = Self.threadCPU()
        }
        return try work()
    }

    /// Ends a bookkeeping step: the CPU time since the last lap (or job) is logged as `name`.
    mutating func lap(_ name: String) {
        let now = Self.threadCPU()
        laps.append((name, now - lapStart))
        lapStart = now
    }

    /// The laps, for a debug line (`renderCpuMs=1.2`).
    var lapMetadata: [String: String] { Dictionary(laps.map { ("\($0.name)CpuMs", Self.decimal($0.nanoseconds)) }) { a, _ in a } }

    /// The run so far: `ms` whole, `jobsMs` inside jobs; `cpuMs` and `jobsCpuMs` the same in CPU time.
    var totals: [String: String] {
        ["ms": Self.decimal(DispatchTime.now().uptimeNanoseconds - startedWall), "jobsMs": Self.decimal(wallInJobs),
         "cpuMs": Self.decimal(Self.threadCPU() - startedCPU), "jobsCpuMs": Self.decimal(cpuInJobs)]
    }

    /// CPU time the calling thread has used.
    static func threadCPU() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Nanoseconds as milliseconds with one decimal, for logs.
    static func decimal(_ nanoseconds: UInt64) -> String {
        String(format: "%.1f", Double(nanoseconds) / 1_000_000)
    }

    /// Whole milliseconds since `start`, for a job's `durationMs`.
    static func milliseconds(since start: DispatchTime) -> Int {
        Int((DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000)
    }
}
