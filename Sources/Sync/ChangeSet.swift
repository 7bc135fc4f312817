import Directory
import Foundation
import Manifests

/// One attribute that differs between the destination and what the job wants.
public struct AttributeChange: Sendable, Equatable {
    public let attribute: AttributeName
    public let old: [Value]
    public let new: [Value]
}

/// What a job would do to one destination object.
public struct ObjectChange: Sendable, Equatable {
    public enum Action: String, Sendable { case create, update, delete, rename }
    public let action: Action
    /// The object's DN (for a rename, the old one). For CSV rows, `#<row>`; empty for a new row.
    public let dn: String
    /// For a rename (and a rename with changes): the new DN.
    public let newDN: String?
    /// For an update or rename: each attribute that changes. Empty for a create (the `.add`
    /// operation holds the entry) and a delete.
    public let attributes: [AttributeChange]
    /// The directory operations, in order.
    public let operations: [DirectoryChange]
}

/// A row that could not be turned into a change, and why.
public struct ObjectFailure: Sendable, Equatable {
    /// The source object's DN, or CSV row (`#3`), or key.
    public let object: String
    public let reason: String
    public init(object: String, reason: String) {
        self.object = object
        self.reason = reason
    }
}

/// Everything one job would do, computed without writing.
public struct ChangeSet: Sendable {
    public var changes: [ObjectChange] = []
    public var failures: [ObjectFailure] = []
    /// Source entries that passed the filter.
    public var read = 0
    public var unchanged = 0
    /// Source objects with no match that were not created because `create` is false.
    public var skipped = 0
    /// Destination objects the job manages (those with a key), for the percent guard.
    public var managed = 0
    /// Set when a guard stops the job: it then writes nothing.
    public var guardViolation: String?

    public func count(_ action: ObjectChange.Action) -> Int { changes.filter { $0.action == action }.count }
}

/// Progress of a job, for a live display.
public struct JobProgress: Sendable {
    public enum Phase: String, Sendable { case reading, writing }
    public let job: String
    public let phase: Phase
    public let done: Int
    public let total: Int?
}
