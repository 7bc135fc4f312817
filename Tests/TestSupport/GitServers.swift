import CSpawn
import Foundation

// Real git servers for the remote tests: OpenSSH's sshd running git-shell, and nginx running
// git http-backend through fcgiwrap over TLS. Each on a free port of 127.0.0.1, stopped by pid.

/// A server process started with posix_spawn, not Foundation's Process: Foundation notices a
/// child's end by a socket the child inherits, and sshd closes every inherited descriptor when
/// it starts, after which Foundation waits on it, blocking every other Process of the tests.
public final class Daemon: @unchecked Sendable {
    public let pid: pid_t
    private var reaped = false

    /// Starts `executable`; its output goes to `log`, its input is /dev/null.
    public init(_ executable: String, _ arguments: [String], log: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the test process: a daemon that kept the write end of another test's
        // output pipe (Foundation's pipes are not close-on-exec) would make that test wait for
        // its end of file until the daemon ends, which for the shared PostgreSQL server and its
        // watchdog is the end of the test process.
        sw_spawn_close_from(&actions, 3)
        // The test runner blocks some signals in its threads; the server must not inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard code == 0 else { throw ProcessFailure(description: "cannot start \(executable): \(String(cString: strerror(code)))") }
        self.pid = pid
    }

    public var isRunning: Bool {
        guard !reaped else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { reaped = true }
        return !reaped
    }

    /// Stops it by its pid: `signal`, then SIGKILL if it has not ended within `grace` seconds.
    public func stop(signal: Int32 = SIGKILL, grace: Double = 0) {
        guard !reaped else { return }
        kill(pid, signal)
        let deadline = Date().addingTimeInterval(grace)
        while signal != SIGKILL && isRunning && Date() < deadline { usleep(20_000) }
        guard !reaped else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        reaped = true
    }

    deinit { stop() }
}

/// Waits until something accepts TCP connections on `host`:`port`, while `daemon` runs.
func waitForPort(_ port: Int, host: String = "127.0.0.1", daemon: Daemon, seconds: Double = 10) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline && daemon.isRunning {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if connected == 0 { return true }
        usleep(50_000)
    }
    return false
}

/// A bare repository holding the examples (or `files`), served over SSH by a throwaway sshd.
///
/// The server's host key and the client keys are made with ssh-keygen; the client keys' logins
/// run git-shell only. `url` is `ssh://USER@127.0.0.1:PORT/…/config.git`.
public final class SSHGitServer: @unchecked Sendable {
    public let folder: TemporaryFolder
    public let repository: String
    public private(set) var port = 0
    private var process: Daemon?
    /// The client key without a passphrase, and one with `passphrase`.
    public var clientKey: String { folder.sub("client_key") }
    public var passphraseKey: String { folder.sub("client_key_pp") }
    public static let passphrase = "correct horse battery"
    public var user: String { NSUserName() }
    public var url: String { "ssh://\(user)@127.0.0.1:\(port)\(repository)" }
    private var hostKey: String { folder.sub("host_key") }

    public init(fixture: GitFixture) throws {
        folder = try TemporaryFolder("syncwright-sshd")
        repository = folder.sub("config.git")
        try runChecked("/usr/bin/git", ["clone", "-q", "--bare", fixture.originPath, repository])
        try runChecked("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", clientKey])
        try runChecked("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", Self.passphrase, "-f", passphraseKey])
        try runChecked("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey])
        var authorized = ""
        for key in [clientKey, passphraseKey] {
            let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            authorized += "command=\"git-shell -c \\\"$SSH_ORIGINAL_COMMAND\\\"\",no-port-forwarding,no-pty \(publicKey)\n"
        }
        try authorized.write(toFile: folder.sub("authorized_keys"), atomically: true, encoding: .utf8)
        chmod(folder.sub("authorized_keys"), 0o600)
        try start()
    }

    deinit { process?.stop() }

    /// The host key's fingerprint, as `ssh-keygen -l` prints it (the independent oracle).
    public func fingerprint() throws -> String {
        let line = try runChecked("/usr/bin/ssh-keygen", ["-l", "-f", hostKey + ".pub"])
        return String(line.split(separator: " ")[1])
    }

    /// A known_hosts line for the server's current key, as `ssh-keyscan` would write it.
    public func knownHostsLine() throws -> String {
        let publicKey = try String(contentsOfFile: hostKey + ".pub", encoding: .utf8).split(separator: " ")
        return "[127.0.0.1]:\(port) \(publicKey[0]) \(publicKey[1])"
    }

    /// Gives the server a new host key (as a reinstalled or spoofed server would have), same port.
    public func replaceHostKey() throws {
        process?.stop()
        try? FileManager.default.removeItem(atPath: hostKey)
        try? FileManager.default.removeItem(atPath: hostKey + ".pub")
        try runChecked("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey])
        try start(port: port)
    }

    /// The branch's commit in the served repository, read with the git CLI.
    public func tip(_ branch: String) throws -> String {
        try runChecked("/usr/bin/git", ["--git-dir", repository, "rev-parse", branch]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func start(port fixed: Int? = nil) throws {
        let conf = """
            ListenAddress 127.0.0.1
            HostKey \(hostKey)
            AuthorizedKeysFile \(folder.sub("authorized_keys"))
            PidFile \(folder.sub("sshd.pid"))
            StrictModes no
            UsePAM no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            AllowTcpForwarding no
            X11Forwarding no

            """
        try conf.write(toFile: folder.sub("sshd_config"), atomically: true, encoding: .utf8)
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        for attempt in 1...5 {
            let port = try fixed ?? Slapd.freePort()
            let log = folder.sub("sshd-\(attempt).log")
            let process = try Daemon("/usr/sbin/sshd", ["-D", "-e", "-f", folder.sub("sshd_config"), "-p", "\(port)"], log: log)
            if waitForPort(port, daemon: process) {
                self.port = port
                self.process = process
                return
            }
            process.stop()
            if attempt == 5 {
                throw ProcessFailure(description: "sshd did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
        }
    }
}

/// A bare repository served over HTTPS by nginx and git http-backend (through fcgiwrap), with a
/// throwaway CA, and basic authentication: user `x-access-token`, password `token`.
public final class HTTPSGitServer: @unchecked Sendable {
    public let folder: TemporaryFolder
    public let repository: String
    public private(set) var port = 0
    private var nginx: Daemon?
    private var fcgiwrap: Daemon?
    public static let token = "s3cret-token-4711"
    private let tls: Slapd.TLSFiles
    /// The CA that signed the server's certificate.
    public var caFile: String { tls.caFile }
    /// Another CA, which signed nothing the server presents.
    public let otherCAFile: String
    public var url: String { "https://127.0.0.1:\(port)/config.git" }

    public init(fixture: GitFixture) throws {
        folder = try TemporaryFolder("syncwright-https")
        let repos = folder.sub("repos")
        repository = (repos as NSString).appendingPathComponent("config.git")
        try runChecked("/usr/bin/git", ["clone", "-q", "--bare", fixture.originPath, repository])
        try runChecked("/usr/bin/git", ["--git-dir", repository, "config", "http.receivepack", "true"])
        let openssl = "/usr/bin/openssl"
        tls = try Slapd.makeCertificates(in: folder.path, name: "Syncwright test CA")
        let other = folder.sub("other")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        otherCAFile = try Slapd.makeCertificates(in: other, name: "Another CA").caFile
        let hash = try runChecked(openssl, ["passwd", "-apr1", Self.token]).trimmingCharacters(in: .whitespacesAndNewlines)
        try "x-access-token:\(hash)\n".write(toFile: folder.sub("htpasswd"), atomically: true, encoding: .utf8)
        let socket = folder.sub("fcgi.sock")
        fcgiwrap = try Daemon("/usr/sbin/fcgiwrap", ["-s", "unix:\(socket)"], log: folder.sub("fcgiwrap.log"))
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { usleep(20_000) }
        for attempt in 1...5 {
            let port = try Slapd.freePort()
            let user = getuid() == 0 ? "user root;" : ""
            let conf = """
                worker_processes 1;
                \(user)
                error_log \(folder.sub("error.log"));
                pid \(folder.sub("nginx.pid"));
                events { worker_connections 64; }
                http {
                  access_log \(folder.sub("access.log"));
                  client_body_temp_path \(folder.sub("body"));
                  fastcgi_temp_path \(folder.sub("fastcgi"));
                  proxy_temp_path \(folder.sub("proxy"));
                  uwsgi_temp_path \(folder.sub("uwsgi"));
                  scgi_temp_path \(folder.sub("scgi"));
                  server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(tls.certificateFile);
                    ssl_certificate_key \(tls.keyFile);
                    client_max_body_size 0;
                    location / {
                      auth_basic "git";
                      auth_basic_user_file \(folder.sub("htpasswd"));
                      fastcgi_pass unix:\(socket);
                      include /etc/nginx/fastcgi_params;
                      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
                      fastcgi_param GIT_PROJECT_ROOT \(repos);
                      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
                      fastcgi_param PATH_INFO $uri;
                      fastcgi_param REMOTE_USER $remote_user;
                    }
                  }
                }

                """
            try conf.write(toFile: folder.sub("nginx.conf"), atomically: true, encoding: .utf8)
            let log = folder.sub("nginx-\(attempt).log")
            let process = try Daemon("/usr/sbin/nginx", ["-c", folder.sub("nginx.conf"), "-g", "daemon off;"], log: log)
            if waitForPort(port, daemon: process) {
                self.port = port
                nginx = process
                return
            }
            process.stop()
            if attempt == 5 {
                throw ProcessFailure(description: "nginx did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
        }
    }

    deinit {
        nginx?.stop()
        fcgiwrap?.stop()
    }

    /// What nginx logged of the requests (the test checks that no secret shows there either).
    public func accessLog() -> String { (try? String(contentsOfFile: folder.sub("access.log"), encoding: .utf8)) ?? "" }
}

/// Runs a program and returns its stdout; throws with its stderr when it fails.
@discardableResult
public func runChecked(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
    let result = try runProcess(executable, arguments, environment: environment)
    guard result.status == 0 else {
        throw ProcessFailure(description: "\(executable) \(arguments.joined(separator: " ")) failed: \(result.stderr)")
    }
    return result.stdout
}
