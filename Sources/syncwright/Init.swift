import ArgumentParser
import Foundation
import Reconciler

extension Syncwright {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a home: a bare clone of the config repository (through libgit2) and an empty state store.",
            discussion: """
                The home gets config.yaml (remote, branches, credentials by reference), repo.git and \
                state.sqlite. Nothing is applied yet: run `syncwright plan` and `syncwright apply` next. \
                An existing home is left alone unless --force is given.

                SSH remotes (ssh://git@host:port/path.git or git@host:path.git) authenticate with --ssh-key, \
                else with the agent at SSH_AUTH_SOCK. Their host key must be in a known_hosts file: \
                --known-hosts, else ~/.ssh/known_hosts. An unknown or changed key is refused, and the error \
                prints its fingerprint: check it with the server's administrator, then run init again with \
                --trust-host-key SHA256:… to record it in the home's own known_hosts. On an existing home, \
                --trust-host-key alone records the key (replacing the key of that type held for the host) and changes \
                nothing else.

                HTTPS remotes authenticate with a token read from the environment (--token-env), or with \
                --username and a password (--password-env); their \
                certificate must chain to the system's CAs or to --ca-file. Secrets are never written to \
                config.yaml, and a URL with a password in it is refused.

                --state postgresql://USER@HOST:PORT/DATABASE keeps the state in PostgreSQL instead of state.sqlite: \
                replicas (each with a home of its own, made with the same --state) share it, one runs the \
                collections and the others stand by (docs/high-availability.md). The password is read from \
                --state-password-env (or libpq's PGPASSFILE); a server that is not on this machine needs \
                --state-ca-file, the CA its certificate must chain to. init connects, and makes or upgrades the \
                store's tables.
                """)

        @Argument(help: "The config repository's URL (file://, ssh:// or https://) or local path.")
        var repoURL: String?

        @Option(help: "The branch holding the manifests.")
        var branch = "main"

        @Option(help: "The branch run reports are committed to.")
        var reportsBranch = "reports"

        @Option(help: ArgumentHelp("The SSH private key to authenticate with (its path goes into config.yaml).",
                                   valueName: "path"))
        var sshKey: String?

        @Option(help: ArgumentHelp("The environment variable holding the SSH key's passphrase.", valueName: "name"))
        var sshKeyPassphraseEnv: String?

        @Option(help: ArgumentHelp("The environment variable holding an HTTPS token.", valueName: "name"))
        var tokenEnv: String?

        @Option(help: ArgumentHelp("The environment variable holding an HTTPS password (basic authentication, "
                                   + "with --username).", valueName: "name"))
        var passwordEnv: String?

        @Option(help: "The user name for the remote (HTTPS; SSH takes it from the URL otherwise).")
        var username: String?

        @Option(help: ArgumentHelp("The known_hosts file SSH host keys are checked against.", valueName: "path"))
        var knownHosts: String?

        @Option(help: ArgumentHelp("PEM certificates of the CAs an HTTPS remote's certificate must chain to.",
                                   valueName: "path"))
        var caFile: String?

        @Option(help: ArgumentHelp("Trust the SSH host key with this fingerprint, after checking it with the "
                                   + "server's administrator.", valueName: "SHA256:…"))
        var trustHostKey: String?

        @Option(help: ArgumentHelp("Keep the state in this PostgreSQL database (shared by replicas) instead of "
                                   + "state.sqlite.", valueName: "postgresql://…"))
        var state: String?

        @Option(help: ArgumentHelp("The environment variable holding the PostgreSQL password.", valueName: "name"))
        var statePasswordEnv: String?

        @Option(help: ArgumentHelp("PEM certificates of the CAs the PostgreSQL server's certificate must chain to "
                                   + "(its name is verified too).", valueName: "path"))
        var stateCaFile: String?

        @Option(help: ArgumentHelp("How long a replica holds the PostgreSQL store without renewing its lease (default 15s).",
                                   valueName: "duration"))
        var stateLease: String?

        @Flag(help: "Replace an existing home (its stored state is lost).")
        var force = false

        @OptionGroup var options: HomeOptions

        func validate() throws {
            if repoURL == nil && trustHostKey == nil {
                throw ValidationError("give the config repository's URL (or, on an existing home, --trust-host-key)")
            }
            if sshKeyPassphraseEnv != nil && sshKey == nil {
                throw ValidationError("--ssh-key-passphrase-env needs --ssh-key")
            }
            if passwordEnv != nil && username == nil {
                throw ValidationError("--password-env needs --username")
            }
            if passwordEnv != nil && tokenEnv != nil {
                throw ValidationError("give --token-env or --password-env, not both")
            }
            if state == nil, let option = [("--state-password-env", statePasswordEnv), ("--state-ca-file", stateCaFile),
                                           ("--state-lease", stateLease)].first(where: { $0.1 != nil })?.0 {
                throw ValidationError("\(option) needs --state")
            }
        }

        func run() throws {
            try Output.run {
                let path = options.homePath
                if let trustHostKey, !force, FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("config.yaml")) {
                    let home = try Home.open(path)
                    if let repoURL, repoURL != home.config.remote {
                        throw ValidationError("\(path) is a home of \(home.config.remote), not \(repoURL); "
                            + "give --force to replace it, or leave the URL out to trust the key for its remote")
                    }
                    let file = try home.trustHostKey(trustHostKey)
                    print("Trusted the host key \(trustHostKey) of \(home.config.remote) (recorded in \(file)).")
                    return
                }
                guard let repoURL else { throw ReconcilerError.noHome(path) }
                let credentials = HomeConfig.credentials(username: username, sshKey: sshKey.map(Self.absolute),
                                                         passphraseEnv: sshKeyPassphraseEnv, tokenEnv: tokenEnv,
                                                         passwordEnv: passwordEnv)
                var config = HomeConfig(remote: repoURL, branch: branch, reportsBranch: reportsBranch,
                                        credentials: credentials)
                config.knownHosts = knownHosts.map(Self.absolute)
                config.caFile = caFile.map(Self.absolute)
                if let state {
                    config.state = .postgres(url: state, passwordEnv: statePasswordEnv, caFile: stateCaFile.map(Self.absolute),
                                             lease: stateLease)
                }
                let home = try Home.create(at: path, config: config, force: force, trustHostKey: trustHostKey)
                print("Initialised \(home.path) from \(repoURL) (branch \(branch), reports to \(reportsBranch))"
                      + (state == nil ? "." : "; the state is kept in \(home.config.state?.postgres?.url ?? "").")
                      )
                if let trustHostKey, let file = home.config.knownHosts {
                    print("Trusted the host key \(trustHostKey) (recorded in \(file)).")
                }
                print("Next: syncwright plan, then syncwright apply.")
            }
        }

        static func absolute(_ path: String) -> String {
            let expanded = (path as NSString).expandingTildeInPath
            return expanded.hasPrefix("/") ? expanded
                : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(expanded)
        }
    }
}
