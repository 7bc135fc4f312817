import Foundation

/// The Directory module's error: what went wrong, with the connection, file, line, DN or server
/// at fault, so that callers can tell causes apart. `connection` is how the directory names
/// itself in messages ("connection hr-export", or with its file).
public enum DirectoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file could not be read, written, created or locked.
    case file(connection: String, path: String, problem: String)
    /// A file's content is malformed at `line` (1-based).
    case malformed(connection: String, line: Int, problem: String)
    /// A file holds the same DN twice.
    case duplicate(file: String, dn: String)
    /// Another job is writing the file (its lock was not had in time, or the wait was stopped).
    case busy(connection: String, file: String, problem: String)
    /// A directory server failed or refused: connecting, binding, searching.
    case server(connection: String, problem: String)
    /// A search's base does not exist on the server (LDAP's noSuchObject).
    case noSuchBase(connection: String, base: String, problem: String)
    /// One object's change failed: its DN when known, and why. The job goes on with the others.
    case object(dn: String?, problem: String)
    /// A job asked for something this kind of directory cannot do.
    case unsupported(String)

    public var description: String {
        switch self {
        case let .file(connection, _, problem), let .busy(connection, _, problem), let .server(connection, problem),
             let .noSuchBase(connection, _, problem):
            return "\(connection): \(problem)"
        case let .malformed(connection, line, problem):
            return "\(connection): line \(line): \(problem)"
        case let .duplicate(file, dn):
            return "\(file) holds the entry \(dn) twice"
        case let .object(_, problem), let .unsupported(problem):
            return problem
        }
    }
}
