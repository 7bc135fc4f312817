import Concurrency
import Directory
import Foundation
import Manifests

/// Planning against a destination read whole and indexed by key first: a file, or the source
/// directory itself.
extension JobEngine {
    /// The destination as stored is indexed by key while the source already streams through a
    /// pipeline of threads; rows are then matched and diffed on all cores, page by page, and
    /// settled in source order.
    func planAgainstFile(source: Directory, destination: Directory,
                         progress: ((JobProgress) -> Void)?) throws -> ChangeSet {
        var set = ChangeSet()
        var stopwatch = Stopwatch()
        // The source goes through a pipeline of threads, each a few pages ahead of the next: one
        // reads (parses) it; one filters, maps and keys each page's rows on all cores; one
        // matches and diffs them against the destination, on all cores; and this one settles
        // them in order. The first two need no destination, so they start now and work while
        // the destination is read (unless the job reads and writes one directory), up to about
        // 96 MB of mapped rows ahead.
        let declared = try source.declaredAttributes()
        let namesAreColumns = source.traits.namesAreColumns
        // The source is read on the reading thread only: this one does not touch it until the
        // deferred `finish()` has waited for that thread. It learns the source's size through
        // `sourceCount`, which the reading thread updates after each page.
        let handed = HandedOver(source)
        let sourceCount = Locked<Int?>(nil)
        func startSource() -> (ReadAhead<[Entry]>, ReadAhead<[PreparedRow]>) {
            let read = ReadAhead<[Entry]>(depth: 4) { [self] body in
                try handed.value.read(sourceScope, pageSize: pageSize) { page in
                    sourceCount.set(handed.value.countHint)
                    try body(page)
                }
            }
            let prepared = ReadAhead<[PreparedRow]>(depth: 256, budget: 96 << 20, cost: { page in
                page.reduce(0) { $0 + $1.footprint }
            }) { [self] body in
                // A field the source lacks fails the plan once the source is read, so nothing is written.
                var presence = FieldPresence(fieldUses, declared: declared)
                var total = 0
                while let page = try read.next() {
                    presence.note(page, namesAreColumns: namesAreColumns)
                    total += page.count
                    let columns = page.first.map { sourceColumns(for: $0) }
                    try body(ParallelParts.map(page) { prepare($0, columns) })
                }
                try presence.check(job: name, source: "source connection \(spec.source.connection)", read: total)
            }
            return (read, prepared)
        }
        var stages = source !== destination ? startSource() : nil
        defer {
            stages?.1.finish()
            stages?.0.finish()
        }
        // The destination as stored (an LDIF file's records stay unparsed), indexed by key.
        var current: [StoredEntry] = []
        var currentKeys: [String] = []
        var byKey: [String: Int] = [:]
        var ambiguous: Set<String> = []
        try destination.readStored(destinationScope, pageSize: pageSize) { page in
            let keys = ParallelParts.map(page) { destinationKey($0) }
            if current.isEmpty, let hint = destination.countHint {
                current.reserveCapacity(hint)
                byKey.reserveCapacity(hint)
            }
            for (entry, key) in zip(page, keys) {
                guard let key else { continue }
                if byKey.updateValue(current.count, forKey: key) != nil { ambiguous.insert(key) }
                current.append(entry)
                currentKeys.append(key)
            }
        }
        set.managed = current.count
        set.timings.destinationMs = stopwatch.lap()
        var matched = [Bool](repeating: false, count: current.count)
        var claimed: Set<String> = []
        var seenSource: Set<String> = [] // keys of rows without a match

        // Rows are matched and diffed on all cores (the destination index is read-only by now);
        // duplicates and matches are then settled in source order.
        let destinationIndex = DestinationIndex(byKey: byKey, keys: currentKeys, entries: current, ambiguous: ambiguous)
        if stages == nil { stages = startSource() }
        let prepared = stages!.1
        let pages = ReadAhead<[PlannedRow]>(depth: 4) { [self] body in
            while let page = try prepared.next() {
                // In runs: a row's match is first looked for right after the previous row's (a
                // destination this job wrote lists objects in source order), then by hash.
                let parts = min(max(1, page.count / 256), ProcessInfo.processInfo.activeProcessorCount * 4)
                let ranges = (0..<parts).map { ($0 * page.count / parts, ($0 + 1) * page.count / parts) }
                let runs = ParallelParts.map(ranges) { from, to -> [PlannedRow] in
                    var out: [PlannedRow] = []
                    out.reserveCapacity(to - from)
                    var guess: Int?
                    for row in page[from..<to] {
                        let result = outcome(for: row.prepared, in: destinationIndex, guess: guess)
                        if case .planned(_, let match?, _) = result { guess = match + 1 } else { guess = nil }
                        out.append(PlannedRow(dn: row.dn, outcome: result, notes: row.notes, unresolved: row.unresolved))
                    }
                    return out
                }
                try body(Array(runs.joined()))
            }
        }
        defer { pages.finish() }
        while var rows = try pages.next() {
            if set.changes.isEmpty { set.changes.reserveCapacity(max(current.count / 8, rows.count * 16)) }
            for position in rows.indices {
                // Moved out, not copied: a first load's rows each hold a whole entry.
                var row = RowOutcome.filteredOut
                swap(&row, &rows[position].outcome)
                let dn = rows[position].dn
                for note in rows[position].notes { set.notes.append(ObjectFailure(object: dn, reason: note)) }
                set.unresolved += rows[position].unresolved
                switch row {
                case .filteredOut:
                    continue
                case .failed(let reason, let key):
                    set.read += 1
                    set.failures.append(ObjectFailure(object: dn, reason: reason))
                    if let key { claimed.insert(key) }
                case .planned(let key, let match, let change):
                    set.read += 1
                    // A key seen before is a duplicate: a matched key has marked its match.
                    let first = if let match { !matched[match] } else { seenSource.insert(key).inserted }
                    guard first else {
                        set.failures.append(ObjectFailure(object: dn, reason: duplicateReason(key)))
                        continue
                    }
                    if let match { matched[match] = true }
                    tally(change, matched: match != nil, into: &set)
                }
                if set.read % 10_000 == 0 { progress?(JobProgress(job: name, phase: .reading, done: set.read, total: sourceCount.get())) }
            }
        }
        set.timings.sourceMs = stopwatch.lap()
        if spec.delete {
            for (index, entry) in current.enumerated() where !matched[index] {
                if !claimed.isEmpty, claimed.contains(currentKeys[index]) { continue }
                set.changes.append(deletion(of: entry.dn))
            }
        }
        return set
    }
    /// A source row before it meets the destination: filtered out, failed, or its desired entry and key.
    struct PreparedRow: Sendable {
        enum Prepared: Sendable {
            case filteredOut
            case failed(String)
            case keyed(key: String, desired: Entry)
        }
        /// The source row's name, for failures.
        let dn: String
        let prepared: Prepared
        /// Why values of the row were left out (logged, not failed).
        var notes: [String] = []
        /// How many reference values of the row named no object.
        var unresolved = 0

        /// About how many bytes the row holds, for bounding what is read ahead.
        var footprint: Int {
            switch prepared {
            case .filteredOut, .failed: 128
            case .keyed(let key, let desired): 192 + key.utf8.count + desired.byteCount + 12 * desired.valueCount
            }
        }
    }

    func prepare(_ entry: Entry, _ columns: SourceColumns? = nil) -> PreparedRow {
        if let filter, !filter.matches(entry) { return PreparedRow(dn: entry.dn, prepared: .filteredOut) }
        var unresolved = 0
        do throws(TransformError) {
            var notes: [String] = []
            let desired = try desired(for: entry, columns: columns, notes: &notes, unresolved: &unresolved)
            return PreparedRow(dn: entry.dn, prepared: .keyed(key: try sourceKey(desired), desired: desired), notes: notes,
                               unresolved: unresolved)
        } catch {
            return PreparedRow(dn: entry.dn, prepared: .failed(error.message), unresolved: unresolved)
        }
    }

    /// A source row's name, and what it comes to.
    struct PlannedRow: Sendable {
        let dn: String
        var outcome: RowOutcome
        var notes: [String] = []
        var unresolved = 0
    }

    /// What one source row comes to, computed independently of the other rows.
    enum RowOutcome: Sendable {
        case filteredOut
        /// `key`: the row's key when it is known; the destination objects with it are claimed.
        case failed(String, key: String?)
        /// `match`: the destination entry's position, if any; `change`: nil for unchanged or skipped.
        case planned(key: String, match: Int?, change: ObjectChange?)
    }

    /// The destination objects with a key, that key by position, and the position by key.
    struct DestinationIndex: Sendable {
        let byKey: [String: Int]
        let keys: [String]
        let entries: [StoredEntry]
        /// Keys two or more objects hold.
        let ambiguous: Set<String>

        /// The position of the object with `key`, trying `guess` first.
        func position(of key: String, guess: Int?) -> Int? {
            if let guess, guess < keys.count, keys[guess] == key { return guess }
            return byKey[key]
        }
    }

    /// What one source row comes to against the destination. `guess` is where its match may be
    /// (any position, or nil): a right guess saves a hash lookup and gives the same answer,
    /// since a key that is not ambiguous is held by one object.
    func outcome(for prepared: PreparedRow.Prepared, in destination: DestinationIndex, guess: Int?) -> RowOutcome {
        let key: String, desired: Entry
        switch prepared {
        case .filteredOut: return .filteredOut
        case .failed(let reason): return .failed(reason, key: nil)
        case .keyed(let k, let d): (key, desired) = (k, d)
        }
        do throws(TransformError) {
            if !destination.ambiguous.isEmpty, destination.ambiguous.contains(key) { throw TransformError(ambiguousReason(key)) }
            if let match = destination.position(of: key, guess: guess) {
                let stored = destination.entries[match]
                // A record that already reads as this row would be written needs no parsing.
                if keepsDN(stored.dn, desired), stored.holdsValues(of: desired) {
                    return .planned(key: key, match: match, change: nil)
                }
                let current: Entry
                do {
                    current = try stored.entry()
                } catch {
                    throw TransformError("its destination object \(stored.dn) cannot be read: \(error)")
                }
                return .planned(key: key, match: match, change: try update(current, desired: desired))
            }
            return .planned(key: key, match: nil, change: spec.create ? try create(desired) : nil)
        } catch {
            return .failed(error.message, key: key)
        }
    }
}
