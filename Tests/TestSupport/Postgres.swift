import Foundation

/// A throwaway PostgreSQL server for tests: `initdb` into a temp folder, then `postgres` on a
/// free port of 127.0.0.1 (trust authentication), stopped by its pid.
///
/// initdb and postgres refuse to run as root, so as root they run as `nobody` (through
/// setpriv, which execs, so that the pid is the server's own).
public final class PostgresServer: @unchecked Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"

    public let folder: TemporaryFolder
    public private(set) var port: Int
    private var daemon: Daemon
    private let lock = NSLock()
    private var databases = 0

    /// One server for the whole test process, each test in a database of its own
    /// (`createDatabase`). A watchdog shell stops it (by the pid in its postmaster.pid) and
    /// removes its folder once the test process has ended, however it ended.
    public static let shared = Result { () throws -> PostgresServer in
        let server = try PostgresServer()
        let data = server.folder.sub("data")
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; "
            + "kill -QUIT $(head -n 1 '\(data)/postmaster.pid') 2>/dev/null; sleep 2; rm -rf '\(server.folder.path)'"
        watchdog = try Daemon("/bin/sh", ["-c", script], log: "/dev/null")
        return server
    }

    /// With `tls`, the server also speaks TLS (`ssl=on`) with that certificate and key.
    public init(tls: Slapd.TLSFiles? = nil) throws {
        folder = try TemporaryFolder("syncwright-pg")
        let data = folder.sub("data"), sockets = folder.sub("sockets")
        try FileManager.default.createDirectory(atPath: sockets, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        if getuid() == 0 {
            for path in [folder.path, data, sockets] {
                guard chown(path, Self.nobody.uid, Self.nobody.gid) == 0 else {
                    throw ProcessFailure(description: "cannot give \(path) to nobody: \(String(cString: strerror(errno)))")
                }
            }
        }
        let initdb = try runProcess(Self.asServerUser[0], Self.asServerUser.dropFirst() + [
            "\(Self.binaries)/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        ])
        guard initdb.status == 0 else { throw ProcessFailure(description: "initdb failed: \(initdb.stderr)\(initdb.stdout)") }
        if let tls {
            // The server reads its key only when the key is private to the server's user.
            var settings = "ssl = on\n"
            for (name, source) in [("server.pem", tls.certificateFile), ("server.key", tls.keyFile)] {
                let target = (data as NSString).appendingPathComponent(name)
                try FileManager.default.copyItem(atPath: source, toPath: target)
                chmod(target, 0o600)
                if getuid() == 0 { chown(target, Self.nobody.uid, Self.nobody.gid) }
                settings += "ssl_\(name == "server.pem" ? "cert" : "key")_file = '\(target)'\n"
            }
            let conf = (data as NSString).appendingPathComponent("postgresql.conf")
            try (try String(contentsOfFile: conf, encoding: .utf8) + settings).write(toFile: conf, atomically: false, encoding: .utf8)
        }
        (port, daemon) = try Self.start(data: data, sockets: sockets, log: folder.sub("postgres.log"), port: nil)
    }

    deinit { stop() }

    /// The command prefix that runs a program as the server's user (empty when not root).
    static var asServerUser: [String] {
        getuid() == 0
            ? ["/usr/bin/setpriv", "--reuid=\(nobody.uid)", "--regid=\(nobody.gid)", "--clear-groups", "--"]
            : ["/usr/bin/env"]
    }

    static var nobody: (uid: uid_t, gid: gid_t) {
        guard let entry = getpwnam("nobody") else { return (65534, 65534) }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// Starts postgres on `port` (else a free one, tried again on a race) and waits until it
    /// accepts connections.
    private static func start(data: String, sockets: String, log: String, port fixed: Int?) throws -> (Int, Daemon) {
        var attempt = 0
        while true {
            attempt += 1
            let port = try fixed ?? Slapd.freePort()
            let arguments = Array(asServerUser.dropFirst()) + [
                "\(binaries)/postgres", "-D", data, "-p", "\(port)", "-k", sockets, "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
            ]
            let daemon = try Daemon(asServerUser[0], arguments, log: log)
            let deadline = Date().addingTimeInterval(30)
            while daemon.isRunning && Date() < deadline {
                let ready = try runProcess("\(binaries)/pg_isready", ["-q", "-h", "127.0.0.1", "-p", "\(port)", "-t", "1"])
                if ready.status == 0 { return (port, daemon) }
                usleep(100_000)
            }
            daemon.stop()
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard attempt < 5 && fixed == nil else {
                throw ProcessFailure(description: "postgres did not start on port \(port): \(output.suffix(2_000))")
            }
        }
    }

    /// A new, empty database, as a URL for libpq.
    public func createDatabase() throws -> String {
        let name = lock.withLock { () -> String in
            databases += 1
            return "t\(databases)"
        }
        try psql("CREATE DATABASE \(name)")
        return url(database: name)
    }

    public func url(database: String) -> String { "postgresql://postgres@127.0.0.1:\(port)/\(database)" }

    /// Runs SQL with psql (the independent client), unaligned and without headers; throws when it fails.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        let result = try runProcess("\(Self.binaries)/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                                              "-p", "\(port)", "-U", "postgres", "-d", database, "-c", sql])
        guard result.status == 0 else { throw ProcessFailure(description: "psql failed on \(sql): \(result.stderr)") }
        return result.stdout
    }

    /// Makes every TCP login give its password (scram-sha-256) from now on: pg_hba.conf
    /// rewritten, the server told by SIGHUP, and waited for until a login without one fails.
    public func requirePasswords() throws {
        try "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
            .write(toFile: folder.sub("data/pg_hba.conf"), atomically: false, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let probe = try runProcess("\(Self.binaries)/psql", ["-X", "-w", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres",
                                                                 "-d", "postgres", "-c", "SELECT 1"])
            if probe.status != 0 { return }
            usleep(50_000)
        }
        throw ProcessFailure(description: "postgres still lets logins in without a password")
    }

    /// Stops the server (an immediate shutdown, SIGQUIT, by its pid) and starts it again on the
    /// same port, with the same data.
    public func restart() throws {
        stop()
        try start()
    }

    /// Starts a stopped server again, on the same port, with the same data.
    public func start() throws {
        (port, daemon) = try Self.start(data: folder.sub("data"), sockets: folder.sub("sockets"), log: folder.sub("postgres.log"),
                                        port: port)
    }

    /// Stops the server by its pid: SIGQUIT, an immediate shutdown that lets it remove its
    /// shared memory, then SIGKILL if it has not ended within 10 seconds.
    public func stop() {
        daemon.stop(signal: SIGQUIT, grace: 10)
    }
}

/// Kept so that it is never stopped (nor reaped) while the tests run.
nonisolated(unsafe) private var watchdog: Daemon?
