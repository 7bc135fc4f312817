import Foundation
import TestSupport
import Testing

/// The test servers' own harness: a daemon must not keep what another test has open. A daemon
/// that inherited the write end of a concurrent test's output pipe made that test wait for its
/// end of file until the daemon ended (for the shared PostgreSQL server: never), which hung CI.
@Suite struct DaemonTests {
    @Test func aDaemonInheritsNoDescriptorButItsOwnThree() throws {
        let pipe = Pipe()  // Foundation's pipes are not close-on-exec.
        let folder = try TemporaryFolder("syncwright-daemon")
        let daemon = try Daemon("/bin/sleep", ["60"], log: folder.sub("log"))
        defer { daemon.stop() }
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/fd").compactMap { Int32($0) }.sorted()
        #expect(open == [0, 1, 2])
        // And so the reader sees its end of file as soon as its own writer closes.
        try pipe.fileHandleForWriting.close()
        #expect(pipe.fileHandleForReading.readDataToEndOfFile().isEmpty)
    }
}
