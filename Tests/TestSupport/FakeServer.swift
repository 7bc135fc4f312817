import Foundation

/// A throwaway server written in Python (`Tests/Fakes/*.py`), started on a port the OS picks:
/// the script binds port 0 and writes the port it got to a file, so there is no race for a
/// free port. Killed by its pid when released.
public final class FakeServer: @unchecked Sendable {
    public let port: Int
    public let folder: TemporaryFolder
    private let process: Process

    /// Runs `Tests/Fakes/<script>` with `arguments` and `--port-file`, and waits for the port.
    /// `python` is Debian's (whose packages `install-deps` adds) unless told otherwise.
    public init(script: String, arguments: [String], folder: TemporaryFolder, python: [String] = ["/usr/bin/python3"]) throws {
        self.folder = folder
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python[0])
        process.arguments = Array(python.dropFirst()) + [(packageRoot as NSString).appendingPathComponent("Tests/Fakes/\(script)")]
            + arguments + ["--port-file", folder.sub("port")]
        process.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: folder.sub("stderr"), contents: nil)
        process.standardError = FileHandle(forWritingAtPath: folder.sub("stderr"))
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(20)
        var port: Int?
        while Date() < deadline, process.isRunning {
            port = (try? String(contentsOfFile: folder.sub("port"), encoding: .utf8)).flatMap { Int($0) }
            if port != nil { break }
            usleep(50_000)
        }
        guard let port else {
            let said = (try? String(contentsOfFile: folder.sub("stderr"), encoding: .utf8)) ?? ""
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            throw ProcessFailure(description: "the fake server \(script) did not start: \(said.suffix(1_000))")
        }
        self.port = port
    }

    deinit { stop() }

    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A mail server (aiosmtpd) with STARTTLS (or implicit TLS) and AUTH required, and a throwaway
/// CA; the messages it received, as files.
public final class MailServer: @unchecked Sendable {
    public static let user = "sync", password = "s3cret"
    public let server: FakeServer
    public let tls: Slapd.TLSFiles
    public var port: Int { server.port }
    public var maildir: String { server.folder.sub("mail") }

    public init(implicitTLS: Bool = false) throws {
        let folder = try TemporaryFolder("syncwright-smtp")
        try FileManager.default.createDirectory(atPath: folder.sub("mail"), withIntermediateDirectories: true)
        tls = try Slapd.makeCertificates(in: folder.path, name: "Mail Test CA")
        server = try FakeServer(script: "smtp_server.py", arguments: [
            "--maildir", folder.sub("mail"), "--cert", tls.certificateFile, "--key", tls.keyFile,
            "--user", Self.user, "--password", Self.password] + (implicitTLS ? ["--implicit"] : []), folder: folder)
    }

    /// Each message received, in order: its envelope (`from`, `to`, `login`) and its raw text.
    public func messages() throws -> [(envelope: [String: Any], raw: String)] {
        let files = try FileManager.default.contentsOfDirectory(atPath: maildir).filter { $0.hasSuffix(".eml") }
        return try files.sorted { Int($0.dropLast(4))! < Int($1.dropLast(4))! }.map { name in
            let base = (maildir as NSString).appendingPathComponent(String(name.dropLast(4)))
            let envelope = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".json")))) as? [String: Any] ?? [:]
            return (envelope, try String(contentsOfFile: base + ".eml", encoding: .utf8))
        }
    }

    /// An outage: every message is answered 421 until `down(false)`.
    public func down(_ isDown: Bool) {
        let flag = (maildir as NSString).appendingPathComponent("down")
        if isDown { FileManager.default.createFile(atPath: flag, contents: Data()) } else { try? FileManager.default.removeItem(atPath: flag) }
    }
}

/// A webhook receiver (http.server), over TLS with a throwaway CA when asked; the POSTs it took.
public final class WebhookReceiver: @unchecked Sendable {
    public let server: FakeServer
    public let tls: Slapd.TLSFiles?
    public var url: String { "\(tls == nil ? "http" : "https")://127.0.0.1:\(server.port)/hooks/T0KEN-in-path" }

    public init(tls useTLS: Bool = false) throws {
        let folder = try TemporaryFolder("syncwright-webhook")
        try FileManager.default.createDirectory(atPath: folder.sub("posts"), withIntermediateDirectories: true)
        tls = useTLS ? try Slapd.makeCertificates(in: folder.path, name: "Webhook Test CA") : nil
        server = try FakeServer(script: "webhook_server.py", arguments: ["--dir", folder.sub("posts")]
            + (tls.map { ["--cert", $0.certificateFile, "--key", $0.keyFile] } ?? []), folder: folder)
    }

    /// Each POST received, in order: `path`, `headers`, `body`.
    public func posts() throws -> [[String: Any]] {
        let dir = server.folder.sub("posts")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".json") }
        return try files.sorted { Int($0.dropLast(5))! < Int($1.dropLast(5))! }.map {
            (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: (dir as NSString).appendingPathComponent($0))))) as? [String: Any] ?? [:]
        }
    }

    /// Answers `status` to every POST (503: an outage) until `answer(nil)`.
    public func answer(_ status: Int?) throws {
        let file = server.folder.sub("posts/status")
        if let status { try "\(status)".write(toFile: file, atomically: true, encoding: .utf8) } else { try? FileManager.default.removeItem(atPath: file) }
    }
}
