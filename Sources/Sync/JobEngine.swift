import Directory
import Foundation
import Manifests

/// Runs one job: read, filter, map, match by key, compute the ChangeSet, and apply it.
public struct JobEngine: Sendable {
    public let name: String
    public let spec: JobSpec
    /// Whether a new destination entry needs a DN (directories do; CSV files do not).
    public let destinationNeedsDN: Bool
    /// Attributes whose values never appear in logs or previews.
    public let secretAttributes: Set<AttributeName>
    public var pageSize = 4096

    private let filter: CompiledFilter?
    /// Every source field the job reads, with the manifest field naming it.
    let fieldUses: [FieldUse]
    private let mappings: [CompiledMapping]
    private let keyMappings: [CompiledMapping]
    /// `objectClass`, then every mapped destination attribute: the name list of desired entries.
    private let destinationNames: [AttributeName]
    static let objectClass = AttributeName("objectClass")
    private let objectClassBytes: [ArraySlice<UInt8>]
    /// Position of the rdn attribute in `destinationNames`.
    private let rdnIndex: Int?
    /// The rdn attribute and the container as bytes, for checking DNs without strings.
    private let rdnBytes: [UInt8]
    private let containerBytes: [UInt8]

    struct CompiledMapping: Sendable {
        /// `copy`'s separator: the mapping's delimiter as bytes.
        enum Way: Sendable { case copy(AttributeName, separator: [UInt8]?), template(ValueTemplate), generatePassword }
        let destination: AttributeName
        /// Position of `destination` in `destinationNames`.
        let index: Int
        let way: Way
        let key: Bool
        /// Written on create only (keys and generated values always are).
        let newOnly: Bool
        /// A template that makes DNs: its values compare as DNs (a server may spell them otherwise).
        var dnShaped = false
    }

    /// Compiles the job. Filters and templates were checked at validate time; a failure here is
    /// reported as the job's error.
    public init(name: String, spec: JobSpec, destinationNeedsDN: Bool,
                secretAttributes: Set<AttributeName> = ["userPassword", "unicodePwd"]) throws {
        self.name = name
        self.spec = spec
        self.destinationNeedsDN = destinationNeedsDN
        var secrets = secretAttributes
        var names: [AttributeName] = [Self.objectClass]
        for mapping in spec.mappings where !names.contains(AttributeName(mapping.destination)) {
            names.append(AttributeName(mapping.destination))
        }
        destinationNames = names
        rdnIndex = spec.destination.rdn.flatMap { names.firstIndex(of: AttributeName($0)) }
        rdnBytes = Array((spec.destination.rdn ?? "").utf8)
        containerBytes = Array((spec.destination.container ?? "").utf8)
        objectClassBytes = spec.destination.objectClass.map { Array($0.utf8)[...] }
        do {
            filter = try spec.source.filter.map { CompiledFilter(try FilterExpression.parse($0)) }
            mappings = try spec.mappings.map { m in
                let way: CompiledMapping.Way
                if let source = m.source {
                    way = .copy(AttributeName(source), separator: m.delimiter.map { Array($0.utf8) }.flatMap { $0.isEmpty ? nil : $0 })
                } else if let value = m.value {
                    way = .template(try ValueTemplate.parse(value))
                } else {
                    way = .generatePassword
                    secrets.insert(AttributeName(m.destination))
                }
                let generated = m.generate != nil
                let destination = AttributeName(m.destination)
                var dnShaped = false
                if case .template(let template) = way { dnShaped = template.isDNShaped }
                return CompiledMapping(destination: destination, index: names.firstIndex(of: destination) ?? 0,
                                       way: way, key: m.key, newOnly: m.key || m.newOnly || generated, dnShaped: dnShaped)
            }
        } catch {
            throw TransformError("job \(name): \(error)")
        }
        self.secretAttributes = secrets
        keyMappings = mappings.filter(\.key)
        var uses: [FieldUse] = []
        for (index, mapping) in spec.mappings.enumerated() {
            if let source = mapping.source { uses.append(FieldUse(name: AttributeName(source), field: "spec.mappings[\(index)].source")) }
            if let value = mapping.value, let template = try? ValueTemplate.parse(value) {
                for name in template.fieldNames where !uses.contains(where: { $0.name == name }) {
                    uses.append(FieldUse(name: name, field: "spec.mappings[\(index)].value"))
                }
            }
        }
        if let text = spec.source.filter, let expression = try? FilterExpression.parse(text) {
            for field in expression.fields where !uses.contains(where: { $0.name == AttributeName(field) }) {
                uses.append(FieldUse(name: AttributeName(field), field: "spec.source.filter"))
            }
        }
        fieldUses = uses
    }

    // MARK: Planning

    /// Reads both sides and computes what the job would change. Writes nothing.
    ///
    /// A file destination is read as stored (an LDIF file's records unparsed) and indexed by key,
    /// while the source is already being read, filtered, mapped and keyed, a bounded way ahead;
    /// then source rows are matched and diffed on all cores, page by page, and settled in source
    /// order (the source is never held whole). A server destination is read while the source is read and
    /// mapped on a second thread; each page the server sends is then diffed as it comes, so the
    /// work hides behind the server's answers (`planAgainstServer`). Both give the same result.
    ///
    /// A source row whose key is known claims the destination objects with that key, even when
    /// the row fails: they are never deleted for want of a match.
    public func plan(source: Directory, destination: Directory,
                     progress: ((JobProgress) -> Void)? = nil) throws -> ChangeSet {
        if destination.readsFromServer && source !== destination {
            return try planAgainstServer(source: source, destination: destination, progress: progress)
        }
        var set = ChangeSet()
        var stopwatch = Stopwatch()
        // The source goes through a pipeline of threads, each a few pages ahead of the next: one
        // reads (parses) it; one filters, maps and keys each page's rows on all cores; one
        // matches and diffs them against the destination, on all cores; and this one settles
        // them in order. The first two need no destination, so they start now and work while
        // the destination is read (unless the job reads and writes one directory), up to about
        // 96 MB of mapped rows ahead.
        let declared = try source.declaredAttributes()
        let namesAreColumns = source.namesAreColumns
        func startSource() -> (ReadAhead<[Entry]>, ReadAhead<[PreparedRow]>) {
            let read = ReadAhead<[Entry]>(depth: 4) { [self] body in try source.read(sourceScope, pageSize: pageSize, body) }
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
                        out.append(PlannedRow(dn: row.dn, outcome: result, notes: row.notes))
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
                if set.read % 10_000 == 0 { progress?(JobProgress(job: name, phase: .reading, done: set.read, total: source.countHint)) }
            }
        }
        set.timings.sourceMs = stopwatch.lap()
        if spec.delete {
            for (index, entry) in current.enumerated() where !matched[index] {
                if !claimed.isEmpty, claimed.contains(currentKeys[index]) { continue }
                set.changes.append(deletion(of: entry.dn))
            }
        }
        set.guardViolation = guardViolation(set)
        return set
    }

    /// `plan` for a destination on a server: the source is read, mapped and indexed by key on a
    /// second thread while the first pages arrive; from then on each page of the destination is
    /// matched and diffed on all cores as it comes. Destination entries are not kept, only the
    /// DNs of those no source row matched.
    private func planAgainstServer(source: Directory, destination: Directory,
                                   progress: ((JobProgress) -> Void)?) throws -> ChangeSet {
        var set = ChangeSet()
        var stopwatch = Stopwatch()
        let early = Background { [self] in SourceIndex(try readPrepared(source)) }
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
        set.guardViolation = guardViolation(set)
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

    private func tally(_ change: consuming ObjectChange?, matched: Bool, into set: inout ChangeSet) {
        if let change {
            set.changes.append(change)
        } else if matched {
            set.unchanged += 1
        } else {
            set.skipped += 1
        }
    }

    private func deletion(of dn: String) -> ObjectChange {
        ObjectChange(action: .delete, dn: dn, newDN: nil, attributes: [], operations: [.delete(dn: dn)])
    }

    private func duplicateReason(_ key: String) -> String {
        "its key \(describe(key)) appears more than once in the source"
    }

    private func ambiguousReason(_ key: String) -> String {
        "its key \(describe(key)) matches more than one destination object"
    }

    /// Every page of the source, filtered, mapped and keyed (the work that needs no destination).
    private func readPrepared(_ source: Directory) throws -> [[PreparedRow]] {
        var pages: [[PreparedRow]] = []
        var presence = FieldPresence(fieldUses, declared: try source.declaredAttributes())
        var total = 0
        let namesAreColumns = source.namesAreColumns
        try source.read(sourceScope, pageSize: pageSize) { page in
            presence.note(page, namesAreColumns: namesAreColumns)
            total += page.count
            let columns = page.first.map { sourceColumns(for: $0) }
            pages.append(ParallelParts.map(page) { prepare($0, columns) })
        }
        try presence.check(job: name, source: "source connection \(spec.source.connection)", read: total)
        return pages
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
        do throws(TransformError) {
            var notes: [String] = []
            let desired = try desired(for: entry, columns: columns, notes: &notes)
            return PreparedRow(dn: entry.dn, prepared: .keyed(key: try sourceKey(desired), desired: desired), notes: notes)
        } catch {
            return PreparedRow(dn: entry.dn, prepared: .failed(error.message))
        }
    }

    /// A source row's name, and what it comes to.
    struct PlannedRow: Sendable {
        let dn: String
        var outcome: RowOutcome
        var notes: [String] = []
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

    /// Wall-clock laps, in milliseconds.
    struct Stopwatch {
        private var last = DispatchTime.now().uptimeNanoseconds
        mutating func lap() -> Double {
            let now = DispatchTime.now().uptimeNanoseconds
            defer { last = now }
            return Double(now - last) / 1e6
        }
    }

    private func guardViolation(_ set: ChangeSet) -> String? {
        if set.read == 0 && !spec.allowEmptySource {
            return "the source returned no entries, so nothing was changed (set allowEmptySource: true if that is expected)"
        }
        let deletes = set.count(.delete)
        guard deletes > 0 else { return nil }
        if let count = spec.deleteThreshold.count, deletes > count {
            return "would delete \(deletes), threshold \(count); nothing was changed (raise deleteThreshold if that is expected)"
        }
        if let percent = spec.deleteThreshold.percent, set.managed > 0, deletes * 100 > percent * set.managed {
            return "would delete \(deletes) of \(set.managed) (\(deletes * 100 / set.managed)%), threshold \(percent)%; "
                + "nothing was changed (raise deleteThreshold if that is expected)"
        }
        return nil
    }

    private func describe(_ key: String) -> String {
        "'" + key.replacingOccurrences(of: "\u{1F}", with: "', '") + "'"
    }

    /// The mapped values for a source entry, as an entry over `destinationNames` (no DN yet).
    /// Generated values are left out here; they are made on create.
    /// Where each mapping finds its fields in a source entry's name list, worked out once for
    /// all the entries that share the list (a CSV file's rows share its header).
    struct SourceColumns: Sendable {
        /// An entry with the name list these positions are for.
        let sample: Entry
        /// Per mapping: the copied field's position.
        let copy: [Int?]
        /// Per mapping: each template field's position.
        let template: [[Int?]]
    }

    func sourceColumns(for entry: Entry) -> SourceColumns {
        var copy: [Int?] = [], template: [[Int?]] = []
        for mapping in mappings {
            switch mapping.way {
            case .copy(let field, _):
                copy.append(entry.index(of: field)); template.append([])
            case .template(let value):
                copy.append(nil); template.append(value.fieldNames.map { entry.index(of: $0) })
            case .generatePassword:
                copy.append(nil); template.append([])
            }
        }
        return SourceColumns(sample: entry, copy: copy, template: template)
    }

    /// The mapped entry, adding to `notes` why a value was left out.
    func desired(for entry: Entry, columns given: SourceColumns?, notes: inout [String]) throws(TransformError) -> Entry {
        let columns = given.flatMap { entry.sharesNames(with: $0.sample) ? $0 : nil }
        var out = Entry(dn: "", names: destinationNames, reservingBytes: entry.byteCount + 64,
                        values: entry.valueCount + objectClassBytes.count + 4)
        // Which source fields have several values, found once per row when a template asks.
        var multiValued: (mask: UInt64, beyond64: Bool)?
        // objectClass first, as directories print it; updates compare mapped attributes only.
        for objectClass in objectClassBytes { out.append(at: 0, bytes: objectClass) }
        for (position, mapping) in mappings.enumerated() {
            switch mapping.way {
            case .copy(let field, let separator):
                guard let column = columns.map({ $0.copy[position] }) ?? entry.index(of: field) else { continue }
                if let separator {
                    entry.forEachRawValue(at: column) { value in
                        Self.split(value, by: separator) { out.append(at: mapping.index, bytes: $0) }
                    }
                } else {
                    entry.forEachRawValue(at: column) { out.append(at: mapping.index, bytes: $0) }
                }
            case .template(let template):
                // Rendered straight into the entry's buffer; an empty result adds no value. A
                // field with several values renders once per value; two such fields are an error.
                let fields = columns?.template[position] ?? template.fieldNames.map { entry.index(of: $0) }
                if multiValued == nil { multiValued = entry.namesWithSeveralValues() }
                let multi = multiValued ?? (0, false)
                var several: Int?
                for case let column? in fields where column != several
                    && (column < 64 ? multi.mask & (1 << UInt64(column)) != 0 : multi.beyond64 && entry.hasSeveralValues(at: column)) {
                    if let several {
                        throw TransformError("the template of \(mapping.destination) reads \(entry.name(at: several)) and "
                            + "\(entry.name(at: column)), which both have several values; a template may take several values from one field only")
                    }
                    several = column
                }
                func render(_ pinned: (column: Int, value: ArraySlice<UInt8>)?) throws(TransformError) {
                    var emptyField: String?
                    let before = out.valueCount
                    try out.appendValue(at: mapping.index) { (bytes: inout [UInt8]) throws(TransformError) in
                        let start = bytes.count
                        try template.render(entry, appendingTo: &bytes, columns: fields, pinned: pinned,
                                            dnShaped: mapping.dnShaped, emptyInRDN: &emptyField)
                        // A DN with an empty RDN value is never written: the value is left out.
                        if emptyField != nil { bytes.removeSubrange(start...) }
                    }
                    if let emptyField, out.valueCount == before {
                        notes.append("\(mapping.destination) left out: {{\(emptyField)}} is empty, so the DN would be malformed")
                    }
                }
                if let several {
                    var failure: TransformError?
                    entry.forEachValue(at: several) { value in
                        guard failure == nil else { return }
                        do throws(TransformError) { try render((several, value)) } catch { failure = error }
                    }
                    if let failure { throw failure }
                } else {
                    try render(nil)
                }
            case .generatePassword:
                break
            }
        }
        // A directory holds each value of an attribute once: `555;555` is the one value 555.
        return out.withoutRepeatedValues()
    }

    /// Calls `body` with each part of `value` between `separator`s, trimmed of spaces; empty
    /// parts are left out (as `Value.split` does), without allocating.
    static func split(_ value: UnsafeRawBufferPointer, by separator: [UInt8], _ body: (UnsafeRawBufferPointer) -> Void) {
        let count = value.count, width = separator.count
        var partStart = 0, i = 0
        func emit(_ end: Int) {
            var a = partStart, b = end
            while a < b, value[a] == 0x20 { a += 1 }
            while b > a, value[b - 1] == 0x20 { b -= 1 }
            if a < b { body(UnsafeRawBufferPointer(rebasing: value[a..<b])) }
        }
        while i < count {
            if value[i] == separator[0], i + width <= count, separator.withUnsafeBytes({ memcmp(value.baseAddress! + i, $0.baseAddress!, width) == 0 }) {
                emit(i)
                i += width
                partStart = i
            } else {
                i += 1
            }
        }
        emit(count)
    }

    private func sourceKey(_ desired: Entry) throws(TransformError) -> String {
        if keyMappings.count == 1, let first = desired.firstValue(at: keyMappings[0].index) {
            return String(decoding: first, as: UTF8.self)
        }
        var parts: [String] = []
        for mapping in keyMappings {
            guard let first = desired.firstValue(at: mapping.index) else {
                throw TransformError("its key \(mapping.destination) is empty")
            }
            parts.append(String(decoding: first, as: UTF8.self))
        }
        return parts.count == 1 ? parts[0] : parts.joined(separator: "\u{1F}")
    }

    /// `destinationKey` of an object as its directory stores it, read without parsing it.
    func destinationKey(_ stored: StoredEntry) -> String? {
        var parts: [String] = []
        for mapping in keyMappings {
            guard let part = stored.firstValueText(of: mapping.destination, hint: mapping.index) else { return nil }
            if keyMappings.count == 1 { return part }
            parts.append(part)
        }
        return parts.count == 1 ? parts[0] : parts.joined(separator: "\u{1F}")
    }

    func destinationKey(_ entry: Entry) -> String? {
        if keyMappings.count == 1 {
            let mapping = keyMappings[0]
            guard let index = entry.index(of: mapping.destination, hint: mapping.index),
                  let first = entry.firstValue(at: index) else { return nil }
            return String(decoding: first, as: UTF8.self)
        }
        var parts: [String] = []
        for mapping in keyMappings {
            guard let index = entry.index(of: mapping.destination), let first = entry.firstValue(at: index) else { return nil }
            parts.append(String(decoding: first, as: UTF8.self))
        }
        return parts.count == 1 ? parts[0] : parts.joined(separator: "\u{1F}")
    }

    private func computedDN(_ desired: Entry) throws(TransformError) -> String? {
        guard let rdn = spec.destination.rdn, let container = spec.destination.container else { return nil }
        guard let index = rdnIndex, let first = desired.firstValue(at: index), !first.isEmpty,
              let value = String(validating: first, as: UTF8.self) else {
            throw TransformError("its rdn attribute \(rdn) is empty, so it has no DN")
        }
        return DistinguishedName.make(rdnAttribute: rdn, value: value, container: container)
    }

    /// Whether `dn` is spelled exactly as `computedDN(desired)` would make it, checked on bytes
    /// without building the DN (the common case of an update: the object stays where it is).
    private func spelledAsComputed(_ dn: String, _ desired: Entry) -> Bool {
        guard !rdnBytes.isEmpty, let container = spec.destination.container, let index = rdnIndex,
              let value = desired.firstValue(at: index), !value.isEmpty else { return false }
        // Values that need escaping take the slow path.
        guard value.first != 0x23, value.first != 0x20, value.last != 0x20,
              !value.contains(where: {
                  switch $0 {
                  case 0x2C, 0x2B, 0x22, 0x5C, 0x3C, 0x3E, 0x3B, 0x00: true
                  default: false
                  }
              }) else { return false }
        var dn = dn
        return dn.withUTF8 { bytes in
            let expected = rdnBytes.count + 1 + value.count + (container.isEmpty ? 0 : 1 + containerBytes.count)
            guard bytes.count == expected, let base = bytes.baseAddress else { return false }
            var i = rdnBytes.count
            guard rdnBytes.withUnsafeBytes({ memcmp(base, $0.baseAddress!, i) == 0 }), bytes[i] == UInt8(ascii: "=") else {
                return false
            }
            i += 1
            guard value.withUnsafeBytes({ memcmp(base + i, $0.baseAddress!, value.count) == 0 }) else { return false }
            i += value.count
            guard !container.isEmpty else { return true }
            guard bytes[i] == UInt8(ascii: ",") else { return false }
            i += 1
            return containerBytes.withUnsafeBytes { memcmp(base + i, $0.baseAddress!, containerBytes.count) == 0 }
        }
    }

    /// True when an object at `dn` would not be renamed for `desired`: it is where the job puts
    /// it, or the job gives no rdn and container. (False may still mean no rename.)
    private func keepsDN(_ dn: String, _ desired: Entry) -> Bool {
        guard spec.destination.rdn != nil, spec.destination.container != nil else { return true }
        return spelledAsComputed(dn, desired)
    }

    private func create(_ desired: Entry) throws(TransformError) -> ObjectChange {
        let dn = try computedDN(desired) ?? ""
        if destinationNeedsDN && dn.isEmpty {
            throw TransformError("the job gives no container and rdn, so a new destination entry would have no DN")
        }
        var entry = desired
        entry.dn = dn
        for mapping in mappings {
            if case .generatePassword = mapping.way {
                entry.append(at: mapping.index, bytes: Array(PasswordGenerator.make().utf8)[...])
            }
        }
        // The entry itself says what is written; `attributes` lists changes to existing objects only.
        return ObjectChange(action: .create, dn: dn, newDN: nil, attributes: [], payload: .entry(entry))
    }

    private func update(_ current: Entry, desired: Entry) throws(TransformError) -> ObjectChange? {
        var operations: [DirectoryChange] = []
        var dn = current.dn
        var newDN: String?
        // The same spelling is the common case, and needs no DN built or normalised.
        if !spelledAsComputed(current.dn, desired), let computed = try computedDN(desired), computed != current.dn,
           DistinguishedName.normalize(computed) != DistinguishedName.normalize(current.dn) {
            let (newRDN, newParent) = DistinguishedName.split(computed)
            let oldParent = DistinguishedName.split(current.dn).parent
            let moves = DistinguishedName.normalize(newParent) != DistinguishedName.normalize(oldParent)
            operations.append(.rename(dn: current.dn, newRDN: newRDN, newSuperior: moves ? newParent : nil))
            newDN = computed
            dn = computed
        }
        var attributes: [AttributeChange] = []
        var modifications: [Modification] = []
        for mapping in mappings where !mapping.newOnly {
            let currentIndex = current.index(of: mapping.destination, hint: mapping.index)
            if desired.sameValues(at: mapping.index, as: current, at: currentIndex) { continue }
            let new = desired.values(at: mapping.index)
            let old = current.values(of: mapping.destination)
            if mapping.dnShaped {
                // The server may spell a DN otherwise (`cn=x\3Dy` for `cn=x=y`): the same names are no change.
                let names = { (values: [ArraySlice<UInt8>]) in Set(values.map { DistinguishedName.normalize(String(decoding: $0, as: UTF8.self)) }) }
                if names(new) == names(old) { continue }
            }
            let newValues = new.map { Value(Data($0)) }
            attributes.append(AttributeChange(attribute: mapping.destination, old: old.map { Value(Data($0)) }, new: newValues))
            modifications.append(newValues.isEmpty ? Modification(.delete, mapping.destination, [])
                                                   : Modification(.replace, mapping.destination, newValues))
        }
        if !modifications.isEmpty { operations.append(.modify(dn: dn, modifications)) }
        guard !operations.isEmpty else { return nil }
        return ObjectChange(action: newDN == nil ? .update : .rename, dn: current.dn, newDN: newDN,
                            attributes: attributes, operations: operations)
    }
}

