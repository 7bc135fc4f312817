import Foundation
import GitKit
import Manifests
import StateStore
import Yams

extension SecretReference {
    /// Reads the secret now; `what` names it in the error. The value is never stored.
    func resolve(_ what: String) throws -> String {
        if let env {
            guard let value = ProcessInfo.processInfo.environment[env], !value.isEmpty else {
                throw ReconcilerError.secret(what: what, problem: "is read from the environment variable \(env), which is not set")
            }
            return value
        }
        if let file {
            guard let data = FileManager.default.contents(atPath: file),
                  let value = String(data: data, encoding: .utf8) else {
                throw ReconcilerError.secret(what: what, problem: "is read from \(file), which cannot be read")
            }
            return value.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        throw ReconcilerError.secret(what: what, problem: "names neither env nor file")
    }
}

/// `config.yaml` in the home.
public struct HomeConfig: Codable, Sendable, Equatable {
    public struct Credentials: Codable, Sendable, Equatable {
        public struct SSHKey: Codable, Sendable, Equatable {
            public var privateKey: String
            public var publicKey: String?
            public var passphraseFrom: SecretReference?
            public init(privateKey: String, publicKey: String? = nil, passphraseFrom: SecretReference? = nil) {
                self.privateKey = privateKey
                self.publicKey = publicKey
                self.passphraseFrom = passphraseFrom
            }
        }
        public var username: String?
        public var sshKey: SSHKey?
        /// An HTTPS token (e.g. a personal access token).
        public var tokenFrom: SecretReference?
        /// An HTTPS basic-auth password, with `username`.
        public var passwordFrom: SecretReference?

        public init(username: String? = nil, sshKey: SSHKey? = nil, tokenFrom: SecretReference? = nil,
                    passwordFrom: SecretReference? = nil) {
            self.username = username
            self.sshKey = sshKey
            self.tokenFrom = tokenFrom
            self.passwordFrom = passwordFrom
        }
    }
    /// The credentials `init`'s options give: secrets by the environment variables that hold them.
    public static func credentials(username: String?, sshKey: String?, passphraseEnv: String?,
                                   tokenEnv: String?, passwordEnv: String? = nil) -> Credentials? {
        let made = Credentials(username: username,
                               sshKey: sshKey.map { Credentials.SSHKey(privateKey: $0, passphraseFrom: passphraseEnv.map { SecretReference(env: $0) }) },
                               tokenFrom: tokenEnv.map { SecretReference(env: $0) },
                               passwordFrom: passwordEnv.map { SecretReference(env: $0) })
        return made == Credentials() ? nil : made
    }
    /// The push webhook (`POST /hooks/git` on the `listen` address).
    public struct Webhook: Codable, Sendable, Equatable {
        /// The secret shared with the git server (GitHub's and Gitea's HMAC key, GitLab's token).
        public var secretFrom: SecretReference
        public init(secretFrom: SecretReference) { self.secretFrom = secretFrom }
    }
    public struct Author: Codable, Sendable, Equatable {
        public var name: String
        public var email: String
    }

    public var remote: String
    public var branch: String
    public var reportsBranch: String
    public var credentials: Credentials?
    /// Who the reports-branch commits are by (default `Syncwright <syncwright@localhost>`).
    public var author: Author?
    /// How many lines each job's log keeps; the rest are counted in a closing line (default 10,000).
    public var jobLogLines: Int?
    /// How many collections `reconcile` runs at the same time; the other due runs wait for a
    /// slot (default: twice the cores, at least 4).
    public var maxConcurrentRuns: Int?
    /// How long a job waits for a file destination that another job is writing (a duration,
    /// default 10m); then it fails, and writes nothing.
    public var destinationLockTimeout: String?
    /// A URL template for links to a run's page on the reports branch, in notifications: `{path}`
    /// becomes the page's path there (e.g. `https://git.corp.example/config/src/branch/reports/{path}`).
    public var reportLinks: String?
    /// How long a notification is retried before it is given up on as undelivered (default 1d).
    public var notificationLimit: String?
    /// The known_hosts file an SSH remote's host key must be in (an absolute path; default
    /// `~/.ssh/known_hosts`). `init --trust-host-key` writes the home's own.
    public var knownHosts: String?
    /// PEM certificates of the CAs an HTTPS remote's certificate must chain to (an absolute path;
    /// default: the system's CAs).
    public var caFile: String?
    /// Where `reconcile` serves /metrics, /healthz, /readyz and /hooks/git (`HOST:PORT`; off
    /// when unset, and `reconcile --listen` overrides it).
    public var listen: String?
    /// The push webhook's secret; without it `/hooks/git` is not served.
    public var webhook: Webhook?
    /// Where the state is kept: `state.sqlite` in the home when unset.
    public var state: State?

    /// A state store other than the home's own SQLite file.
    public struct State: Codable, Sendable, Equatable {
        /// A PostgreSQL store, shared by every replica whose config.yaml names it.
        public struct Postgres: Codable, Sendable, Equatable {
            /// `postgresql://USER@HOST:PORT/DATABASE`, without a password (any libpq URL parameter may follow `?`).
            public var url: String
            public var passwordFrom: SecretReference?
            /// PEM certificates of the CAs the server's certificate must chain to; with it, the server's
            /// certificate and name are verified (libpq's `sslmode=verify-full`).
            public var caFile: String?
            /// How long a replica holds the store without renewing its lease (a duration, default 15s).
            public var lease: String?

            public init(url: String, passwordFrom: SecretReference? = nil, caFile: String? = nil, lease: String? = nil) {
                self.url = url
                self.passwordFrom = passwordFrom
                self.caFile = caFile
                self.lease = lease
            }

            /// The lease in effect, in seconds.
            public var leaseSeconds: TimeInterval { TimeInterval(lease.flatMap { DurationText($0)?.seconds } ?? 15) }

            /// The first problem with these settings, naming the field; nil when they are fine.
            func problem() -> String? {
                guard url.hasPrefix("postgresql://") || url.hasPrefix("postgres://"), let parts = URLComponents(string: url) else {
                    return "state.postgres.url: '\(url)' is not a postgresql:// URL (postgresql://USER@HOST:PORT/DATABASE)"
                }
                if parts.password != nil {
                    return "state.postgres.url: the URL carries a password, which config.yaml would keep in plain text; remove it "
                        + "from the URL and give it by reference (state.postgres.passwordFrom)"
                }
                if let caFile, !caFile.hasPrefix("/") { return "state.postgres.caFile: '\(caFile)' must be an absolute path" }
                if let lease {
                    guard let seconds = DurationText(lease)?.seconds, (3...3_600).contains(seconds) else {
                        return "state.postgres.lease: '\(lease)' is not a duration between 3s and 1h (e.g. 15s)"
                    }
                }
                let host = parts.host ?? ""
                let local = host.isEmpty || host == "localhost" || host.hasPrefix("127.") || host == "[::1]" || host == "::1"
                let verified = caFile != nil || (parts.queryItems ?? []).contains { $0.name == "sslmode" && $0.value == "verify-full" }
                if !local && !verified {
                    return "state.postgres: the server \(host) would be reached without checking its certificate; give "
                        + "state.postgres.caFile (the CA that signed it), or sslmode=verify-full in the URL"
                }
                return nil
            }
        }
        public var postgres: Postgres?
        public init(postgres: Postgres? = nil) { self.postgres = postgres }

        /// What `init --state` gives: the password by the environment variable that holds it.
        public static func postgres(url: String, passwordEnv: String?, caFile: String?, lease: String?) -> State {
            State(postgres: Postgres(url: url, passwordFrom: passwordEnv.map { SecretReference(env: $0) }, caFile: caFile,
                                     lease: lease))
        }
    }

    public init(remote: String, branch: String = "main", reportsBranch: String = "reports",
                credentials: Credentials? = nil, author: Author? = nil, jobLogLines: Int? = nil) {
        self.remote = remote
        self.branch = branch
        self.reportsBranch = reportsBranch
        self.credentials = credentials
        self.author = author
        self.jobLogLines = jobLogLines
    }

    /// The author of reports-branch commits.
    public var signature: GitSignature {
        GitSignature(name: author?.name ?? "Syncwright", email: author?.email ?? "syncwright@localhost")
    }

    /// The log cap in effect.
    public var logLineLimit: Int { jobLogLines ?? 10_000 }

    /// The run limit in effect.
    public var concurrentRunLimit: Int {
        maxConcurrentRuns ?? max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The lock wait in effect, in seconds.
    public var lockTimeout: TimeInterval {
        TimeInterval(destinationLockTimeout.flatMap { DurationText($0)?.seconds } ?? 600)
    }

    /// The first problem with these settings, as a sentence naming the field; nil when they are fine.
    func problem() -> String? {
        if branch == reportsBranch {
            return "reportsBranch: '\(reportsBranch)' is also the config branch; reports need a branch of their own"
        }
        if let jobLogLines, jobLogLines < 1 { return "jobLogLines: \(jobLogLines) must be at least 1" }
        if let text = destinationLockTimeout, DurationText(text)?.seconds == nil {
            return "destinationLockTimeout: '\(text)' is not a duration (write e.g. 30s, 10m)"
        }
        if let maxConcurrentRuns, maxConcurrentRuns < 1 {
            return "maxConcurrentRuns: \(maxConcurrentRuns) must be at least 1"
        }
        if let limit = notificationLimit, DurationText(limit) == nil {
            return "notificationLimit: '\(limit)' is not a duration like 1d or 12h"
        }
        if let links = reportLinks, !links.contains("{path}") {
            return "reportLinks: '\(links)' has no {path}, where a run's page goes"
        }
        if let address = RemoteAddress(remote), address.hasPassword {
            return "remote: the URL carries a password, which config.yaml would keep in plain text; remove it from the "
                + "URL and give it by reference (credentials.tokenFrom, or credentials.passwordFrom with username)"
        }
        if let credentials {
            if credentials.tokenFrom != nil && credentials.passwordFrom != nil {
                return "credentials: give tokenFrom or passwordFrom, not both"
            }
            if credentials.passwordFrom != nil && credentials.username == nil {
                return "credentials.passwordFrom: basic authentication needs credentials.username too"
            }
            if let key = credentials.sshKey, !key.privateKey.hasPrefix("/") {
                return "credentials.sshKey.privateKey: '\(key.privateKey)' must be an absolute path"
            }
        }
        for (field, value) in [("knownHosts", knownHosts), ("caFile", caFile)] {
            if let value, !value.hasPrefix("/") { return "\(field): '\(value)' must be an absolute path" }
        }
        if let listen, ListenAddress(listen) == nil {
            return "listen: '\(listen)' is not HOST:PORT (e.g. 127.0.0.1:9420)"
        }
        if let problem = state?.postgres?.problem() { return problem }
        if let author, author.name.isEmpty || author.email.isEmpty || author.email.contains(where: { "<>\n".contains($0) }) {
            return "author: give a name and an email address without angle brackets"
        }
        return nil
    }

    /// The fields config.yaml may hold.
    private indirect enum Field: Sendable {
        case value
        case fields([String: Field])
    }

    private static let schema: [String: Field] = {
        let secret = Field.fields(["env": .value, "file": .value])
        return [
            "remote": .value, "branch": .value, "reportsBranch": .value,
            "credentials": .fields(["username": .value, "tokenFrom": secret, "passwordFrom": secret,
                                    "sshKey": .fields(["privateKey": .value, "publicKey": .value, "passphraseFrom": secret])]),
            "knownHosts": .value, "caFile": .value, "listen": .value,
            "webhook": .fields(["secretFrom": secret]),
            "state": .fields(["postgres": .fields(["url": .value, "passwordFrom": secret, "caFile": .value, "lease": .value])]),
            "author": .fields(["name": .value, "email": .value]),
            "jobLogLines": .value, "maxConcurrentRuns": .value, "destinationLockTimeout": .value,
            "reportLinks": .value, "notificationLimit": .value,
        ]
    }()

    /// `LINE:COL: field.path: unknown field …` for the first field config.yaml should not have.
    static func unknownField(in text: String) throws -> (location: String, message: String)? {
        guard let root = try Yams.compose(yaml: text) else { return nil }
        func walk(_ node: Node, _ schema: [String: Field], _ path: String) -> (location: String, message: String)? {
            guard case .mapping(let mapping) = node else { return nil }
            for (key, value) in mapping {
                let name = key.string ?? ""
                let field = path.isEmpty ? name : "\(path).\(name)"
                guard let child = schema[name] else {
                    let mark = key.mark.map { "\($0.line):\($0.column)" } ?? "1:1"
                    return (mark, "\(field): unknown field (expected one of: \(schema.keys.sorted().joined(separator: ", ")))")
                }
                if case .fields(let nested) = child, let problem = walk(value, nested, field) { return problem }
            }
            return nil
        }
        return walk(root, schema, "")
    }

    /// The credentials with their secrets read now.
    /// The push webhook's secret, read now; nil when no webhook is configured.
    public func webhookSecret() throws -> String? {
        try webhook?.secretFrom.resolve("the webhook secret (webhook.secretFrom)")
    }

    /// The credentials with their secrets read now, and how the remote's identity is checked.
    /// The SSH agent is asked when no key is configured and `SSH_AUTH_SOCK` is set.
    public func gitCredentials(trustHostKey: String? = nil) throws -> GitCredentials {
        var out = GitCredentials(username: credentials?.username, knownHostsFile: knownHosts, caFile: caFile,
                                 trustHostKey: trustHostKey)
        if let key = credentials?.sshKey {
            out.sshKey = .init(privateKeyPath: key.privateKey, publicKeyPath: key.publicKey,
                               passphrase: try key.passphraseFrom?.resolve("the SSH key passphrase"))
        } else {
            out.useAgent = !(ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"] ?? "").isEmpty
        }
        out.token = try credentials?.tokenFrom?.resolve("the git token")
        out.password = try credentials?.passwordFrom?.resolve("the git password")
        return out
    }
}

/// `HOST:PORT` for a listener.
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace) else { return nil }
        self.host = host
        self.port = port
    }
}

/// The reconciler's home folder: `config.yaml`, the bare clone `repo.git` and `state.sqlite`.
public struct Home: Sendable {
    public let path: String
    public let config: HomeConfig

    public var configPath: String { (path as NSString).appendingPathComponent("config.yaml") }
    public var repositoryPath: String { (path as NSString).appendingPathComponent("repo.git") }
    public var statePath: String { (path as NSString).appendingPathComponent("state.sqlite") }

    /// The home to use: `--home`, else `$SYNCWRIGHT_HOME`, else `./.syncwright`.
    public static func resolvePath(_ option: String?) -> String {
        let raw = option ?? ProcessInfo.processInfo.environment["SYNCWRIGHT_HOME"] ?? ".syncwright"
        let expanded = (raw as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return expanded }
        return (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(expanded)
    }

    /// Opens an existing home, or explains how to make one.
    public static func open(_ path: String) throws -> Home {
        let configPath = (path as NSString).appendingPathComponent("config.yaml")
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw ReconcilerError.noHome(path)
        }
        let config: HomeConfig
        do {
            if let problem = try HomeConfig.unknownField(in: String(decoding: data, as: UTF8.self)) {
                throw ReconcilerError.config(location: "\(configPath):\(problem.location)", problem: problem.message)
            }
            config = try YAMLDecoder().decode(HomeConfig.self, from: data)
            if let problem = config.problem() { throw ReconcilerError.config(location: configPath, problem: problem) }
        } catch let error as ReconcilerError {
            throw error
        } catch {
            throw ReconcilerError.config(location: configPath, problem: "it is not a valid Syncwright config: \(error)")
        }
        return Home(path: path, config: config)
    }

    /// Creates a home: clones `config.remote` through libgit2, checks the branch, creates the state store,
    /// then writes `config.yaml` last. A failure removes whatever this call created.
    ///
    /// With `trustHostKey` (a fingerprint the user checked), an SSH remote's host key with that
    /// fingerprint is recorded in `config.knownHosts`, which defaults to the home's own
    /// `known_hosts` then.
    public static func create(at path: String, config: HomeConfig, force: Bool, trustHostKey: String? = nil) throws -> Home {
        let fm = FileManager.default
        var config = config
        let ownKnownHosts = (path as NSString).appendingPathComponent("known_hosts")
        if trustHostKey != nil, config.knownHosts == nil { config.knownHosts = ownKnownHosts }
        if let problem = config.problem() { throw ReconcilerError.config(location: nil, problem: problem) }
        if let trustHostKey { try checkTrust(trustHostKey, remote: config.remote) }
        let home = Home(path: path, config: config)
        let existing = [home.configPath, home.repositoryPath, home.statePath].filter { fm.fileExists(atPath: $0) }
        if !existing.isEmpty {
            guard force else {
                throw ReconcilerError.homeExists(path)
            }
        }
        let createdFolder = !fm.fileExists(atPath: path)
        let staging = (path as NSString).appendingPathComponent(".init-\(UUID().uuidString.prefix(8))")
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
            let stagedRepo = (staging as NSString).appendingPathComponent("repo.git")
            var credentials = try config.gitCredentials(trustHostKey: trustHostKey)
            // The home's own known_hosts is written in the staging folder, and moved in with the rest.
            let stagedKnownHosts = (staging as NSString).appendingPathComponent("known_hosts")
            if config.knownHosts == ownKnownHosts {
                if fm.fileExists(atPath: ownKnownHosts) { try fm.copyItem(atPath: ownKnownHosts, toPath: stagedKnownHosts) }
                credentials.knownHostsFile = stagedKnownHosts
            }
            let repo = try GitRepository.cloneBare(from: config.remote, to: stagedRepo, credentials: credentials)
            do {
                _ = try repo.resolveCommit("refs/remotes/origin/\(config.branch)")
            } catch {
                throw ReconcilerError.noBranch(config.branch, remote: config.remote)
            }
            if config.state?.postgres != nil {
                _ = try home.openStore() // reached, and its schema brought up to date, before config.yaml names it
            } else {
                _ = try SQLiteStateStore(path: (staging as NSString).appendingPathComponent("state.sqlite"))
            }
            let yaml = try YAMLEncoder().encode(config)
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: (staging as NSString).appendingPathComponent("config.yaml")))
            // The store's write-ahead log goes with it: a new store beside an old log would read the old state.
            for file in existing + ["-wal", "-shm"].map({ home.statePath + $0 }) where fm.fileExists(atPath: file) {
                try fm.removeItem(atPath: file)
            }
            if fm.fileExists(atPath: stagedKnownHosts) {
                if fm.fileExists(atPath: ownKnownHosts) { try fm.removeItem(atPath: ownKnownHosts) }
                try fm.moveItem(atPath: stagedKnownHosts, toPath: ownKnownHosts)
            }
            for name in ["repo.git", "state.sqlite", "config.yaml"]
            where fm.fileExists(atPath: (staging as NSString).appendingPathComponent(name)) {
                try fm.moveItem(atPath: (staging as NSString).appendingPathComponent(name),
                                toPath: (path as NSString).appendingPathComponent(name))
            }
            try fm.removeItem(atPath: staging)
            return home
        } catch {
            try? fm.removeItem(atPath: staging)
            if createdFolder { try? fm.removeItem(atPath: path) }
            throw ReconcilerError.wrap(error)
        }
    }

    /// Opens the state store config.yaml names: the home's `state.sqlite`, or a PostgreSQL store.
    public func openStore() throws -> any StateStore {
        guard let postgres = config.state?.postgres else { return try SQLiteStateStore(path: statePath) }
        let password = try postgres.passwordFrom?.resolve("the state store's password (state.postgres.passwordFrom)")
        return try PostgresStateStore(url: postgres.url, password: password, caFile: postgres.caFile)
    }

    /// Trusts the SSH host key with `fingerprint` (which the user checked) for this home's remote:
    /// connects, and when the remote presents a key with that fingerprint, records it in the
    /// home's known_hosts (`knownHosts`, or the home's own `known_hosts`, which config.yaml then
    /// names), replacing the key it held for the host. Nothing else changes. Returns the file.
    public func trustHostKey(_ fingerprint: String) throws -> String {
        try Self.checkTrust(fingerprint, remote: config.remote)
        let file = config.knownHosts ?? (path as NSString).appendingPathComponent("known_hosts")
        var credentials = try config.gitCredentials(trustHostKey: fingerprint)
        credentials.knownHostsFile = file
        let before = FileManager.default.contents(atPath: file)
        var failure: (any Error)?
        do {
            try GitRepository.probe(config.remote, credentials: credentials)
        } catch {
            failure = error
        }
        // The key is checked before credentials are: when authentication fails after the key was
        // recorded, config.yaml still names the file, so that the trust holds.
        let recorded = FileManager.default.contents(atPath: file) != before
        if config.knownHosts == nil && (failure == nil || recorded) {
            // Appended, so that the rest of config.yaml (comments included) stays as written.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: configPath))
            defer { try? handle.close() }
            let text = String(decoding: FileManager.default.contents(atPath: configPath) ?? Data(), as: UTF8.self)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(((text.hasSuffix("\n") || text.isEmpty ? "" : "\n")
                + "knownHosts: \(file)\n").utf8))
        }
        if let failure { throw ReconcilerError.wrap(failure) }
        return file
    }

    /// `--trust-host-key` is for SSH remotes, with a fingerprint as `ssh-keygen -l` prints it.
    static func checkTrust(_ fingerprint: String, remote: String) throws {
        guard RemoteAddress(remote)?.isSSH == true else {
            throw ReconcilerError.config(location: nil, problem: "--trust-host-key is for SSH remotes; \(remote) is not one")
        }
        guard fingerprint.hasPrefix("SHA256:"), fingerprint.count == 50 else {
            throw ReconcilerError.config(location: nil, problem: "--trust-host-key '\(fingerprint)' is not a SHA256 "
                + "fingerprint (SHA256: and 43 characters, as `ssh-keygen -lf KEY` prints it)")
        }
    }
}
