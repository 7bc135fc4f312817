import Foundation
import Manifests
@testable import Planner
import Testing

func record(_ kind: Kind, _ name: String, _ spec: String, file: String = "f.yaml") -> ObjectRecord {
    ObjectRecord(key: ObjectKey(kind, name), file: file, spec: spec, raw: spec, hash: Canonical.hash(spec), references: [])
}

@Suite struct PlanTests {
    let job = #"{"metadata":{"name":"a"},"spec":{"create":true,"mappings":[{"destination":"cn","key":true,"source":"x"}]}}"#
    let jobEdited = #"{"metadata":{"description":"new","name":"a"},"spec":{"create":false,"mappings":[{"destination":"cn","key":true,"source":"y"},{"destination":"sn","key":false,"source":"z"}]}}"#

    @Test func createUpdateDeleteAndUnchanged() {
        let desired = DesiredState(objects: [
            ObjectKey(.job, "a"): record(.job, "a", jobEdited),
            ObjectKey(.job, "same"): record(.job, "same", job),
            ObjectKey(.schedule, "new"): record(.schedule, "new", "{}", file: "s.yaml"),
        ], scope: .full)
        let applied = [
            ObjectKey(.job, "a"): record(.job, "a", job),
            ObjectKey(.job, "same"): record(.job, "same", job),
            ObjectKey(.connection, "gone"): record(.connection, "gone", "{}", file: "old.yaml"),
        ]
        let plan = Plan.make(desired: desired, applied: applied, revision: String(repeating: "b", count: 40),
                             appliedRevision: String(repeating: "a", count: 40))
        #expect(plan.changes.map(\.key) == [ObjectKey(.connection, "gone"), ObjectKey(.job, "a"), ObjectKey(.schedule, "new")])
        #expect(plan.changes.map(\.action) == [.delete, .update, .create])
        #expect(plan.changes[0].file == "old.yaml")
        #expect(plan.changes[1].fields == [
            FieldChange(path: "metadata.description", old: nil, new: .string("new")),
            FieldChange(path: "spec.create", old: .bool(true), new: .bool(false)),
            FieldChange(path: "spec.mappings[destination=cn].source", old: .string("x"), new: .string("y")),
            FieldChange(path: "spec.mappings[destination=sn]", old: nil,
                        new: .object(["destination": .string("sn"), "key": .bool(false), "source": .string("z")])),
        ])
        #expect((plan.count(.create), plan.count(.update), plan.count(.delete)) == (1, 1, 1))
    }

    @Test func secretLiteralsAreMaskedInPlans() {
        let before = #"{"metadata":{"name":"a"},"spec":{"mappings":[{"destination":"cn","source":"x"},{"destination":"userPassword","value":"Initial-1"},{"destination":"pin","value":"1234"}],"secretAttributes":["PIN"]}}"#
        let after = #"{"metadata":{"name":"a"},"spec":{"mappings":[{"destination":"cn","source":"y"},{"destination":"userPassword","value":"Initial-2"},{"destination":"pin","value":"5678"},{"destination":"unicodePwd","value":"Added-3"},{"destination":"title","value":"Clerk"}],"secretAttributes":["PIN"]}}"#
        let plan = Plan.make(desired: DesiredState(objects: [ObjectKey(.job, "a"): record(.job, "a", after)], scope: .full),
                             applied: [ObjectKey(.job, "a"): record(.job, "a", before)], revision: "r", appliedRevision: "q")
        #expect(plan.changes[0].fields == [
            FieldChange(path: "spec.mappings[destination=cn].source", old: .string("x"), new: .string("y")),
            FieldChange(path: "spec.mappings[destination=userPassword].value", old: .string("••••••"), new: .string("••••••")),
            FieldChange(path: "spec.mappings[destination=pin].value", old: .string("••••••"), new: .string("••••••")),
            FieldChange(path: "spec.mappings[destination=unicodePwd]", old: nil,
                        new: .object(["destination": .string("unicodePwd"), "value": .string("••••••")])),
            FieldChange(path: "spec.mappings[destination=title]", old: nil, new: .object(["destination": .string("title"), "value": .string("Clerk")])),
        ])
        for rendered in [plan.text(colour: false), plan.rendered(as: .markdown, colour: false), plan.rendered(as: .json, colour: false)] {
            for secret in ["Initial-1", "Initial-2", "1234", "5678", "Added-3"] { #expect(!rendered.contains(secret)) }
        }
    }

    func fields(_ before: String, _ after: String) -> [String] {
        Plan.make(desired: DesiredState(objects: [ObjectKey(.job, "a"): record(.job, "a", after)], scope: .full),
                  applied: [ObjectKey(.job, "a"): record(.job, "a", before)], revision: "r", appliedRevision: "q")
            .changes.first?.fields.map { "\($0.path): \(Plan.value($0.old)) → \(Plan.value($0.new))" } ?? []
    }

    /// Lists are diffed by key: an insert at the front or a removal from the middle is that one
    /// item, never every later one shifted (which once showed a later mapping as `••••••`,
    /// because its position now belonged to userPassword).
    @Test func mappingsAreDiffedByDestination() {
        let m = { (d: String, v: String) in #"{"destination":"\#(d)","value":"\#(v)"}"# }
        let job = { (items: [String]) in #"{"metadata":{"name":"a"},"spec":{"mappings":[\#(items.joined(separator: ","))]}}"# }
        let base = [m("cn", "C"), m("userPassword", "Secret-1"), m("title", "Clerk"), m("mail", "m@x")]
        // Removed from the middle: one removed mapping, secret still masked.
        #expect(fields(job(base), job([base[0], base[2], base[3]]))
            == [#"spec.mappings[destination=userPassword]: {"destination":"userPassword","value":"••••••"} → (absent)"#])
        // Inserted at the front.
        #expect(fields(job(base), job([m("sn", "S")] + base)) == [#"spec.mappings[destination=sn]: (absent) → {"destination":"sn","value":"S"}"#])
        // Reordered: one line for the order.
        #expect(fields(job(base), job(base.reversed()))
            == [#"spec.mappings (order): ["cn","userPassword","title","mail"] → ["mail","title","userPassword","cn"]"#])
        // One value changed, after a removal before it.
        #expect(fields(job(base), job([base[0], base[2], m("mail", "n@x")]))
            == [#"spec.mappings[destination=userPassword]: {"destination":"userPassword","value":"••••••"} → (absent)"#,
                #"spec.mappings[destination=mail].value: "m@x" → "n@x""#])
    }

    @Test func collectionJobsAreDiffedByNameAndTheirOrderShows() {
        let e = { (j: String, f: String) in #"{"job":"\#(j)","onFailure":"\#(f)"}"# }
        let collection = { (items: [String]) in #"{"metadata":{"name":"a"},"spec":{"jobs":[\#(items.joined(separator: ","))]}}"# }
        let base = [e("users", "abort"), e("groups", "continue"), e("partner", "continue")]
        #expect(fields(collection(base), collection([e("first", "abort")] + base)) == [#"spec.jobs[job=first]: (absent) → {"job":"first","onFailure":"abort"}"#])
        #expect(fields(collection(base), collection([base[0], base[2]])) == [#"spec.jobs[job=groups]: {"job":"groups","onFailure":"continue"} → (absent)"#])
        #expect(fields(collection(base), collection([base[1], base[0], base[2]])) == [#"spec.jobs (order): ["users","groups","partner"] → ["groups","users","partner"]"#])
    }

    @Test func otherListsAreDiffedByContent() {
        let s = { (items: String) in #"{"metadata":{"name":"a"},"spec":{"triggers":[\#(items)]}}"# }
        #expect(fields(s(#"{"cron":"@daily"},{"every":"1h"}"#), s(#"{"every":"1h"}"#)) == [#"spec.triggers[0]: {"cron":"@daily"} → (absent)"#])
        #expect(fields(s(#"{"cron":"@daily"},{"every":"1h"}"#), s(#"{"every":"1h"},{"cron":"@daily"}"#)).isEmpty)
        // Edited in place: field by field.
        #expect(fields(s(#"{"cron":"@daily"}"#), s(#"{"cron":"@hourly"}"#)) == [#"spec.triggers[0].cron: "@daily" → "@hourly""#])
    }

    @Test func aNewObjectListsItsFieldsWithSecretsMasked() {
        let spec = #"{"metadata":{"name":"a"},"spec":{"create":true,"mappings":[{"destination":"cn","key":true,"source":"x"},{"destination":"userPassword","value":"Initial-1"}],"source":{"connection":"hr"}}}"#
        let plan = Plan.make(desired: DesiredState(objects: [ObjectKey(.job, "a"): record(.job, "a", spec)], scope: .full),
                             applied: [:], revision: "r", appliedRevision: nil)
        #expect(plan.changes[0].fields.isEmpty)
        #expect(plan.changes[0].newFields.map(\.path) == ["metadata.name", "spec.create", "spec.mappings[destination=cn]",
                                                       "spec.mappings[destination=userPassword]", "spec.source.connection"])
        let text = plan.text(colour: false)
        #expect(text.contains("+ Job a  (f.yaml)\n    + spec.create: true\n    + spec.mappings[destination=cn]: "), "\(text)")
        #expect(text.contains(#"+ spec.mappings[destination=userPassword]: {"destination":"userPassword","value":"••••••"}"#))
        for rendered in [text, plan.markdown(), plan.json()] { #expect(!rendered.contains("Initial-1")) }
        #expect(plan.markdown().contains("#### Job `a` (new)"))
        var applying = plan
        applying.listsNewFields = false
        #expect(applying.text(colour: false).contains("+ Job a  (f.yaml)\n\nPlan:"))
    }

    @Test func markdownCanListOnlyTheFirstChanges() {
        let desired = DesiredState(objects: Dictionary(uniqueKeysWithValues: (0..<5).map {
            (ObjectKey(.job, "j\($0)"), record(.job, "j\($0)", job))
        }), scope: .full)
        let plan = Plan.make(desired: desired, applied: [:], revision: String(repeating: "b", count: 40), appliedRevision: nil)
        let limited = plan.markdown(limit: 2)
        #expect(limited.contains("**5 to create, 0 to update, 0 to delete**"))
        #expect(limited.contains("| create | Job | `j1` |"))
        #expect(!limited.contains("`j2`"))
        #expect(limited.contains("… and 3 more changes, not listed here"))
        #expect(!plan.markdown().contains("more changes"))
    }

    @Test func identicalStatesPlanNothing() {
        let objects = [ObjectKey(.job, "a"): record(.job, "a", job)]
        let plan = Plan.make(desired: DesiredState(objects: objects, scope: .full), applied: objects,
                             revision: "r", appliedRevision: "r")
        #expect(plan.isEmpty)
        #expect(plan.text(colour: false).contains("No changes."))
    }

    @Test func textLooksLikeTerraformAndColoursOnlyWhenAsked() {
        var schedule = Change(key: ObjectKey(.schedule, "s"), action: .create, file: "schedules/s.yaml")
        schedule.nextFires = [UpcomingFire(local: "2030-01-01 08:00 +01:00", utc: "2030-01-01T07:00:00Z")]
        let plan = Plan(revision: String(repeating: "c", count: 40), appliedRevision: nil, changes: [
            Change(key: ObjectKey(.job, "j"), action: .update, file: "jobs/j.yaml",
                   fields: [FieldChange(path: "spec.delete", old: .bool(false), new: .bool(true))]),
            schedule,
        ])
        #expect(plan.text(colour: false) == """
            Plan: revision ccccccc against applied nothing

            ~ Job j  (jobs/j.yaml)
                ~ spec.delete: false → true
            + Schedule s  (schedules/s.yaml)
                next: 2030-01-01 08:00 +01:00 (2030-01-01T07:00:00Z)

            Plan: 1 to create, 1 to update, 0 to delete.

            """)
        #expect(!plan.text(colour: false).contains("\u{1B}["))
        #expect(plan.text(colour: true).contains("\u{1B}[33m~ Job j\u{1B}[0m"))
    }

    @Test func jsonHasTheDocumentedShape() throws {
        let plan = Plan(revision: "abc", appliedRevision: nil, changes: [
            Change(key: ObjectKey(.job, "j"), action: .update, file: "j.yaml",
                   fields: [FieldChange(path: "spec.mappings[1]", old: nil, new: .number(3))]),
        ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(plan.json().utf8)) as? [String: Any])
        #expect(object["revision"] as? String == "abc")
        #expect(object["appliedRevision"] is NSNull)
        let summary = try #require(object["summary"] as? [String: Int])
        #expect(summary == ["create": 0, "update": 1, "delete": 0])
        let change = try #require((object["changes"] as? [[String: Any]])?.first)
        #expect(change["kind"] as? String == "Job")
        #expect(change["name"] as? String == "j")
        #expect(change["action"] as? String == "update")
        let field = try #require((change["fields"] as? [[String: Any]])?.first)
        #expect(field["path"] as? String == "spec.mappings[1]")
        #expect(field["old"] is NSNull)
        #expect(field["new"] as? Int == 3)
    }

    @Test func markdownEscapesPipesForTables() {
        let plan = Plan(revision: "r", appliedRevision: "q", changes: [
            Change(key: ObjectKey(.job, "j"), action: .update, file: "j.yaml",
                   fields: [FieldChange(path: "spec.source.filter", old: .string("a || b"), new: .string("a"))]),
        ])
        let markdown = plan.markdown()
        #expect(markdown.contains("**0 to create, 1 to update, 0 to delete**"))
        #expect(markdown.contains(#"| `spec.source.filter` | `"a \|\| b"` | `"a"` |"#))
        #expect(markdown.contains("<details>"))
    }
}
