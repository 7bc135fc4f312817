import Concurrency
import Directory
import Foundation
import StateStore

/// One run per destination at a time, across the collections of this process and, on a shared
/// store, across every replica: a job claims its destination (its connection, or for a file
/// destination the file) from the read of it to the commit, and waits while another run holds
/// it. On a store of the home's own the claims are this process's (one writing process holds a
/// home); on a shared store they are rows of the store, and the claim of a replica whose lease
/// ran out is taken over.
///
/// This is over and above `DestinationLock` (a file's `flock`), which also keeps out other
/// homes and processes on one machine.
final class DestinationClaim {
    private var release: (() -> Void)?

    fileprivate init(release: @escaping () -> Void) { self.release = release }

    /// Gives the claim back (once).
    func give() {
        release?()
        release = nil
    }

    deinit { give() }
}

/// The claims of this process, on a store of the home's own: destination → holder.
final class LocalDestinationClaims: Sendable {
    private let claims = Locked<[String: String]>([:])

    /// Nil once claimed; else the holder.
    func claim(_ destination: String, holder: String) -> String? {
        claims.update { claims in
            if let other = claims[destination] { return other }
            claims[destination] = holder
            return nil
        }
    }

    func release(_ destination: String, holder: String) {
        claims.update { claims in if claims[destination] == holder { claims[destination] = nil } }
    }
}

extension Workspace {
    /// The key a destination is claimed by: the file a file destination writes (its lock path,
    /// so that every spelling of one path is one destination), else the connection's name.
    static func destinationKey(connection: String, writtenFile: String?) -> String {
        writtenFile.map { "file \(DestinationLock.lockPath(for: $0))" } ?? "connection \(connection)"
    }

    /// Claims `destination` for run `runId` (described by `holder`), waiting up to the home's
    /// `destinationLockTimeout` while another run holds it, or until `shouldStop`. Throws a
    /// `DirectoryError.busy` naming the destination, who holds it and how long it waited.
    func claimDestination(_ destination: String, connection: String, what: String, runId: String, holder: String,
                          shouldStop: () -> Bool) throws -> DestinationClaim {
        let timeout = home.config.lockTimeout
        let deadline = Date().addingTimeInterval(timeout)
        let shared = self.shared?.store
        while true {
            let other: String?
            if let shared {
                other = try shared.claimDestination(destination, run: runId, holder: holder)
                if other == nil {
                    return DestinationClaim { [logger] in
                        do { try shared.releaseDestination(destination, run: runId) } catch {
                            logger.warning("cannot give back the claim on a destination; it passes on when this replica's lease runs out",
                                           metadata: ["destination": "\(destination)", "error": "\(error)"])
                        }
                    }
                }
            } else {
                other = destinationClaims.claim(destination, holder: holder)
                if other == nil {
                    return DestinationClaim { [destinationClaims] in destinationClaims.release(destination, holder: holder) }
                }
            }
            if Date() >= deadline || shouldStop() {
                throw DirectoryError.busy(connection: what, file: destination, problem: "\(connection) is being written by "
                    + "another run (\(other ?? "unknown")); waited \(Int(timeout)) s for it, so nothing was written. "
                    + "Run the collections one after the other, or raise destinationLockTimeout in config.yaml")
            }
            usleep(shared == nil ? 50_000 : 200_000)
        }
    }
}
