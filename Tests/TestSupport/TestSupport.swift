import Foundation

/// A folder under the system temp dir, removed when the value is released.
public final class TemporaryFolder: @unchecked Sendable {
    public let path: String

    public init(_ prefix: String = "syncwright-test") throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(12))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func sub(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// What a finished process printed and returned.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Runs a program to completion (no shell).
@discardableResult
public func runProcess(_ executable: String, _ arguments: [String], in directory: String? = nil,
                       environment: [String: String] = [:]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes to the end before waiting, so a large output cannot block the child.
    let group = DispatchGroup()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// A work-tree repository with a bare `file://` origin, driven by the `git` CLI (the independent oracle).
public final class GitFixture: @unchecked Sendable {
    public let folder: TemporaryFolder
    public let workTree: String
    public let originPath: String
    public var originURL: String { "file://\(originPath)" }

    /// A fixed identity, so tests do not depend on the machine's git config.
    public static let environment = [
        "GIT_AUTHOR_NAME": "Ada Admin", "GIT_AUTHOR_EMAIL": "ada@corp.example",
        "GIT_COMMITTER_NAME": "Ada Admin", "GIT_COMMITTER_EMAIL": "ada@corp.example",
        "GIT_CONFIG_NOSYSTEM": "1", "HOME": NSTemporaryDirectory(),
    ]

    public init(files: [String: String] = [:]) throws {
        folder = try TemporaryFolder("syncwright-git")
        workTree = folder.sub("work")
        originPath = folder.sub("origin.git")
        try git(["init", "-q", "-b", "main", workTree], in: folder.path)
        try git(["init", "-q", "--bare", "-b", "main", originPath], in: folder.path)
        try git(["remote", "add", "origin", originPath])
        if !files.isEmpty {
            try write(files)
            try commit("initial manifests")
        }
    }

    @discardableResult
    public func git(_ arguments: [String], in directory: String? = nil) throws -> String {
        let result = try runProcess("/usr/bin/git", arguments, in: directory ?? workTree, environment: Self.environment)
        guard result.status == 0 else {
            throw ProcessFailure(description: "git \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
        return result.stdout
    }

    public func write(_ files: [String: String]) throws {
        for (path, contents) in files {
            let full = (workTree as NSString).appendingPathComponent(path)
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try contents.write(toFile: full, atomically: true, encoding: .utf8)
        }
    }

    public func remove(_ path: String) throws {
        try git(["rm", "-q", path])
    }

    /// Commits everything and pushes to origin; returns the new commit's full sha.
    @discardableResult
    /// `author` (`Name <email>`) commits in someone else's name; the committer stays the fixture's.
    public func commit(_ message: String, push: Bool = true, author: String? = nil) throws -> String {
        try git(["add", "-A"])
        try git(["commit", "-q", "--allow-empty", "-m", message] + (author.map { ["--author", $0] } ?? []))
        if push { try git(["push", "-q", "origin", "main"]) }
        return try git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Copies a folder of files (such as `examples/`) into the work tree.
    public func copy(from folder: String) throws {
        let fm = FileManager.default
        guard let enumerator = fm.enumerator(atPath: folder) else { return }
        while let path = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let full = (folder as NSString).appendingPathComponent(path)
            guard fm.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let target = (workTree as NSString).appendingPathComponent(path)
            try fm.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.copyItem(atPath: full, toPath: target)
        }
    }
}

/// The package root, for reading `examples/`.
public let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Minimal valid manifests, for tests to build on.
public enum Fixtures {
    public static func connection(_ name: String, type: String = "csv", repoPath: String = "data/in.csv") -> String {
        """
        apiVersion: syncwright.dev/v1
        kind: Connection
        metadata: { name: \(name) }
        spec: { type: \(type), repoPath: \(repoPath) }

        """
    }

    public static func job(_ name: String, from source: String = "src", to destination: String = "dst",
                           extraMapping: String = "") -> String {
        """
        apiVersion: syncwright.dev/v1
        kind: Job
        metadata: { name: \(name) }
        spec:
          source: { connection: \(source) }
          destination: { connection: \(destination) }
          mappings:
            - { source: id, destination: employeeNumber, key: true }
        \(extraMapping.isEmpty ? "" : "    - \(extraMapping)\n")
        """
    }

    /// A config repository of one collection `c` whose job `job` copies `data/in.csv` (a
    /// `repoPath`) into the LDIF file `out`: employeeNumber from `id` (the key), uid from `login`
    /// (the rdn, under ou=People,dc=corp), then `extraMappings`. Committed and pushed.
    public static func csvToLDIF(csv: String, out: String, job: String, extraMappings: [String] = []) throws -> GitFixture {
        let fixture = try GitFixture()
        try fixture.write([
            "data/in.csv": csv,
            "connections.yaml": csvToLDIFConnections(out: out),
            "job.yaml": """
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: \(job) }
                spec:
                  source: { connection: src }
                  destination: { connection: dst, objectClass: [inetOrgPerson], container: "ou=People,dc=corp", rdn: uid }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid }
                \(extraMappings.map { "    - \($0)\n" }.joined())  delete: false

                """,
            "collection.yaml": collection("c", jobs: [job]),
        ])
        try fixture.commit("\(job)")
        return fixture
    }

    /// Two connections: `src`, the CSV `data/in.csv` of the repository, and `dst`, the LDIF file `out`.
    public static func csvToLDIFConnections(out: String) -> String {
        """
        apiVersion: syncwright.dev/v1
        kind: Connection
        metadata: { name: src }
        spec: { type: csv, repoPath: data/in.csv }
        ---
        apiVersion: syncwright.dev/v1
        kind: Connection
        metadata: { name: dst }
        spec: { type: ldif, path: \(out) }

        """
    }

    public static func collection(_ name: String, jobs: [String], template: String? = nil) -> String {
        """
        apiVersion: syncwright.dev/v1
        kind: JobCollection
        metadata: { name: \(name) }
        spec:
        \(template.map { "  template: \($0)\n" } ?? "")  jobs:
        \(jobs.map { "    - { job: \($0) }" }.joined(separator: "\n"))

        """
    }
}
