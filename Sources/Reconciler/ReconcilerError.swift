import Directory
import GitKit
import Manifests
import StateStore

/// Why a command could not do its work. Each case carries what is at fault (a path, a ref, a
/// collection, a request), so that callers can tell causes apart; `description` words it as one
/// sentence that says what to do when that is known.
public enum ReconcilerError: Error, Sendable, CustomStringConvertible {
    // The home
    /// No home at this path: `syncwright init` makes one (and `validate --path` needs none,
    /// which `forValidate` mentions).
    case noHome(String, forValidate: Bool = false)
    /// `init` into a folder that already holds a home, without `--force`.
    case homeExists(String)
    /// Another process holds the home's claim.
    case homeInUse(home: String, holder: String, command: String)
    /// Another replica holds the shared state store's lease (`holder` describes it).
    case storeInUse(store: String, holder: String, command: String)
    /// This process lost the shared state store's lease: it was not renewed in time.
    case leaseLost(store: String)
    /// A home's config is not valid: config.yaml (`location` is `path` or `path:line:col`), or
    /// the options `init` was given (no location).
    case config(location: String?, problem: String)
    /// A lock file of the home could not be opened or locked.
    case lockFile(path: String, problem: String)
    /// A secret (a password, a token) could not be read; `what` names whose it is.
    case secret(what: String, problem: String)
    /// A folder of manifests (`validate --path`) could not be read.
    case folder(path: String, problem: String)

    // The config repository
    /// The manifests at a revision are invalid; nothing was applied.
    case invalidManifests(revision: String, ManifestError)
    /// A ref names no branch, tag or commit; `place` says where it was looked for.
    case unknownRef(String, place: String)
    /// The branch does not exist on the remote.
    case noBranch(String, remote: String)
    /// `diff`'s base revision is itself invalid.
    case invalidBase(ref: String, commit: String, problem: String)

    // What is applied
    /// Nothing is applied yet.
    case nothingApplied
    /// `notify test` of a collection that has no notifications.
    case notificationsMissing(collection: String)
    /// A job or connection that a stored object names is not applied.
    case notApplied(ObjectKey)
    /// No such collection is applied (`orRun`: nor has one of that name run); with the applied names.
    case unknownCollection(String, applied: [String], orRun: Bool)
    /// A manual run while a policy's sync window is closed.
    case windowClosed(collection: String, reason: String)
    /// A connection cannot be opened as its stored spec says.
    case connection(name: String, problem: String)
    /// A job's reference (`resolve`) could not be looked up, so the job writes nothing.
    case reference(job: String, reference: String, problem: String)

    // Runs and requests
    /// No recorded run has this id (or it is the start of several).
    case unknownRun(String)
    /// A recorded run has no such job.
    case unknownJob(run: String, job: String, jobs: [String])
    /// No workflow request has this id; with those pending.
    case unknownRequest(String, pending: [String])
    /// No run was handed over with this id.
    case unknownRunRequest(String)
    /// An approved request's job has left its collection since.
    case jobLeftCollection(job: String, request: String, collection: String)
    /// A handed-over run did not end as it should; `problem` says how.
    case handedRun(String)

    // Decisions (approve, deny)
    /// `--author` is not `Name <email>`.
    case badAuthor(String)
    /// No git identity to write a decision as.
    case noIdentity
    /// The request was decided (or expired) already.
    case requestClosed(id: String, status: String, detail: String?)
    /// The author is not among the job's approvers.
    case notApprover(email: String, job: String, approvers: [String])
    /// The branch with the decision on it would not validate; nothing was pushed.
    case decisionInvalid(branch: String, problems: [String])
    /// Every push of the decision lost a race with other pushes.
    case branchKeptMoving(String)

    // Lower layers
    case git(GitError)
    case state(StateError)
    case directory(DirectoryError)
    /// Output could not be written (`what` names it).
    case output(what: String, problem: String)
    /// An error of a kind no case above names.
    case unexpected(String)

    public var description: String {
        switch self {
        case let .noHome(path, forValidate):
            return "no Syncwright home at \(path): run `syncwright init <repo-url>` first"
                + (forValidate ? ", or `syncwright validate --path .` to check the manifests in this folder without a home" : "")
        case .homeExists(let path):
            return "\(path) is already a Syncwright home; use --force to replace it"
        case let .homeInUse(home, holder, command):
            return "the home \(home) is in use by \(holder.isEmpty ? "another syncwright process" : holder); "
                + "wait for it to finish, or stop it, before `syncwright \(command)`"
        case let .storeInUse(store, holder, command):
            return "the state store \(store) is held by \(holder), another replica, which runs the collections; "
                + "wait for it to finish, or stop it, before `syncwright \(command)`"
        case .leaseLost(let store):
            return "this process lost its lease on the state store \(store): it was not renewed in time (the process was "
                + "paused, or cut off from the database), and another replica may hold the store now; it stopped, and "
                + "nothing it had not stored before is stored"
        case let .config(location, problem):
            return (location.map { "\($0): " } ?? "") + problem
        case let .lockFile(_, problem), let .folder(_, problem):
            return problem
        case let .secret(what, problem):
            return "\(what) \(problem)"
        case let .invalidManifests(revision, error):
            return "revision \(revision) is invalid, nothing was applied: \(error)"
        case let .unknownRef(ref, place):
            return "ref '\(ref)' names no branch, tag or commit in \(place)"
        case let .noBranch(branch, remote):
            return "the branch '\(branch)' does not exist in \(remote)"
        case let .invalidBase(ref, commit, problem):
            return "the base revision \(ref) (\(commit)) is itself invalid, so there is nothing to compare with: \(problem)"
        case .nothingApplied:
            return "nothing is applied yet: run `syncwright apply` first"
        case .notificationsMissing(let collection):
            return "collection \(collection) has no notifications: add notifications: { channels: [...] } to it"
        case .notApplied(let key):
            return "\(key.kind.rawValue.lowercased()) \(key.name) is not applied"
        case let .unknownCollection(name, applied, orRun):
            return "no collection named '\(name)' is applied" + (orRun ? " or has run" : "")
                + Suggestion.phrase(for: name, among: applied)
                + (applied.isEmpty ? "" : " (applied: \(applied.joined(separator: ", ")))")
        case let .windowClosed(collection, reason):
            return "collection \(collection) was not run: \(reason); run it inside the window, or give --override-window "
                + "to run it now (the report records that)"
        case let .connection(name, problem):
            return "connection \(name): \(problem)"
        case let .reference(job, reference, problem):
            return "job \(job): its reference to \(reference) could not be looked up, so nothing was written: \(problem)"
        case .unknownRun(let id):
            return "no recorded run has the id '\(id)' (or it is the start of several); `syncwright history` lists them"
        case let .unknownJob(run, job, jobs):
            return "run \(run) has no job '\(job)'" + Suggestion.phrase(for: job, among: jobs)
                + " (its jobs: \(jobs.joined(separator: ", ")))"
        case let .unknownRequest(id, pending):
            return "no request has the id '\(id)'"
                + (pending.isEmpty ? " (no request is pending)" : " (pending: \(pending.joined(separator: ", ")))")
        case .unknownRunRequest(let id):
            return "no run request \(id)"
        case let .jobLeftCollection(job, request, collection):
            return "job \(job) of request \(request) is no longer in collection \(collection)"
        case .handedRun(let problem):
            return problem
        case .badAuthor(let author):
            return "--author '\(author)' is not of the form \"Name <email>\""
        case .noIdentity:
            return "no git identity is configured: set user.name and user.email "
                + "(git config --global user.email you@example.com), or pass --author \"Name <email>\""
        case let .requestClosed(id, status, detail):
            return "request \(id) is already \(status)" + (detail.map { " (\($0))" } ?? "")
        case let .notApprover(email, job, approvers):
            return "\(email) is not an approver of job \(job) (approvers: \(approvers.joined(separator: ", "))), "
                + "so the reconciler would ignore this decision"
        case let .decisionInvalid(branch, problems):
            return "the decision was not pushed: with it, \(branch) would be invalid: " + problems.joined(separator: "; ")
        case .branchKeptMoving(let branch):
            return "the remote's \(branch) branch kept moving; try again"
        case .git(let error):
            return error.description
        case .state(let error):
            return error.description
        case .directory(let error):
            return error.description
        case let .output(what, problem):
            return "cannot write \(what): \(problem)"
        case .unexpected(let text):
            return text
        }
    }

    /// Wraps lower-level errors, keeping what they carry.
    static func wrap(_ error: any Error) -> ReconcilerError {
        switch error {
        case let error as ReconcilerError: return error
        case let error as GitError: return .git(error)
        case let error as StateError: return .state(error)
        case let error as DirectoryError: return .directory(error)
        default: return .unexpected("\(error)")
        }
    }
}
