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
        }
        public var username: String?
        public var sshKey: SSHKey?
        /// An HTTPS token (e.g. a personal access token).
        public var tokenFrom: SecretReference?
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
            "credentials": .fields(["username": .value, "tokenFrom": secret,
                                    "sshKey": .fields(["privateKey": .value, "publicKey": .value, "passphraseFrom": secret])]),
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
    func gitCredentials() throws -> GitCredentials {
        guard let credentials else { return .none }
        var out = GitCredentials(username: credentials.username)
        if let key = credentials.sshKey {
            out.sshKey = .init(privateKeyPath: key.privateKey, publicKeyPath: key.publicKey,
                               passphrase: try key.passphraseFrom?.resolve("the SSH key passphrase"))
        }
        out.token = try credentials.tokenFrom?.resolve("the git token")
        return out
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
    public static func create(at path: String, config: HomeConfig, force: Bool) throws -> Home {
        let fm = FileManager.default
        if let problem = config.problem() { throw ReconcilerError.config(location: nil, problem: problem) }
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
            let repo = try GitRepository.cloneBare(from: config.remote, to: stagedRepo,
                                                   credentials: try config.gitCredentials())
            do {
                _ = try repo.resolveCommit("refs/remotes/origin/\(config.branch)")
            } catch {
                throw ReconcilerError.noBranch(config.branch, remote: config.remote)
            }
            _ = try SQLiteStateStore(path: (staging as NSString).appendingPathComponent("state.sqlite"))
            let yaml = try YAMLEncoder().encode(config)
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: (staging as NSString).appendingPathComponent("config.yaml")))
            // The store's write-ahead log goes with it: a new store beside an old log would read the old state.
            for file in existing + ["-wal", "-shm"].map({ home.statePath + $0 }) where fm.fileExists(atPath: file) {
                try fm.removeItem(atPath: file)
            }
            for name in ["repo.git", "state.sqlite", "config.yaml"] {
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
}
