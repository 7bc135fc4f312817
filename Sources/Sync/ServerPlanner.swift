import Concurrency
import Directory
import Foundation
import Manifests

/// Planning against a destination on a server, diffed page by page as the server sends it.
extension JobEngine {
    /// `plan` for a destination on a server: the source is read, mapped and indexed by key on a
    /// second thread while the first pages arrive; from then on each page of the destination is
    /// matched and diffed on all cores as it comes. Destination entries are not kept, only the
    /// DNs of those no source row matched.
    func planAgainstServer(source: Directory, destination: Directory,
                                   progress: ((JobProgress) -> Void)?) throws -> ChangeSet {
        var set = ChangeSet()
        var stopwatch = Stopwatch()
        // The source is read on the background thread only: this one reads the destination,
        // and waits for `early` before it returns or throws.
        let handed = HandedOver(source)
        let early = Background { [self] in SourceIndex(try readPrepared(handed.value)) }
        var sourceIndex: SourceIndex?
        var backlog: [[Entry]] = []
        /// Per source row: what its match in the destination came to.
        var matches: [MatchResult?] = []
        var ambiguous: Set<String> = []
        var unmatched: [String] = []

        func diff(_ page: [Entry], against rows: SourceIndex) {
            let results = ParallelParts.map(page) { entry -> (key: String, row: Int?, result: MatchResult)? in
                guard let key = destinationKey(entry) else { return nil }
                guard let row = rows.first[key], case .keyed(_, let desired) = rows.rows[row].prepared else {
                    return (key, nil, .unchanged)
                }
                do throws(TransformError) {
                    let change = try update(entry, desired: desired)
                    return (key, row, change.map { .changed($0) } ?? .unchanged)
                } catch {
                    return (key, row, .failed(error.message))
                }
            }
            for (entry, result) in zip(page, results) {
                guard let (key, row, match) = result else { continue }
                set.managed += 1
                guard let row else { unmatched.append(entry.dn); continue }
                if matches[row] != nil { ambiguous.insert(key) }
                matches[row] = match
            }
        }
        do {
            try destination.read(destinationScope, pageSize: pageSize) { page in
                if sourceIndex == nil, early.isDone {
                    let rows = try early.value()
                    matches = Array(repeating: nil, count: rows.rows.count)
                    for waiting in backlog { diff(waiting, against: rows) }
                    backlog = []
                    sourceIndex = rows
                }
                if let sourceIndex { diff(page, against: sourceIndex) } else { backlog.append(page) }
            }
        } catch {
            _ = try? early.value()
            throw error
        }
        set.timings.destinationMs = stopwatch.lap()
        let rows = try sourceIndex ?? early.value()
        if sourceIndex == nil {
            matches = Array(repeating: nil, count: rows.rows.count)
            set.timings.sourceWaitMs = stopwatch.lap()
            for waiting in backlog { diff(waiting, against: rows) }
            backlog = []
        }

        // Rows no destination object matched are created; made on all cores, as a first load
        // creates every row.
        let creations: [Int: RowOutcome] = spec.create
            ? Dictionary(uniqueKeysWithValues: ParallelParts.map(rows.rows.indices.filter { row in
                guard matches[row] == nil, case .keyed(let key, _) = rows.rows[row].prepared else { return false }
                return rows.first[key] == row
            }) { row -> (Int, RowOutcome) in
                guard case .keyed(let key, let desired) = rows.rows[row].prepared else { return (row, .filteredOut) }
                do throws(TransformError) {
                    return (row, .planned(key: key, match: nil, change: try create(desired)))
                } catch {
                    return (row, .failed(error.message, key: key))
                }
            })
            : [:]
        for (position, row) in rows.rows.enumerated() {
            for note in row.notes { set.notes.append(ObjectFailure(object: row.dn, reason: note)) }
            set.unresolved += row.unresolved
            switch row.prepared {
            case .filteredOut:
                continue
            case .failed(let reason):
                set.read += 1
                set.failures.append(ObjectFailure(object: row.dn, reason: reason))
            case .keyed(let key, _):
                set.read += 1
                if rows.first[key] != position {
                    set.failures.append(ObjectFailure(object: row.dn, reason: duplicateReason(key)))
                } else if ambiguous.contains(key) {
                    set.failures.append(ObjectFailure(object: row.dn, reason: ambiguousReason(key)))
                } else if let match = matches[position] {
                    switch match {
                    case .unchanged: set.unchanged += 1
                    case .changed(let change): set.changes.append(change)
                    case .failed(let reason): set.failures.append(ObjectFailure(object: row.dn, reason: reason))
                    }
                } else if case .failed(let reason, _)? = creations[position] {
                    set.failures.append(ObjectFailure(object: row.dn, reason: reason))
                } else if case .planned(_, _, let change?)? = creations[position] {
                    set.changes.append(change)
                } else {
                    set.skipped += 1
                }
            }
            if (position + 1) % 10_000 == 0 { progress?(JobProgress(job: name, phase: .reading, done: position + 1, total: rows.rows.count)) }
        }
        set.timings.sourceMs = stopwatch.lap()
        if spec.delete { set.changes += unmatched.map { deletion(of: $0) } }
        return set
    }

    /// What a destination object matched by a source row comes to.
    enum MatchResult: Sendable {
        case unchanged
        case changed(ObjectChange)
        case failed(String)
    }

    /// The prepared source rows, and the first row of each key.
    struct SourceIndex: Sendable {
        let rows: [PreparedRow]
        let first: [String: Int]

        init(_ pages: [[PreparedRow]]) {
            rows = Array(pages.joined())
            var first: [String: Int] = [:]
            first.reserveCapacity(rows.count)
            for (position, row) in rows.enumerated() {
                if case .keyed(let key, _) = row.prepared, first[key] == nil { first[key] = position }
            }
            self.first = first
        }
    }
    /// Every page of the source, filtered, mapped and keyed (the work that needs no destination).
    func readPrepared(_ source: Directory) throws -> [[PreparedRow]] {
        var pages: [[PreparedRow]] = []
        var presence = FieldPresence(fieldUses, declared: try source.declaredAttributes())
        var total = 0
        let namesAreColumns = source.traits.namesAreColumns
        try source.read(sourceScope, pageSize: pageSize) { page in
            presence.note(page, namesAreColumns: namesAreColumns)
            total += page.count
            let columns = page.first.map { sourceColumns(for: $0) }
            pages.append(ParallelParts.map(page) { prepare($0, columns) })
        }
        try presence.check(job: name, source: "source connection \(spec.source.connection)", read: total)
        return pages
    }
}
