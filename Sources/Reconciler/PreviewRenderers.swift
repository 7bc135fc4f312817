import Foundation
import Planner

extension RevisionPreview {
    /// `3 jobs: +12 ~40 −3 objects; 1 guard would trip`.
    public var summaryLine: String {
        let t = totals
        var out = "\(t.jobs) job\(t.jobs == 1 ? "" : "s"): +\(t.create) ~\(t.update) −\(t.delete) objects"
        let guards = jobs.filter { $0.preview.guardTripped == true }.count
        let failing = failing.count - guards
        let notRun = jobs.filter { $0.notRun == true }.count
        if guards > 0 { out += "; \(guards) guard\(guards == 1 ? "" : "s") would trip" }
        if failing > 0 { out += "; \(failing) job\(failing == 1 ? "" : "s") would fail" }
        if notRun > 0 { out += "; \(notRun) job\(notRun == 1 ? "" : "s") would not run" }
        return out
    }

    /// Notes under a job: what would fail or not run, references left out, a workflow.
    private static func notes(_ job: Job) -> [String] {
        let p = job.preview
        var out: [String] = []
        if let error = p.error {
            if job.notRun == true {
                out.append("would not run: " + (error.hasPrefix("not run: ") ? String(error.dropFirst("not run: ".count)) : error))
            } else {
                out.append(p.guardTripped == true ? "guard would trip: \(error)" : "would fail: \(error)")
            }
        }
        if let unresolved = p.unresolved {
            out.append("\(unresolved) reference value\(unresolved == 1 ? "" : "s") would name no object and be left out")
        }
        if let approvers = p.needsApprovalFrom {
            out.append("under a workflow: a run would raise a request for \(approvers.joined(separator: ", ")) instead of running it")
        }
        return out
    }

    /// The preview as text, after the plan.
    public func text() -> String {
        var out = "\nPreview (read-only: nothing is written) of what revision \(Plan.short(revision)) would do to the directories now:\n"
        if jobs.isEmpty {
            return out + "\nNo job is new or changed by this revision (--all previews every job).\n"
        }
        for job in jobs {
            let p = job.preview
            let title = "\n\(p.job)\(job.collection.map { " (\($0))" } ?? "") [\(job.because)]: "
            if job.notRun == true {
                out += title + (Self.notes(job).first ?? "would not run") + "\n"
                continue
            }
            out += title + p.counts + "\n"
            for note in Self.notes(job) { out += "  \(note)\n" }
            for line in p.lines { out += "  \(line)\n" }
            if p.moreChanges > 0 { out += "  … and \(p.moreChanges) more change\(p.moreChanges == 1 ? "" : "s")\n" }
        }
        out += "\nPreview: \(summaryLine)"
            + (unchangedJobs > 0 ? "; \(unchangedJobs) unchanged job\(unchangedJobs == 1 ? "" : "s") not previewed" : "") + ".\n"
        return out
    }

    /// GitHub's limit on a comment's length.
    public static let commentLimit = 65_536

    /// The plan and the preview as one pull-request comment: the summary line, guards and
    /// failures first, a table per collection, then a `<details>` block per job and the manifest
    /// plan. It stays within `cap` characters (counted as UTF-8 bytes, which is never fewer):
    /// job details, then manifest changes, are left out from the end, with a count of them.
    public func markdown(plan: Plan, cap: Int = commentLimit) -> String {
        func cell(_ text: String) -> String {
            text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        var head = "### Syncwright plan for `\(Plan.short(revision))`\n\n"
        head += "**\(summaryLine)** · manifests: \(plan.count(.create)) to create, \(plan.count(.update)) to update, "
            + "\(plan.count(.delete)) to delete\(plan.dataFiles.isEmpty ? "" : ", \(plan.dataFiles.count) data file\(plan.dataFiles.count == 1 ? "" : "s") changed")\n\n"
        head += "_A read-only preview: each new or changed job was planned against its live destination; nothing was written._\n\n"
        let failing = failing
        if !failing.isEmpty {
            head += "#### ⛔ Before anything else\n\n"
            for job in failing {
                let p = job.preview
                head += "- `\(cell(p.job))`: \(p.guardTripped == true ? "a guard would trip" : "would fail"): \(cell(p.error ?? ""))\n"
            }
            head += "\n"
        }
        var tables = ""
        for (index, job) in jobs.enumerated() {
            if index == 0 || jobs[index - 1].collection != job.collection {
                tables += "#### " + (job.collection.map { "Collection `\($0)`" } ?? "Jobs in no collection") + "\n\n"
                    + "| | Job | Why | Create | Update | Rename | Delete | Unchanged | Failed |\n|---|---|---|--:|--:|--:|--:|--:|--:|\n"
            }
            let p = job.preview
            let mark = job.notRun == true ? "⏭️" : p.error != nil ? "❌" : p.create + p.update + p.rename + p.delete > 0 ? "✏️" : "✅"
            tables += "| \(mark) | `\(cell(p.job))` | \(cell(job.because)) | \(p.create) | \(p.update) | \(p.rename) | "
                + "\(p.delete) | \(p.unchanged) | \(p.failed) |\n"
            if index == jobs.count - 1 || jobs[index + 1].collection != job.collection { tables += "\n" }
        }
        if jobs.isEmpty { tables = "No job is new or changed by this revision.\n\n" }
        if unchangedJobs > 0 { tables += "\(unchangedJobs) unchanged job\(unchangedJobs == 1 ? "" : "s") not previewed.\n\n" }

        var details: [String] = []
        for job in jobs where !job.preview.lines.isEmpty || !Self.notes(job).isEmpty {
            let p = job.preview
            let body = Self.notes(job).map { "- \($0)\n" }.joined()
            var block = "<details><summary><code>\(Self.html(p.job))</code>: +\(p.create) ~\(p.update + p.rename) −\(p.delete)</summary>\n\n" + body
            if !p.lines.isEmpty {
                var fence = "```"
                while p.lines.contains(where: { $0.contains(fence) }) { fence += "`" }
                block += (body.isEmpty ? "" : "\n") + "\(fence)diff\n" + p.lines.joined(separator: "\n") + "\n"
                if p.moreChanges > 0 { block += "… and \(p.moreChanges) more change\(p.moreChanges == 1 ? "" : "s")\n" }
                block += "\(fence)\n"
            }
            details.append(block + "\n</details>\n\n")
        }

        func size(_ text: String) -> Int { text.utf8.count }
        func manifests(_ limit: Int?) -> String {
            "#### Manifests\n\n" + plan.markdown(limit: limit).split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
                .dropFirst().joined().drop { $0 == "\n" }
        }
        let noteReserve = 400
        // The head and tables always stay (cut by lines if they alone are too long).
        var out = head + tables
        if size(out) + noteReserve > cap { out = Self.cut(out, to: cap - noteReserve) }
        // Manifest changes, as many as fit in half of what is left.
        var limit: Int? = nil
        var manifestPart = manifests(nil)
        while size(manifestPart) > (cap - size(out) - noteReserve) / 2, (limit ?? plan.changes.count) > 0 {
            limit = (limit ?? plan.changes.count) / 2
            manifestPart = manifests(limit)
        }
        var budget = cap - size(out) - size(manifestPart) - noteReserve
        var shown = 0
        for block in details {
            guard size(block) <= budget else { break }
            out += block
            budget -= size(block)
            shown += 1
        }
        if shown < details.count {
            out += "_\(details.count - shown) job detail\(details.count - shown == 1 ? "" : "s") left out to stay within a comment's "
                + "\(Self.commentLimit.formatted(.number.locale(Locale(identifier: "en_US")))) characters; "
                + "`syncwright plan --preview` shows them all._\n\n"
        }
        out += manifestPart
        return size(out) <= cap ? out : Self.cut(out, to: cap)
    }

    /// `text` cut at a line so that it and a closing note fit in `limit` UTF-8 bytes.
    static func cut(_ text: String, to limit: Int) -> String {
        let note = "\n_… cut here to stay within a comment's length; `syncwright plan --preview` shows everything._\n"
        var kept = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if kept.utf8.count + line.utf8.count + 1 + note.utf8.count > limit { break }
            kept += line + "\n"
        }
        return kept + note
    }

    static func html(_ text: String) -> String {
        var out = text.replacingOccurrences(of: "&", with: "&amp;")
        out = out.replacingOccurrences(of: "<", with: "&lt;")
        return out.replacingOccurrences(of: ">", with: "&gt;")
    }
}
