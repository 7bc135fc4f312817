import GitKit
import Manifests
import StateStore

/// Why a command could not do its work: one sentence naming the thing at fault.
public enum ReconcilerError: Error, Sendable, CustomStringConvertible {
    /// The manifests at a revision are invalid; nothing was applied.
    case invalidManifests(revision: String, ManifestError)
    /// Anything else, already phrased for the user.
    case failed(String)
    /// No home at this path: `syncwright init` makes one.
    case noHome(String)

    public var description: String {
        switch self {
        case .invalidManifests(let revision, let error):
            return "revision \(revision) is invalid, nothing was applied: \(error)"
        case .noHome(let path):
            return "no Syncwright home at \(path): run `syncwright init <repo-url>` first"
        case .failed(let message):
            return message
        }
    }

    /// Wraps lower-level errors into one sentence.
    static func wrap(_ error: any Error) -> ReconcilerError {
        switch error {
        case let error as ReconcilerError: return error
        case let error as GitError: return .failed(error.description)
        case let error as StateError: return .failed(error.description)
        default: return .failed("\(error)")
        }
    }
}
