import Foundation

/// What went wrong with the state store, and where.
public enum StateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The store could not be opened, created or brought up to date.
    case cannotOpen(location: String, reason: String)
    /// A question to the store failed.
    case readFailed(location: String, what: String, reason: String)
    /// A write failed; its transaction was rolled back, so nothing of it was stored.
    case writeFailed(location: String, what: String, reason: String)
    /// The connection to the store was lost while a write was being committed: it may or may
    /// not be stored (a server store only).
    case outcomeUnknown(location: String, what: String, reason: String)
    /// A write of a replica whose lease on a shared store ran out: refused, so that it cannot
    /// write over what the replica that took over has stored.
    case fenced(location: String, what: String)
    /// A stored row does not read as what it should be: a status a newer syncwright wrote, or damage.
    case unreadable(location: String, what: String, reason: String)
    /// A run was not recorded: it decided its notifications on a state of its collection's
    /// notifications that another process changed meanwhile. Decide again on `current`.
    case notificationStateMoved(collection: String, current: NotificationState?)

    public var description: String {
        switch self {
        case let .cannotOpen(location, reason):
            return "cannot open the state store \(location): \(reason)"
        case let .readFailed(location, what, reason):
            return "reading \(what) from the state store \(location) failed: \(reason)"
        case let .writeFailed(location, what, reason):
            return "\(what) in the state store \(location) failed, and nothing of it was stored: \(reason)"
        case let .outcomeUnknown(location, what, reason):
            return "\(what) in the state store \(location) may or may not be stored: the connection was lost while it was "
                + "committed (\(reason))"
        case let .fenced(location, what):
            return "\(what) in the state store \(location) was refused, and nothing of it was stored: this process no longer "
                + "holds the store's lease (it was not renewed in time: the process was paused, or cut off from the database), "
                + "and another replica may have taken over"
        case let .unreadable(location, what, reason):
            return "\(what) in the state store \(location) cannot be read (\(reason)); was it written by a newer "
                + "syncwright? Upgrade, or restore the store from a backup"
        case let .notificationStateMoved(collection, _):
            return "the notifications of collection \(collection) changed while its run was being recorded; nothing was recorded"
        }
    }
}
