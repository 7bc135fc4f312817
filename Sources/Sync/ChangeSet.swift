import Directory
import Foundation
import Manifests

/// One attribute that differs between the destination and what the job wants.
public struct AttributeChange: Sendable, Equatable {
    public let attribute: AttributeName
    /// For an attribute written as a whole (one value before or after): its values before and
    /// after. Empty for a change value by value (see `values`).
    public let old: [Value]
    public let new: [Value]
    /// For an attribute with several values changed value by value (a group's members): what is
    /// added and removed, and how many values it holds after. The unchanged values are not kept.
    public let values: ValueChanges?

    public struct ValueChanges: Sendable, Equatable {
        public let added: [Value]
        public let removed: [Value]
        public let countAfter: Int
    }

    init(attribute: AttributeName, old: [Value], new: [Value]) {
        (self.attribute, self.old, self.new, self.values) = (attribute, old, new, nil)
    }

    init(attribute: AttributeName, added: [Value], removed: [Value], countAfter: Int) {
        (self.attribute, self.old, self.new) = (attribute, [], [])
        values = ValueChanges(added: added, removed: removed, countAfter: countAfter)
    }
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
    /// What is written: a create's entry, or an update's renames and modifications. Kept in this
    /// form because a first load holds a million creates at once; see `operations`.
    let payload: Payload
    /// A follow-up of a create earlier in the same job (values written once every object of the
    /// job exists): counted with the create, not as an update.
    public internal(set) var completesCreate = false

    enum Payload: Sendable, Equatable {
        case entry(Entry)
        case operations([DirectoryChange])
    }

    public init(action: Action, dn: String, newDN: String?, attributes: [AttributeChange], operations: [DirectoryChange]) {
        if action == .create, operations.count == 1, case .add(let entry) = operations[0] {
            self.init(action: action, dn: dn, newDN: newDN, attributes: attributes, payload: .entry(entry))
        } else {
            self.init(action: action, dn: dn, newDN: newDN, attributes: attributes, payload: .operations(operations))
        }
    }

    init(action: Action, dn: String, newDN: String?, attributes: [AttributeChange], payload: Payload) {
        self.action = action
        self.dn = dn
        self.newDN = newDN
        self.attributes = attributes
        self.payload = payload
    }

    /// The directory operations, in order.
    public var operations: [DirectoryChange] {
        switch payload {
        case .entry(let entry): [.add(entry)]
        case .operations(let operations): operations
        }
    }
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
    /// Rows written without a value the job could not make well-formed (a DN template with an
    /// empty field), and why: logged as `? row reason`.
    public var notes: [ObjectFailure] = []
    /// Where the changes written after all others begin (references to objects the job
    /// creates or renames; see `deferSelfReferences`), when there are such.
    public var secondPassStart: Int?
    /// Reference values that named no object, and were left out.
    public var unresolved = 0
    /// Source entries that passed the filter.
    public var read = 0
    public var unchanged = 0
    /// Source objects with no match that were not created because `create` is false.
    public var skipped = 0
    /// Destination objects the job manages (those with a key), for the percent guard.
    public var managed = 0
    /// Who may let the job through once when a policy's guard stopped it (besides the job's
    /// workflow approvers).
    public var guardApprovers: [String] = []
    /// Set when a guard stops the job: it then writes nothing.
    public var guardViolation: String?
    /// Where planning spent its time, for the debug log.
    public var timings = PlanTimings()

    /// How many changes are `action`s; reads each change's action in place, without copying
    /// the changes (a first load holds a million).
    public func count(_ action: ObjectChange.Action) -> Int {
        changes.withUnsafeBufferPointer { buffer in
            var count = 0
            for index in buffer.indices where buffer[index].action == action && !buffer[index].completesCreate { count += 1 }
            return count
        }
    }
}

/// Wall milliseconds of planning's steps.
public struct PlanTimings: Sendable {
    /// Reading and indexing the destination.
    public var destinationMs = 0.0
    /// Then waiting for the source, when it was read meanwhile on another thread.
    public var sourceWaitMs = 0.0
    /// Reading the source (when not read meanwhile), mapping, matching and diffing its rows.
    public var sourceMs = 0.0
}

/// Progress of a job, for a live display.
public struct JobProgress: Sendable {
    public enum Phase: String, Sendable { case reading, writing }
    public let job: String
    public let phase: Phase
    public let done: Int
    public let total: Int?

    public init(job: String, phase: Phase, done: Int, total: Int?) {
        self.job = job
        self.phase = phase
        self.done = done
        self.total = total
    }
}
