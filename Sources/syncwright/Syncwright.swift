import ArgumentParser
import Foundation
import Logging
import Reconciler

@main
struct Syncwright: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syncwright",
        abstract: "GitOps for directory synchronization: job collections as YAML in git, reconciled.",
        discussion: """
            Jobs, collections, schedules and connections live as YAML manifests in a git repository. \
            The reconciler keeps a home (default ./.syncwright, or $SYNCWRIGHT_HOME) with a bare clone \
            of that repository and its stored state, plans each revision against that state, and applies it.

            Exit codes: 0 success; 1 error; plan and diff exit 2 when something would change.
            """,
        version: "0.1.0",
        subcommands: [Init.self, Validate.self, Plan.self, Apply.self, Diff.self, Run.self, Reconcile.self, History.self,
                      Status.self, Logs.self, Requests.self, Approve.self, Deny.self, Notify.self, Schema.self]
    )

    /// Like the default entry point, but usage errors exit 1 (not 64): every command exits 1 on errors.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                Output.standardError(fullMessage(for: error))
                Foundation.exit(1)
            }
            exit(withError: error)
        }
    }
}

/// Options every home-using command shares.
struct HomeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The reconciler's home folder (default: $SYNCWRIGHT_HOME, else ./.syncwright).",
                                            valueName: "dir"))
    var home: String?

    @Option(name: .long, help: ArgumentHelp("Log level on stderr: trace, debug, info, notice, warning, error or critical (default: warning; info for reconcile).", valueName: "level"))
    var logLevel: Logger.Level?

    var homePath: String { Home.resolvePath(home) }

    func logger(defaultLevel: Logger.Level = .warning) -> Logger {
        var logger = Logger(label: "syncwright") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = logLevel ?? defaultLevel
        return logger
    }

    /// Opens the home and its workspace, or explains what is missing.
    func workspace(defaultLevel: Logger.Level = .warning) throws -> Workspace {
        try Workspace(home: try Home.open(homePath), logger: logger(defaultLevel: defaultLevel))
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// How lists and plans are printed.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

enum Output {
    static func standardError(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Colour only on a terminal, and never when NO_COLOR is set.
    static var colour: Bool {
        isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// `value` as JSON; an encoding failure is an error (exit 1), never an empty `{}`.
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(RunReport.timestamp(date))
        }
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw ReconcilerError.output(what: "the JSON output", problem: "\(error)")
        }
    }

    /// Publishes the home's queued reports after a command's own work is done: a failure here is
    /// a warning, because what the command did (a run, an apply) stands and stays queued.
    static func publish(_ workspace: Workspace, toStandardOutput: Bool = true) {
        do {
            published(try workspace.publishPending(), branch: workspace.home.config.reportsBranch,
                      toStandardOutput: toStandardOutput)
        } catch {
            standardError("warning: reports were not published: \(error); they stay queued")
        }
    }

    /// Sends the notifications that are due; a failure is a warning (they stay queued and are
    /// retried), never an error of the command.
    static func deliver(_ workspace: Workspace) {
        do {
            let pass = try workspace.deliverNotifications()
            for problem in pass.problems { standardError("warning: notification not delivered: \(problem)") }
            if pass.retrying > 0 {
                standardError("warning: \(pass.retrying) notification\(pass.retrying == 1 ? " is" : "s are") queued and will be sent again "
                    + "by the next run or reconcile (`syncwright status` lists them)")
            }
        } catch {
            standardError("warning: notifications were not sent: \(error); they stay queued")
        }
    }

    /// Says what publishing did: on stdout (or stderr, to keep a JSON stdout clean), and a warning on
    /// stderr when reports are still queued.
    static func published(_ outcome: PublishOutcome, branch: String, toStandardOutput: Bool = true) {
        if let last = outcome.published.last {
            let count = outcome.published.count
            let line = "Published \(count) report\(count == 1 ? "" : "s") to \(branch) (commit \(last.commit.prefix(7)))."
            if toStandardOutput { print(line) } else { standardError(line) }
        }
        if let problem = outcome.problem {
            standardError("warning: \(problem); \(outcome.waiting) report\(outcome.waiting == 1 ? " stays" : "s stay") "
                + "queued for the next run, apply or reconcile")
        }
    }

    /// Runs a command body; prints any error as one clear message on stderr and exits 1.
    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            throw failure(error)
        }
    }

    /// What an invalid revision means to the command that met it.
    enum InvalidMeaning {
        /// plan, apply, reconcile, approve: nothing was applied.
        case nothingApplied
        /// validate: the revision or folder is just reported.
        case checked
        /// diff, plan: the pull request's head is invalid; with `markdown`, the problems are
        /// also written on stdout as a comment a bot can post, each location a link when
        /// `linkBase` (the files' URL at that revision) is given.
        case head(markdown: Bool, linkBase: String? = nil)
    }

    /// `run(_:)`, saying what an invalid revision means for this command.
    static func run(invalid meaning: InvalidMeaning, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch ReconcilerError.invalidManifests(let revision, let error) {
            for problem in error.problems { standardError(problem.description) }
            let count = error.problems.count
            let problems = "\(count) problem\(count == 1 ? "" : "s")"
            switch meaning {
            case .nothingApplied:
                standardError("error: revision \(revision) has \(problems); nothing was applied")
            case .checked:
                let what = revision.hasPrefix("/") || revision.hasPrefix(".") || revision.count != 40 ? "the folder \(revision)" : "revision \(revision)"
                standardError("error: \(what) has \(problems)")
            case let .head(markdown, linkBase):
                standardError("error: the head revision \(revision) has \(problems)")
                if markdown {
                    var out = "### Syncwright: the manifests at `\(revision.prefix(7))` are invalid\n\n"
                    out += "\(problems.prefix(1).uppercased() + problems.dropFirst()); nothing can be planned until they are fixed.\n\n"
                    for problem in error.problems {
                        let location = "\(problem.location.file):\(problem.location.line):\(problem.location.column)"
                        // A link to the line, where the files' URL is known (e.g. …/blob/<sha>/).
                        let shown = linkBase.map { base in
                            "[`\(location)`](\(base.hasSuffix("/") ? base : base + "/")\(problem.location.file)#L\(problem.location.line))"
                        } ?? "`\(location)`"
                        out += "- \(shown)\(problem.field.isEmpty ? "" : " `\(problem.field)`"): \(problem.message)\n"
                    }
                    print(out, terminator: "")
                }
            }
            throw ExitCode.failure
        } catch {
            throw failure(error)
        }
    }

    /// The same, for an async body.
    static func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            throw failure(error)
        }
    }

    /// Prints `error` as the one clear message a user reads; the exit code to end with.
    private static func failure(_ error: any Error) -> ExitCode {
        switch error {
        case let exit as ExitCode:
            return exit
        case ReconcilerError.invalidManifests(let revision, let error):
            for problem in error.problems { standardError(problem.description) }
            let count = error.problems.count
            standardError("error: revision \(revision) has \(count) problem\(count == 1 ? "" : "s"); nothing was applied")
            return .failure
        default:
            standardError("error: \(error)")
            return .failure
        }
    }
}
