import Foundation
import Manifests

/// How a plan is shown.
public enum PlanFormat: String, Sendable, CaseIterable { case text, markdown, json }

extension Plan {
    /// Renders the plan. `colour` adds ANSI colours to text (the CLI asks for it on a terminal only).
    public func rendered(as format: PlanFormat, colour: Bool = false) -> String {
        switch format {
        case .text: return text(colour: colour)
        case .markdown: return markdown()
        case .json: return json()
        }
    }

    var summaryLine: String {
        "\(count(.create)) to create, \(count(.update)) to update, \(count(.delete)) to delete"
            + (dataFiles.isEmpty ? "" : "; \(dataFiles.count) data file\(dataFiles.count == 1 ? "" : "s") changed")
    }

    public static func short(_ revision: String?) -> String {
        guard let revision else { return "nothing" }
        return revision.count == 40 ? String(revision.prefix(7)) : revision
    }

    /// The fields a rendering lists for `change`: an update's changes, a create's fields.
    func shownFields(_ change: Change) -> [FieldChange] {
        switch change.action {
        case .update: change.fields
        case .create: listsNewFields ? change.newFields : []
        case .delete: []
        }
    }

    static func value(_ value: JSONValue?) -> String {
        value.map(\.description) ?? "(absent)"
    }

    /// "    next: 2026-11-26 02:30 +01:00 (2026-11-26T01:30:00Z), …", or "never" for a schedule that will not fire.
    static func fireLines(_ change: Change) -> [String] {
        guard change.key.kind == .schedule, change.action != .delete else { return [] }
        guard !change.nextFires.isEmpty else { return ["    next: never"] }
        return ["    next: " + change.nextFires.map { "\($0.local) (\($0.utc))" }.joined(separator: ", ")]
    }

    public func text(colour: Bool) -> String {
        func paint(_ text: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
        var lines = ["Plan: revision \(Self.short(revision)) against \(baseline == .applied ? "applied" : "base") \(Self.short(appliedRevision))", ""]
        if isEmpty {
            lines.append(baseline == .applied ? "No changes. The applied state matches this revision."
                                              : "No changes. The base and this revision define the same objects.")
            if !policyLines(paint).isEmpty { lines += [""] + policyLines(paint) }
            return lines.joined(separator: "\n") + "\n"
        }
        for change in changes {
            switch change.action {
            case .create:
                lines.append(paint("+ \(change.key)", "32") + "  (\(change.file))")
                lines += Self.fireLines(change)
                for field in shownFields(change) where field.path != "metadata.name" {
                    lines.append("    + \(field.path): \(Self.value(field.new))")
                }
            case .delete:
                lines.append(paint("- \(change.key)", "31") + "  (was \(change.file))")
            case .update:
                lines.append(paint("~ \(change.key)", "33") + "  (\(change.file))")
                for field in change.fields {
                    lines.append("    ~ \(field.path): \(Self.value(field.old)) → \(Self.value(field.new))")
                }
                lines += Self.fireLines(change)
            }
        }
        if !dataFiles.isEmpty {
            if !changes.isEmpty { lines.append("") }
            lines.append("Data files:")
            lines += dataFiles.map { paint("~ \($0.summary)", "33") }
        }
        let policy = policyLines(paint)
        if !policy.isEmpty { lines += [""] + policy }
        lines += ["", "Plan: \(summaryLine)."]
        return lines.joined(separator: "\n") + "\n"
    }

    /// "Policies: 3 rules checked over 12 objects: 2 held, 1 warned." and each warning; nothing
    /// when no rule matched an object.
    func policyLines(_ paint: (String, String) -> String) -> [String] {
        guard let policies, policies.rules.contains(where: { $0.checked > 0 }) else { return [] }
        let rules = policies.rules.filter { $0.checked > 0 }
        let objects = Set(policies.findings.map { "\($0.kind):\($0.name)" }).count
        let warned = rules.filter { $0.violations > 0 && $0.enforcement == .warn }.count
        let denied = rules.filter { $0.violations > 0 && $0.enforcement == .deny }.count
        var summary = "Policies: \(rules.count) rule\(rules.count == 1 ? "" : "s") checked: \(rules.count - warned - denied) held"
        if warned > 0 { summary += ", \(warned) warned about \(objects) object\(objects == 1 ? "" : "s")" }
        if denied > 0 { summary += ", \(denied) refused" }
        return [summary + "."] + policies.findings.map { finding in
            paint("  \(finding.enforcement == .warn ? "⚠" : "✗") \(finding.problem.description)", finding.enforcement == .warn ? "33" : "31")
        }
    }

    /// The policies as a Markdown section: a ✅/⚠️/❌ row per rule, then each finding.
    func policyMarkdown(_ cell: (String) -> String) -> String {
        guard let policies, policies.rules.contains(where: { $0.checked > 0 }) else { return "" }
        var out = "\n**Policies**\n\n| | Policy | Rule | Enforcement | Objects checked | Violations |\n|---|---|---|---|---|---|\n"
        for rule in policies.rules where rule.checked > 0 {
            let mark = rule.violations == 0 ? "✅" : rule.enforcement == .warn ? "⚠️" : "❌"
            out += "| \(mark) | `\(cell(rule.policy))` | `\(cell(rule.rule))` | \(rule.enforcement.rawValue) | \(rule.checked) | \(rule.violations) |\n"
        }
        if !policies.findings.isEmpty { out += "\n" }
        for finding in policies.findings {
            out += "- \(finding.enforcement == .warn ? "⚠️" : "❌") `\(cell(finding.location.description))` "
                + "\(finding.kind.rawValue) `\(cell(finding.name))`, `\(cell(finding.field))`: \(cell(finding.sentence))\n"
        }
        return out
    }

    /// The plan as Markdown. With `limit`, only the first `limit` changes are listed, followed by
    /// a line that says how many were left out (the counts stay exact).
    public func markdown(limit: Int? = nil) -> String {
        func cell(_ text: String) -> String {
            text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        var out = "### Syncwright plan for `\(Self.short(revision))`\n\n"
        if isEmpty {
            return out + (baseline == .applied
                ? "No changes: the applied state (`\(Self.short(appliedRevision))`) matches this revision.\n"
                : "No changes: the base (`\(Self.short(appliedRevision))`) and this revision define the same objects.\n")
                + policyMarkdown(cell)
        }
        out += "**\(summaryLine)** (\(baseline == .applied ? "applied now" : "base"): `\(Self.short(appliedRevision))`)\n\n"
        if !dataFiles.isEmpty {
            out += "**Data files**\n\n" + dataFiles.map { "- `\(cell($0.path))`: \($0.summary.dropFirst($0.path.count + 2))\n" }.joined() + "\n"
        }
        let shown = changes.prefix(limit ?? changes.count)
        if !shown.isEmpty { out += "| Action | Kind | Name | File | Fields |\n|---|---|---|---|---|\n" }
        for change in shown {
            let fields = change.action == .update ? change.fields.map { "`\(cell($0.path))`" }.joined(separator: ", ") : ""
            out += "| \(change.action.rawValue) | \(change.key.kind.rawValue) | `\(change.key.name)` | "
                + "`\(cell(change.file))` | \(fields) |\n"
        }
        let schedules = shown.filter { $0.key.kind == .schedule && $0.action != .delete }
        if !schedules.isEmpty {
            out += "\n**Next fire times**\n\n| Schedule | Next fire times (schedule's zone, UTC) |\n|---|---|\n"
            for change in schedules {
                let times = change.nextFires.isEmpty ? "never"
                    : change.nextFires.map { "\($0.local) (`\($0.utc)`)" }.joined(separator: "<br>")
                out += "| `\(change.key.name)` | \(times) |\n"
            }
        }
        if shown.count < changes.count {
            out += "\n… and \(changes.count - shown.count) more changes, not listed here "
                + "(`syncwright diff \(Self.short(appliedRevision)) \(Self.short(revision))` lists them all).\n"
        }
        let updates = shown.map { ($0, shownFields($0)) }.filter { $0.0.action == .update || !$0.1.isEmpty }
        if !updates.isEmpty {
            out += "\n<details><summary>Field changes</summary>\n\n"
            for (change, fields) in updates {
                out += "#### \(change.key.kind.rawValue) `\(change.key.name)`\(change.action == .create ? " (new)" : "")\n\n"
                    + "| Field | Old | New |\n|---|---|---|\n"
                for field in fields where !(change.action == .create && field.path == "metadata.name") {
                    out += "| `\(cell(field.path))` | `\(cell(Self.value(field.old)))` | `\(cell(Self.value(field.new)))` |\n"
                }
                out += "\n"
            }
            out += "</details>\n"
        }
        return out + policyMarkdown(cell)
    }

    struct JSONPlan: Encodable {
        struct Field: Encodable {
            let path: String
            let old: JSONValue
            let new: JSONValue
        }
        struct Item: Encodable {
            let kind: String
            let name: String
            let action: String
            let file: String
            let fields: [Field]
            /// Only for created or changed schedules.
            let nextFires: [UpcomingFire]?
        }
        struct Summary: Encodable {
            let create: Int
            let update: Int
            let delete: Int
        }
        let revision: String
        let appliedRevision: String?
        let changes: [Item]
        let dataFiles: [DataFileChange]
        let summary: Summary
        let policies: PolicyReview
        let preview: (any Encodable)?

        func encode(to encoder: Encoder) throws {
            enum Keys: String, CodingKey { case revision, appliedRevision, changes, dataFiles, summary, policies, preview }
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(revision, forKey: .revision)
            try c.encode(appliedRevision, forKey: .appliedRevision) // null, not absent, when none
            try c.encode(changes, forKey: .changes)
            try c.encode(dataFiles, forKey: .dataFiles)
            try c.encode(summary, forKey: .summary)
            try c.encode(policies, forKey: .policies)
            if let preview { try c.encode(preview, forKey: .preview) }
        }
    }

    /// The plan as JSON (docs/plan-json.md); with `preview`, that too, under `preview`.
    public func json(preview: (any Encodable)? = nil) -> String {
        let document = JSONPlan(
            revision: revision, appliedRevision: appliedRevision,
            changes: changes.map { change in
                JSONPlan.Item(kind: change.key.kind.rawValue, name: change.key.name, action: change.action.rawValue,
                              file: change.file,
                              fields: shownFields(change).map { .init(path: $0.path, old: $0.old ?? .null, new: $0.new ?? .null) },
                              nextFires: change.key.kind == .schedule && change.action != .delete ? change.nextFires : nil)
            },
            dataFiles: dataFiles,
            summary: .init(create: count(.create), update: count(.update), delete: count(.delete)),
            policies: PolicyReview(rules: (policies?.rules ?? []).filter { $0.checked > 0 }, findings: policies?.findings ?? []),
            preview: preview)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return ((try? encoder.encode(document)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}") + "\n"
    }
}
