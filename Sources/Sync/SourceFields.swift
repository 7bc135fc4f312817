import Directory
import Manifests

/// A field the job reads from its source, and the manifest field that names it (for errors).
struct FieldUse: Sendable {
    let name: AttributeName
    /// `spec.mappings[3].source`, `spec.mappings[2].value`, `spec.source.filter`.
    let field: String
}

/// Whether each field the job reads exists in its source, learnt while the source is read.
///
/// A source declares its fields (a CSV file's header, an LDAP server's schema), or only its
/// entries tell (LDIF): then a field exists when some entry has a value for it. A field that
/// does not exist is a mistake in the job (`source: departmnet`), never an empty value, so the
/// job fails before anything is written.
struct FieldPresence {
    let uses: [FieldUse]
    private var seen: [Bool]
    private var remaining: Int
    /// Every name met while some field was still missing, for the error's list.
    private var names: [AttributeName] = []
    private var sample: Entry?
    /// The source declared its fields: that list is the whole truth, and nothing read adds to it.
    private let declaredAll: Bool

    init(_ uses: [FieldUse], declared: [AttributeName]?) {
        self.uses = uses
        seen = Array(repeating: false, count: uses.count)
        remaining = uses.count
        declaredAll = declared != nil
        if let declared {
            for (index, use) in uses.enumerated() where declared.contains(use.name) { seen[index] = true; remaining -= 1 }
            names = declared
        }
    }

    /// Takes note of one page of source entries: cheap once every field has been found, and
    /// for entries that share one name list (a CSV file's rows), once per list.
    mutating func note(_ page: [Entry], namesAreColumns: Bool) {
        guard remaining > 0, !declaredAll else { return }
        for entry in page {
            if namesAreColumns, let sample, entry.sharesNames(with: sample) { continue }
            sample = entry
            for position in 0..<entry.nameCount {
                let name = entry.name(at: position)
                guard namesAreColumns || entry.firstValue(at: position) != nil else { continue }
                if !names.contains(name) { names.append(name) }
            }
            for (index, use) in uses.enumerated() where !seen[index] {
                guard let position = entry.index(of: use.name),
                      namesAreColumns || entry.firstValue(at: position) != nil else { continue }
                seen[index] = true
                remaining -= 1
            }
            if remaining == 0 { return }
        }
    }

    /// Throws when a field the job reads is missing: names the manifest field, the source, the
    /// fields it has, and the nearest of them.
    func check(job: String, source: String, read: Int) throws(TransformError) {
        guard remaining > 0, declaredAll || read > 0 else { return }
        guard let index = seen.firstIndex(of: false) else { return }
        let use = uses[index]
        let known = names.map(\.name)
        let missing = Set(uses.indices.filter { !seen[$0] }.map { uses[$0].name.name })
        let has = known.isEmpty ? "no fields at all"
            : "the fields \(known.prefix(30).joined(separator: ", "))\(known.count > 30 ? ", …" : "")"
        let more = missing.count > 1 ? " (also missing: \(missing.subtracting([use.name.name]).sorted().joined(separator: ", ")))" : ""
        throw TransformError("job \(job): \(use.field) names '\(use.name.name)', which \(source) does not have"
            + Suggestion.phrase(for: use.name.name, among: known) + "\(more); it has \(has). "
            + "Nothing was written: fix the job's field names")
    }
}
