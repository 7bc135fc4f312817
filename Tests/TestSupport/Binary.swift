import Foundation

// Running the built `syncwright` binary, for end-to-end tests, and the homes they work in.

/// The built `syncwright` binary, next to the test bundle (or `$SYNCWRIGHT_BIN`).
public let binary: String = {
    if let path = ProcessInfo.processInfo.environment["SYNCWRIGHT_BIN"] { return path }
    var candidates: [String] = []
    let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    candidates.append(argv0.appendingPathComponent("syncwright").path)
    candidates.append(Bundle.main.bundleURL.appendingPathComponent("syncwright").path)
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("syncwright").path)
    candidates.append((packageRoot as NSString).appendingPathComponent(".build/debug/syncwright"))
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last ?? "syncwright"
}()

/// Starts the built binary without waiting for it; its stderr goes to `errors` (else nowhere).
public func launchSyncwright(_ arguments: [String], errors: Pipe? = nil) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { _, b in b }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = errors ?? FileHandle.nullDevice
    try process.run()
    return process
}

@discardableResult
public func syncwright(_ arguments: [String], in directory: String? = nil, env: [String: String] = [:]) throws -> ProcessResult {
    try runProcess(binary, arguments, in: directory, environment: env.merging(["NO_COLOR": "1"]) { a, _ in a })
}

/// The demo config repository in `examples/`, committed and pushed to a fresh origin.
public func examplesFixture() throws -> GitFixture {
    let fixture = try GitFixture()
    try fixture.copy(from: (packageRoot as NSString).appendingPathComponent("examples"))
    try fixture.commit("examples")
    return fixture
}

/// A home made by the built binary: `init` from a fixture's origin, then `apply` (unless told
/// not to). Every command a test runs on it gets `--home`.
public struct TestHome: Sendable {
    public let path: String
    /// `["--home", path]`, for commands run another way.
    public var arguments: [String] { ["--home", path] }

    public init(_ fixture: GitFixture, in folder: TemporaryFolder, name: String = "h", apply: Bool = true) throws {
        path = folder.sub(name)
        for command in [["init", fixture.originURL]] + (apply ? [["apply"]] : []) {
            let result = try syncwright(command + ["--home", path])
            guard result.status == 0 else {
                throw ProcessFailure(description: "syncwright \(command[0]) failed (\(result.status)): \(result.stderr)")
            }
        }
    }

    /// Runs `syncwright ARGUMENTS --home PATH`.
    @discardableResult
    public func run(_ arguments: [String], env: [String: String] = [:]) throws -> ProcessResult {
        try syncwright(arguments + self.arguments, env: env)
    }

    /// The file `name` in the home.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}
