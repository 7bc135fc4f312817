import Foundation
import TestSupport
import Testing

/// Config repositories on real git servers: OpenSSH's sshd (git-shell) and nginx with git
/// http-backend over TLS. The served repository is read with the git CLI, host key fingerprints
/// with ssh-keygen. Every command runs with a HOME of its own, so the user's ~/.ssh is never read.
@Suite struct SSHRemoteTests {
    /// A fresh HOME (no ~/.ssh/known_hosts) and the commands run in it.
    struct Client {
        let folder: TemporaryFolder
        var home: String { folder.sub("home") }
        init() throws { folder = try TemporaryFolder("syncwright-client") }

        func run(_ arguments: [String], env: [String: String] = [:]) throws -> ProcessResult {
            try syncwright(arguments + ["--home", home], env: ["HOME": folder.path].merging(env) { _, new in new })
        }
    }

    @Test func cloneFetchAndPushOverSSHOnceTheHostKeyIsTrusted() throws {
        let fixture = try examplesFixture()
        let server = try SSHGitServer(fixture: fixture)
        let client = try Client()
        let fingerprint = try server.fingerprint()

        // Unknown host: refused, with the fingerprint ssh-keygen prints and how to trust it.
        let refused = try client.run(["init", server.url, "--ssh-key", server.clientKey])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the SSH host key of [127.0.0.1]:\(server.port) (ssh-ed25519 \(fingerprint)) is not in "
            + "\(client.folder.path)/.ssh/known_hosts"), "\(refused.stderr)")
        #expect(refused.stderr.contains("syncwright init --trust-host-key \(fingerprint)"))
        #expect(!FileManager.default.fileExists(atPath: client.home), "a refused init leaves no home")

        // A well-formed fingerprint that is not the server's trusts nothing.
        let wrong = "SHA256:" + String(repeating: "A", count: 43)
        let mismatched = try client.run(["init", server.url, "--ssh-key", server.clientKey, "--trust-host-key", wrong])
        #expect(mismatched.status == 1)
        #expect(mismatched.stderr.contains(fingerprint), "\(mismatched.stderr)")

        let trusted = try client.run(["init", server.url, "--ssh-key", server.clientKey, "--trust-host-key", fingerprint])
        #expect(trusted.status == 0, "\(trusted.stderr)")
        let knownHosts = (client.home as NSString).appendingPathComponent("known_hosts")
        // ssh-keygen finds the recorded key under the host's [host]:port name.
        let found = try runChecked("/usr/bin/ssh-keygen", ["-F", "[127.0.0.1]:\(server.port)", "-f", knownHosts])
        #expect(found.contains(try server.knownHostsLine()), "\(found)")
        let config = try String(contentsOfFile: (client.home as NSString).appendingPathComponent("config.yaml"), encoding: .utf8)
        #expect(config.contains("knownHosts: \(knownHosts)") && config.contains("privateKey: \(server.clientKey)"))

        // Apply and run: the reports are pushed to the server.
        #expect(try client.run(["apply"]).status == 0)
        let once = try client.run(["reconcile", "--once"])
        #expect(once.status == 0, "\(once.stderr)")
        let log = try runChecked("/usr/bin/git", ["--git-dir", server.repository, "log", "--format=%s", "reports"])
        #expect(log.contains("run nightly-directory-sync"), "\(log)")

        // A commit pushed to the server is fetched and applied.
        try fixture.write(["README.md": "changed\n"])
        let commit = try fixture.commit("a change")
        try fixture.git(["push", "-q", server.repository, "main"])
        let next = try client.run(["reconcile", "--once"])
        #expect(next.status == 0, "\(next.stderr)")
        #expect(next.stdout.contains("Applied revision \(commit.prefix(7))"), "\(next.stdout)")
    }

    @Test func aChangedHostKeyIsRefusedUntilTheNewOneIsTrusted() throws {
        let fixture = try examplesFixture()
        let server = try SSHGitServer(fixture: fixture)
        let client = try Client()
        let old = try server.fingerprint()
        #expect(try client.run(["init", server.url, "--ssh-key", server.clientKey, "--trust-host-key", old]).status == 0)
        #expect(try client.run(["apply"]).status == 0)
        let reportsBefore = try server.tip("reports")

        try server.replaceHostKey()
        let new = try server.fingerprint()
        #expect(new != old)
        let refused = try client.run(["reconcile", "--once"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the SSH host key of [127.0.0.1]:\(server.port) has CHANGED: it is now ssh-ed25519 \(new)"),
                "\(refused.stderr)")
        // Nothing was pushed: the run's report waits in the home.
        #expect(try server.tip("reports") == reportsBefore)

        // On the existing home, --trust-host-key alone replaces the key and changes nothing else.
        let configBefore = try String(contentsOfFile: (client.home as NSString).appendingPathComponent("config.yaml"), encoding: .utf8)
        let trust = try client.run(["init", "--trust-host-key", new])
        #expect(trust.status == 0, "\(trust.stderr)")
        let configAfter = try String(contentsOfFile: (client.home as NSString).appendingPathComponent("config.yaml"), encoding: .utf8)
        #expect(configAfter == configBefore)
        let knownHosts = (client.home as NSString).appendingPathComponent("known_hosts")
        let lines = try String(contentsOfFile: knownHosts, encoding: .utf8).split(separator: "\n")
        let line = try server.knownHostsLine()
        #expect(lines.count == 1 && lines[0].hasPrefix(line), "the old key is no longer trusted: \(lines)")
        let once = try client.run(["reconcile", "--once"])
        #expect(once.status == 0, "\(once.stderr)")
        #expect(try server.tip("reports") != reportsBefore)
    }

    @Test func aPassphraseKeyAHashedKnownHostsFileAndTheAgent() throws {
        let fixture = try examplesFixture()
        let server = try SSHGitServer(fixture: fixture)
        let client = try Client()
        // known_hosts as ssh-keyscan and `ssh-keygen -H` leave it: hashed names.
        let knownHosts = client.folder.sub("known_hosts")
        try (try server.knownHostsLine() + "\n").write(toFile: knownHosts, atomically: true, encoding: .utf8)
        try runChecked("/usr/bin/ssh-keygen", ["-H", "-f", knownHosts])
        #expect(try String(contentsOfFile: knownHosts, encoding: .utf8).hasPrefix("|1|"))

        let wrongPassphrase = try client.run(["init", server.url, "--ssh-key", server.passphraseKey, "--ssh-key-passphrase-env",
                                              "KEY_PASSPHRASE", "--known-hosts", knownHosts],
                                             env: ["KEY_PASSPHRASE": "not-the-passphrase"])
        #expect(wrongPassphrase.status == 1)
        #expect(wrongPassphrase.stderr.contains("(the key is \(server.passphraseKey), from credentials.sshKey.privateKey; "
            + "check credentials.sshKey.passphraseFrom)"), "\(wrongPassphrase.stderr)")
        #expect(!wrongPassphrase.stderr.contains("not-the-passphrase"))

        let withPassphrase = try client.run(["init", server.url, "--ssh-key", server.passphraseKey, "--ssh-key-passphrase-env",
                                             "KEY_PASSPHRASE", "--known-hosts", knownHosts],
                                            env: ["KEY_PASSPHRASE": SSHGitServer.passphrase])
        #expect(withPassphrase.status == 0, "\(withPassphrase.stderr)")
        let config = try String(contentsOfFile: (client.home as NSString).appendingPathComponent("config.yaml"), encoding: .utf8)
        #expect(config.contains("env: KEY_PASSPHRASE") && !config.contains(SSHGitServer.passphrase))
        #expect(try client.run(["apply"], env: ["KEY_PASSPHRASE": SSHGitServer.passphrase]).status == 0)

        // No key configured: the agent's keys, when SSH_AUTH_SOCK is set.
        let agentSocket = client.folder.sub("agent.sock")
        let agent = try Daemon("/usr/bin/ssh-agent", ["-D", "-a", agentSocket], log: client.folder.sub("agent.log"))
        defer { agent.stop() }
        let deadline = Date().addingTimeInterval(5)
        while !FileManager.default.fileExists(atPath: agentSocket) && Date() < deadline { usleep(20_000) }
        let agentClient = try Client()
        let withoutKeys = try agentClient.run(["init", server.url, "--known-hosts", knownHosts], env: ["SSH_AUTH_SOCK": agentSocket])
        #expect(withoutKeys.status == 1)
        #expect(withoutKeys.stderr.contains("the remote refused the SSH agent's keys"), "\(withoutKeys.stderr)")
        try runChecked("/usr/bin/ssh-add", ["-q", server.clientKey], environment: ["SSH_AUTH_SOCK": agentSocket])
        let viaAgent = try agentClient.run(["init", server.url, "--known-hosts", knownHosts], env: ["SSH_AUTH_SOCK": agentSocket])
        #expect(viaAgent.status == 0, "\(viaAgent.stderr)")
    }

    @Test func badRemoteSettingsAreRefusedBeforeAnythingIsWritten() throws {
        let client = try Client()
        let withPassword = try client.run(["init", "https://ada:hunter2-secret@git.corp.example/config.git"])
        #expect(withPassword.status == 1)
        #expect(withPassword.stderr.contains("remote: the URL carries a password"), "\(withPassword.stderr)")
        #expect(!withPassword.stderr.contains("hunter2-secret"))
        #expect(!FileManager.default.fileExists(atPath: client.home))

        let notSSH = try client.run(["init", "https://git.corp.example/config.git", "--trust-host-key", "SHA256:" + String(repeating: "A", count: 43)])
        #expect(notSSH.status == 1)
        #expect(notSSH.stderr.contains("--trust-host-key is for SSH remotes"), "\(notSSH.stderr)")

        let badFingerprint = try client.run(["init", "ssh://git@127.0.0.1:1/x.git", "--trust-host-key", "MD5:ab:cd"])
        #expect(badFingerprint.status == 1)
        #expect(badFingerprint.stderr.contains("is not a SHA256 fingerprint"), "\(badFingerprint.stderr)")
        #expect(!FileManager.default.fileExists(atPath: client.home))
    }
}

@Suite struct HTTPSRemoteTests {
    /// The examples served over HTTPS, a folder for the home, and the environment with the token.
    struct World {
        let fixture: GitFixture
        let server: HTTPSGitServer
        let folder: TemporaryFolder
        var home: String { folder.sub("h") }
        var env: [String: String] { ["GIT_TOKEN": HTTPSGitServer.token, "HOME": folder.path] }

        init() throws {
            fixture = try examplesFixture()
            server = try HTTPSGitServer(fixture: fixture)
            folder = try TemporaryFolder()
        }
    }

    @Test func aTokenOverVerifiedTLSClonesFetchesAndPushesAndIsWrittenNowhere() throws {
        let world = try World()
        let (server, home, env) = (world.server, world.home, world.env)
        let initialised = try syncwright(["init", server.url, "--token-env", "GIT_TOKEN", "--ca-file", server.caFile, "--home", home],
                                         env: env)
        #expect(initialised.status == 0, "\(initialised.stderr)")
        let applied = try syncwright(["apply", "--home", home], env: env)
        let once = try syncwright(["reconcile", "--once", "--home", home], env: env)
        #expect(applied.status == 0 && once.status == 0, "\(applied.stderr)\(once.stderr)")
        let log = try runChecked("/usr/bin/git", ["--git-dir", server.repository, "log", "--format=%s", "reports"])
        #expect(log.contains("run nightly-directory-sync") && log.contains("apply "), "\(log)")

        // The token is nowhere: not in the output, config.yaml, the state, or the reports branch.
        for output in [initialised, applied, once] { #expect(!(output.stdout + output.stderr).contains(HTTPSGitServer.token)) }
        for file in ["config.yaml", "state.sqlite"] {
            let data = FileManager.default.contents(atPath: (home as NSString).appendingPathComponent(file)) ?? Data()
            #expect(!data.isEmpty && data.range(of: Data(HTTPSGitServer.token.utf8)) == nil, "\(file)")
        }
        let grep = try runProcess("/usr/bin/git", ["--git-dir", server.repository, "grep", "-q", HTTPSGitServer.token, "reports"])
        #expect(grep.status == 1, "git grep finds no token on the reports branch")
        #expect(server.accessLog().contains("POST /config.git/git-receive-pack"), "the push went through nginx")
    }

    @Test func anUntrustedCertificateOrAWrongTokenIsRefusedClearly() throws {
        let world = try World()
        let (server, home, env, folder) = (world.server, world.home, world.env, world.folder)

        let otherCA = try syncwright(["init", server.url, "--token-env", "GIT_TOKEN", "--ca-file", server.otherCAFile, "--home", home],
                                     env: env)
        #expect(otherCA.status == 1)
        #expect(otherCA.stderr.contains("the HTTPS certificate of 127.0.0.1 is not trusted: it does not chain to the CAs in "
            + "\(server.otherCAFile) (caFile)"), "\(otherCA.stderr)")
        let systemCAs = try syncwright(["init", server.url, "--token-env", "GIT_TOKEN", "--home", home], env: env)
        #expect(systemCAs.status == 1)
        #expect(systemCAs.stderr.contains("does not chain to the system's CAs"), "\(systemCAs.stderr)")
        #expect(!server.accessLog().contains("GET"), "nothing was sent to a server whose certificate was refused")

        let wrongToken = "wrong-token-0815"
        let refused = try syncwright(["init", server.url, "--token-env", "GIT_TOKEN", "--ca-file", server.caFile, "--home", home],
                                     env: env.merging(["GIT_TOKEN": wrongToken]) { _, new in new })
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the remote refused the token (credentials.tokenFrom) for user x-access-token"),
                "\(refused.stderr)")
        #expect(!refused.stderr.contains(wrongToken) && !refused.stdout.contains(wrongToken))
        #expect(!FileManager.default.fileExists(atPath: home))

        // Basic authentication by reference: a user name and a password from the environment.
        let basic = try syncwright(["init", server.url, "--username", "x-access-token", "--password-env", "GIT_PASSWORD",
                                    "--ca-file", server.caFile, "--home", home],
                                   env: ["GIT_PASSWORD": HTTPSGitServer.token, "HOME": folder.path])
        #expect(basic.status == 0, "\(basic.stderr)")
        let config = try String(contentsOfFile: (home as NSString).appendingPathComponent("config.yaml"), encoding: .utf8)
        #expect(config.contains("passwordFrom:") && config.contains("env: GIT_PASSWORD") && !config.contains(HTTPSGitServer.token))
    }
}
