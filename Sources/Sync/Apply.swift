import Directory
import Foundation

/// A job's counters, as reported per run.
public struct JobStatistics: Sendable, Equatable, Codable {
    public var read = 0
    public var created = 0
    public var updated = 0
    public var deleted = 0
    public var unchanged = 0
    public var skipped = 0
    public var failed = 0
    /// Reference values that named no object, and were left out of what was written.
    public var unresolved = 0
    public init() {}
}

/// The result of applying a ChangeSet.
public struct JobOutcome: Sendable {
    public var statistics = JobStatistics()
    /// One line per object: `+ DN`, `~ DN attr: old → new`, `- DN`, `> old → new`, `! DN reason`.
    public var log: [String] = []
    /// Set when the job as a whole failed (a guard, or the destination could not be written).
    public var error: String?
    /// The first objects that failed (at most `failuresKept`), with why; `statistics.failed` counts all.
    public var failures: [ObjectFailure] = []
    public static let failuresKept = 10
    /// Wall milliseconds spent applying the changes, then making them durable (`commit`), for
    /// the debug log.
    public var applyMs = 0.0
    public var commitMs = 0.0
}

extension JobEngine {
    /// How a value is shown in logs: masked for secret attributes; a binary GUID (`objectGUID`,
    /// `mS-DS-ConsistencyGuid`) in its usual text form, other binary values as `base64:…`.
    public func show(_ attribute: AttributeName, _ values: [Value]) -> String {
        if values.isEmpty { return "(none)" }
        if secretAttributes.contains(attribute) { return "••••••" }
        let guid = Value.holdsGUIDs(attribute)
        return values.map { LogText.escape(Value.show($0.bytes, guid: guid)) }.joined(separator: "; ")
    }

    /// The log lines for one change, as it would be applied.
    public func logLines(for change: ObjectChange) -> [String] {
        switch change.action {
        case .create:
            return ["+ \(change.dn.isEmpty ? "(new row)" : LogText.escape(change.dn))"]
        case .delete:
            return ["- \(LogText.escape(change.dn))"]
        case .update, .rename:
            var lines: [String] = []
            let dn = LogText.escape(change.newDN ?? change.dn)
            if let newDN = change.newDN { lines.append("> \(LogText.escape(change.dn)) → \(LogText.escape(newDN))") }
            for attribute in change.attributes {
                if let values = attribute.values {
                    // Several values (a group's members) change value by value: the line names
                    // what is added and removed, not the whole list.
                    var parts: [String] = []
                    if !values.added.isEmpty { parts.append("added \(show(attribute.attribute, values.added))") }
                    if !values.removed.isEmpty { parts.append("removed \(show(attribute.attribute, values.removed))") }
                    lines.append("~ \(dn) \(attribute.attribute): " + parts.joined(separator: "; ") + " (\(values.countAfter) values)")
                    continue
                }
                lines.append("~ \(dn) \(attribute.attribute): \(show(attribute.attribute, attribute.old)) → "
                             + "\(show(attribute.attribute, attribute.new))")
            }
            return lines
        }
    }

    /// The lines a preview shows for one change: the log lines, and under a create each attribute
    /// it writes (`    + title: Engineer`), secrets masked.
    public func previewLines(for change: ObjectChange) -> [String] {
        var lines = logLines(for: change)
        guard change.action == .create, case .entry(let entry) = change.payload else { return lines }
        for index in 0..<entry.nameCount {
            let name = entry.name(at: index)
            guard entry.firstValue(at: index) != nil else { continue }
            lines.append("    + \(name): \(show(name, entry.values(at: index).map { Value(Data($0)) }))")
        }
        return lines
    }

    /// Applies `set` to `destination`, object by object. A failing object is counted and logged, and
    /// the job goes on. A guard violation applies nothing. `shouldStop` is asked between objects.
    ///
    /// With `commit: false` the changes are applied to a staging directory and not made durable
    /// (a preview).
    ///
    /// The log keeps its first `logLimit` lines, then one line saying how many were left out; the
    /// statistics stay exact.
    public func apply(_ set: ChangeSet, to destination: Directory, commit: Bool = true, logLimit: Int = 10_000,
                      progress: ((JobProgress) -> Void)? = nil, shouldStop: () -> Bool = { false }) -> JobOutcome {
        var outcome = JobOutcome()
        var log = CappedLog(limit: logLimit)
        var stats = JobStatistics()
        stats.read = set.read
        stats.unchanged = set.unchanged
        stats.skipped = set.skipped
        stats.failed = set.failures.count
        stats.unresolved = set.unresolved
        for failure in set.failures { log.append("! \(LogText.escape(failure.object)) \(LogText.escape(failure.reason))") }
        outcome.failures = Array(set.failures.prefix(JobOutcome.failuresKept))
        for note in set.notes { log.append("? \(LogText.escape(note.object)) \(LogText.escape(note.reason))") }
        if let violation = set.guardViolation {
            outcome.statistics = stats
            outcome.error = violation
            outcome.log = log.lines
            return outcome
        }
        var written = (created: 0, updated: 0, deleted: 0)
        var stopwatch = Stopwatch()
        destination.expectAdds(set.count(.create))
        // In chunks: a directory may work on a chunk's objects concurrently (LDAP pipelines
        // them); the log still follows the ChangeSet's order.
        let chunkSize = 1_000
        var start = 0
        while start < set.changes.count {
            if shouldStop() {
                outcome.error = "stopped after \(start) of \(set.changes.count) changes"
                break
            }
            // The second pass starts a chunk of its own: every change before it is written first.
            var end = min(start + chunkSize, set.changes.count)
            if let second = set.secondPassStart, start < second, second < end { end = second }
            let chunk = set.changes[start..<end]
            var failures: [Int: any Error] = [:]
            let objects = chunk.map { change -> [DirectoryChange] in
                switch change.payload {
                case .entry(let entry): [.add(entry)]
                case .operations(let operations): operations
                }
            }
            do {
                try destination.apply(objects: objects) { offset, error in if let error { failures[offset] = error } }
            } catch {
                for offset in objects.indices { failures[offset] = error }
            }
            for (offset, change) in chunk.enumerated() {
                if let error = failures[offset] {
                    stats.failed += 1
                    let object = change.dn.isEmpty ? "(new row)" : change.dn
                    // A follow-up's object was created: only its references are missing.
                    let reason = change.completesCreate
                        ? "created, but without \(change.attributes.map(\.attribute.description).joined(separator: ", ")): \(error)"
                        : "\(error)"
                    log.append("! \(LogText.escape(object)) \(LogText.escape(reason))")
                    if outcome.failures.count < JobOutcome.failuresKept {
                        outcome.failures.append(ObjectFailure(object: object, reason: reason))
                    }
                    continue
                }
                switch change.action {
                case _ where change.completesCreate: break
                case .create: written.created += 1
                case .update, .rename: written.updated += 1
                case .delete: written.deleted += 1
                }
                if log.wantsMore { log.append(contentsOf: logLines(for: change)) } else { log.skip(1) }
            }
            let done = end
            if done / 10_000 > start / 10_000 || done == set.changes.count {
                progress?(JobProgress(job: name, phase: .writing, done: done, total: set.changes.count))
            }
            start = done
        }
        outcome.applyMs = stopwatch.lap()
        do {
            if commit { try destination.commit() }
            stats.created = written.created
            stats.updated = written.updated
            stats.deleted = written.deleted
        } catch {
            // Nothing of this job reached the destination.
            outcome.error = "\(error)"
            log.append("! the destination was not written: \(error)")
        }
        outcome.commitMs = stopwatch.lap()
        outcome.statistics = stats
        outcome.log = log.lines
        return outcome
    }
}

/// A log that keeps its first lines and counts the rest.
struct CappedLog {
    let limit: Int
    private var kept: [String] = []
    private var left = 0

    init(limit: Int) { self.limit = limit }

    var wantsMore: Bool { kept.count < limit }

    mutating func append(_ line: String) {
        if kept.count < limit { kept.append(line) } else { left += 1 }
    }

    mutating func append(contentsOf lines: [String]) { for line in lines { append(line) } }

    /// Counts lines not built at all (one per change; a rename or update may have had more).
    mutating func skip(_ count: Int) { left += count }

    var lines: [String] {
        left == 0 ? kept : kept + ["… \(left) more changes not kept in this log; the counts are exact"]
    }
}

/// Keeps a job log's one line per object: line breaks and other control characters in a value or
/// a reason are written as escapes (`\n`, `\r`, `\t`, `\u{1B}`), and a backslash as `\\`.
public enum LogText {
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == "\\" || $0.value == 0x7F }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
