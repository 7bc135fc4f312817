import Foundation

/// A JSON Schema (draft 2020-12) of every kind, for editors (`syncwright schema`).
///
/// It describes the fields the parser accepts, with their types, enumerations, ranges and the
/// "one of" rules; checks that need other documents (references, duplicates, templates, files)
/// or a library (cron, filters, templates, time zones) stay the validator's. The tests hold it
/// to the parser: every field the parser accepts is here and nothing else
/// (`ManifestParser.acceptedFields`), every example passes it, and the bad-manifest corpus's
/// schema-level cases fail it.
public enum ManifestSchema {
    public static let id = "https://syncwright.dev/schema/v1/manifest.json"

    /// The schema as pretty-printed JSON, keys sorted.
    public static func json() -> String {
        let data = (try? JSONSerialization.data(withJSONObject: document(),
                                                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    typealias Node = [String: Any]

    static func string(_ description: String, pattern: String? = nil, minLength: Int? = nil) -> Node {
        var node: Node = ["type": "string", "description": description]
        if let pattern { node["pattern"] = pattern }
        if let minLength { node["minLength"] = minLength }
        return node
    }
    static func bool(_ description: String) -> Node { ["type": "boolean", "description": description] }
    static func int(_ description: String, _ range: ClosedRange<Int>) -> Node {
        ["type": "integer", "minimum": range.lowerBound, "maximum": range.upperBound, "description": description]
    }
    static func choice<E: RawRepresentable & CaseIterable>(_ description: String, _: E.Type) -> Node where E.RawValue == String {
        ["type": "string", "enum": E.allCases.map(\.rawValue), "description": description]
    }
    static func list(_ description: String, of item: Node, minItems: Int? = nil) -> Node {
        var node: Node = ["type": "array", "items": item, "description": description]
        if let minItems { node["minItems"] = minItems }
        return node
    }
    /// A mapping whose only keys are `properties` (the parser rejects any other).
    static func object(_ description: String, _ properties: [String: Node], required: [String] = [], extra: Node = [:]) -> Node {
        var node: Node = ["type": "object", "description": description, "properties": properties, "additionalProperties": false]
        if !required.isEmpty { node["required"] = required }
        return node.merging(extra) { _, new in new }
    }
    static func ref(_ name: String) -> Node { ["$ref": "#/$defs/\(name)"] }
    /// Exactly one of `keys` is given.
    static func exactlyOne(_ keys: [String]) -> Node { ["oneOf": keys.map { ["required": [$0]] }] }

    static let namePattern = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
    static let durationPattern = "^([0-9]+[smhd])+$"
    static let timestampPattern = #"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?)?(Z|[+-][0-9]{2}:[0-9]{2})?$"#
    static func duration(_ description: String) -> Node { string(description, pattern: durationPattern) }
    static func timestamp(_ description: String) -> Node { string(description, pattern: timestampPattern) }
    static var attributeNames: Node { list("Attribute names whose values are masked in logs, reports and previews.",
                                     of: string("An attribute name.", pattern: "^[A-Za-z0-9;-]+$")) }

    /// Which jobs a run-time limit or protection applies to.
    static var runMatch: Node {
        object("Which jobs it applies to (every job when not given).", [
            "connection": string("Jobs writing this Connection.", minLength: 1),
            "jobs": string("Jobs whose name matches this shell-style pattern.", minLength: 1),
        ])
    }

    /// Who may let a job a limit or protection stopped through once.
    static var guardApprovers: Node {
        list("Who may let a stopped job through once (with the job's workflow approvers): email addresses.",
             of: string("bob@corp.example or Bob <bob@corp.example>.", minLength: 3))
    }

    /// Hours on days of the week.
    static var windowSpan: Node {
        object("Hours on days of the week; a to at or before from runs past midnight.", [
            "days": list("Days of the week.", of: ["type": "string", "enum": Weekday.allCases.map(\.rawValue), "description": "A day."],
                         minItems: 1),
            "from": string("HH:MM.", pattern: "^([01][0-9]|2[0-4]):[0-5][0-9]$"),
            "to": string("HH:MM; 24:00 ends the day.", pattern: "^([01][0-9]|2[0-4]):[0-5][0-9]$"),
        ], required: ["days", "from", "to"])
    }

    static func document() -> Node {
        var node = object("A Syncwright manifest: one YAML document of a config repository.", [
            "apiVersion": ["const": apiVersion, "description": "Always \(apiVersion)."],
            "kind": choice("What the document defines.", Kind.self),
            "metadata": object("The object's name, unique within its kind, and a description.", [
                "name": string("Lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit.",
                               pattern: namePattern),
                "description": string("Free text, shown by status and in plans."),
            ], required: ["name"]),
            "spec": ["type": "object", "description": "The kind's fields."],
        ], required: ["apiVersion", "kind", "metadata", "spec"])
        node["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        node["$id"] = id
        node["title"] = "Syncwright manifest"
        node["allOf"] = Kind.allCases.map { kind -> Node in
            ["if": ["properties": ["kind": ["const": kind.rawValue]], "required": ["kind"]],
             "then": ["properties": ["spec": ref(kind.rawValue)]]]
        }
        node["$defs"] = definitions()
        return node
    }

    static func definitions() -> [String: Node] {
        let entries = list("The jobs, run in this order.", of: object("One job of the collection.", [
            "job": string("The job's name.", minLength: 1),
            "onFailure": choice("What a failure of this job does to the run: abort (the default) stops it; continue goes on.", OnFailure.self),
        ], required: ["job"]))
        return [
            Kind.connection.rawValue: connection(),
            Kind.notificationChannel.rawValue: channel(),
            Kind.job.rawValue: job(),
            Kind.jobCollectionTemplate.rawValue: object("Jobs shared by the collections that name this template.", [
                "template": string("A template this one builds on."),
                "jobs": entries,
            ], extra: ["anyOf": [["required": ["jobs"]], ["required": ["template"]]]]),
            Kind.jobCollection.rawValue: object("Jobs run in order, as one run with one report.", [
                "template": string("A JobCollectionTemplate whose jobs come first."),
                "jobs": entries,
                "notifications": object("Who is told of a run, through which channels.", [
                    "when": list("The triggers (default: jobFails and recovered).", of: choice("A trigger.", NotificationTrigger.self), minItems: 1),
                    "recipients": list("Email addresses, mailed through the smtp channel listed.", of: string("An email address.", pattern: "@")),
                    "channels": list("NotificationChannel names.", of: string("A NotificationChannel's name.", minLength: 1), minItems: 1),
                    "repeatAfter": duration("How long an identical notification is held back after one was sent (default 1h)."),
                ], required: ["channels"]),
            ], extra: ["anyOf": [["required": ["jobs"]], ["required": ["template"]]]]),
            Kind.schedule.rawValue: schedule(),
            Kind.policy.rawValue: object("Rules over the manifests of each revision (docs/policies.md).", [
                "rules": list("The rules.", of: object("A rule: every object it matches must satisfy its expression.", [
                    "name": string("The rule's name, unique in the policy.", minLength: 1),
                    "description": string("What it is for."),
                    "match": object("Which objects the rule checks.", [
                        "kinds": list("Kinds of manifests.", of: ["type": "string", "enum": Kind.allCases.map(\.rawValue),
                                                                   "description": "A kind."], minItems: 1),
                        "names": string("A shell-style pattern over metadata.name (*, ?, [a-z]).", minLength: 1),
                        "connection": string("Only this Connection, and Jobs that read or write it.", minLength: 1),
                    ], required: ["kinds"]),
                    "expression": string("A filter expression over the object's fields, e.g. spec.delete == false || exists(spec.workflow).",
                                         minLength: 1),
                    "message": string("What a violation says (default: the description)."),
                    "enforcement": choice("deny (the default) refuses the revision; warn shows it in the plan.", PolicyEnforcement.self),
                ], required: ["name", "match", "expression"])),
                "limits": list("Delete limits, checked over what each run is about to write.", of: object("A delete limit.", [
                    "name": string("The limit's name, unique in the policy.", minLength: 1),
                    "description": string("What it is for."),
                    "match": runMatch,
                    "maxDeletes": int("At most this many deletes.", 0...Int(Int32.max)),
                    "maxDeletePercent": int("At most this share of the objects managed, in percent.", 0...100),
                    "per": choice("job (default): each job on its own; run: the jobs of one collection run together.", LimitScope.self),
                    "approvers": guardApprovers,
                ], required: ["name"], extra: ["anyOf": [["required": ["maxDeletes"]], ["required": ["maxDeletePercent"]]]])),
                "protect": list("What no job may write, checked over what each run is about to write.", of: object("A protection.", [
                    "name": string("The protection's name, unique in the policy.", minLength: 1),
                    "description": string("What it is for."),
                    "match": runMatch,
                    "neverWrite": list("Attributes never set, changed or removed.", of: string("An attribute name.", minLength: 1)),
                    "neverDeleteUnder": list("Containers under which nothing is deleted or moved away.",
                                             of: string("A DN, e.g. ou=Service Accounts,dc=corp,dc=example.", pattern: "=")),
                    "approvers": guardApprovers,
                ], required: ["name"], extra: ["anyOf": [["required": ["neverWrite"]], ["required": ["neverDeleteUnder"]]]])),
                "windows": list("Sync windows: when jobs may write, checked when a run starts.", of: object("A sync window.", [
                    "name": string("The window's name, unique in the policy.", minLength: 1),
                    "description": string("What it is for."),
                    "match": runMatch,
                    "timeZone": string("An IANA time zone, e.g. Europe/Berlin.", minLength: 1),
                    "allow": list("Writes only inside these.", of: windowSpan, minItems: 1),
                    "deny": list("No writes inside these.", of: windowSpan, minItems: 1),
                ], required: ["name", "timeZone"], extra: ["oneOf": [["required": ["allow"]], ["required": ["deny"]]]])),
            ], extra: ["anyOf": [["required": ["rules"]], ["required": ["limits"]], ["required": ["protect"]], ["required": ["windows"]]]]),
            Kind.approval.rawValue: object("A decision on a workflow request, merged like any change.", [
                "request": string("The request id (syncwright requests), e.g. req-20261127-093000-ab12.", pattern: namePattern),
                "decision": choice("approve or deny.", ApprovalDecision.self),
                "reason": string("Why; a deny needs one."),
            ], required: ["request", "decision"],
               extra: ["if": ["properties": ["decision": ["const": "deny"]]], "then": ["required": ["reason"]]]),
        ]
    }

    static func connection() -> Node {
        let ldapOnly = ["baseDN", "url", "bindDN", "passwordFrom", "startTLS", "caFile", "insecureSkipVerify", "pageSize",
                        "maxOutstanding", "timeout", "maxValuesPerRequest", "flavor"]
        let fileOnly = ["path", "repoPath", "delimiter"]
        func absent(_ fields: [String]) -> Node { ["properties": Dictionary(uniqueKeysWithValues: fields.map { ($0, false) as (String, Any) })] }
        return object("Where entries are read and written: a CSV or LDIF file, or an LDAP server.", [
            "type": choice("csv, ldif or ldap.", ConnectionType.self),
            "path": string("A file on the reconciler's machine (relative to its home)."),
            "repoPath": string("A file of the config repository, read at the applied revision.", pattern: #"^(?!/)(?!.*(^|/)\.\.(/|$))"#),
            "delimiter": string("A CSV's field delimiter: one character other than a quote or a line break.", pattern: "^[^\"\\r\\n]$"),
            "secretAttributes": attributeNames,
            "baseDN": string("The server's base DN."),
            "url": string("ldap://host:port or ldaps://host:port.", pattern: "^ldaps?://"),
            "bindDN": string("The DN to bind as; needs passwordFrom."),
            "passwordFrom": object("Where the bind password is read: an environment variable or a file.", [
                "env": string("An environment variable."),
                "file": string("A file."),
            ], extra: exactlyOne(["env", "file"])),
            "startTLS": bool("Upgrade an ldap:// connection with StartTLS."),
            "caFile": string("A PEM file of the CA certificates to trust."),
            "insecureSkipVerify": bool("Trust any certificate (warned about in every report)."),
            "pageSize": int("Entries per page of a search.", 1...100_000),
            "flavor": choice("generic, or activeDirectory: TLS required (ldaps:// or startTLS), 1,000 entries a page, and AD's write rules (unicodePwd, create disabled then enable, renames).", LDAPFlavor.self),
            "maxOutstanding": int("Requests in flight at once.", 1...1_024),
            "timeout": duration("How long one request may take, e.g. 30s or 2m."),
            "maxValuesPerRequest": int("Values of one attribute written per request.", 1...1_000_000),
        ], required: ["type"], extra: ["allOf": [
            ["if": ["properties": ["type": ["const": "ldap"]]],
             "then": ["required": ["url", "baseDN"], "allOf": [absent(fileOnly), ["dependentRequired": ["bindDN": ["passwordFrom"]]]]],
             "else": ["allOf": [absent(ldapOnly), exactlyOne(["path", "repoPath"])]]],
            ["if": ["properties": ["type": ["const": "ldif"]]], "then": absent(["delimiter"])],
            ["not": ["required": ["caFile", "insecureSkipVerify"], "properties": ["insecureSkipVerify": ["const": true]]]],
            ["if": ["required": ["flavor", "url"], "properties": ["flavor": ["const": "activeDirectory"], "url": ["pattern": "^ldap://"]]],
             "then": ["required": ["startTLS"], "properties": ["startTLS": ["const": true]]]],
        ]])
    }

    static func channel() -> Node {
        let secret = { (what: String) in
            object(what, ["env": string("An environment variable."), "file": string("A file.")], extra: exactlyOne(["env", "file"]))
        }
        let mailOnly = ["host", "port", "tls", "username", "passwordFrom", "from"]
        func absent(_ fields: [String]) -> Node { ["properties": Dictionary(uniqueKeysWithValues: fields.map { ($0, false) as (String, Any) })] }
        return object("Where notifications go: a mail server (smtp) or a webhook.", [
            "type": choice("smtp or webhook.", NotificationChannelType.self),
            "host": string("The mail server."),
            "port": int("Its port (default 587, 465 for implicit, 25 for none).", 1...65_535),
            "tls": choice("starttls (the default, required), implicit, or none (a relay on this machine; no password).", MailSecurity.self),
            "username": string("The AUTH user; needs passwordFrom."),
            "passwordFrom": secret("Where the AUTH password is read."),
            "from": string("The sender: sync@corp.example or Syncwright <sync@corp.example>.", pattern: "@"),
            "urlFrom": secret("Where the webhook's URL is read (it holds a token)."),
            "format": choice("json (the default), slack or teams.", WebhookFormat.self),
            "caFile": string("A PEM file of the CA certificates to trust."),
            "insecureSkipVerify": bool("Trust any certificate (warned about in every report)."),
            "timeout": duration("How long one delivery may take, e.g. 30s."),
        ], required: ["type"], extra: ["allOf": [
            ["if": ["properties": ["type": ["const": "smtp"]]],
             "then": ["required": ["host", "from"], "allOf": [absent(["urlFrom", "format"]),
                                                             ["dependentRequired": ["username": ["passwordFrom"], "passwordFrom": ["username"]]]]],
             "else": ["required": ["urlFrom"], "allOf": [absent(mailOnly)]]],
            ["not": ["required": ["caFile", "insecureSkipVerify"], "properties": ["insecureSkipVerify": ["const": true]]]],
        ]])
    }

    static func job() -> Node {
        let reference = object("Where a value leads: to the object another job writes, or one the destination holds.", [
            "job": string("A job writing to the same destination."),
            "by": string("A source column of that job to match the value against.", minLength: 1),
            "from": choice("dn: the value is a source DN of that job.", ValueReference.From.self),
            "attribute": string("An attribute of the destination's objects to match.", pattern: "^[A-Za-z0-9-]+$"),
            "base": string("Where to look for it (the whole destination by default)."),
        ], extra: ["oneOf": [
            ["required": ["job"], "properties": ["attribute": false, "base": false], "not": ["required": ["by", "from"]]],
            ["required": ["attribute"], "properties": ["job": false, "by": false, "from": false]],
        ]])
        let mapping = object("One destination attribute, from a source column, a template value, or a generated password.", [
            "destination": string("The destination attribute (or column).", minLength: 1),
            "source": string("A source attribute (or column)."),
            "value": string("A template, e.g. \"{{given}} {{sn}}\"."),
            "generate": ["const": "password", "description": "password: a new random password, on create only."],
            "key": bool("Match source and destination objects by this field."),
            "newOnly": bool("Write on create only."),
            "delimiter": string("Split the source value into several values.", minLength: 1),
            "resolve": reference,
            "onUnresolved": choice("skipValue (the default) or failRow.", OnUnresolved.self),
            "membership": choice("authoritative (the default) or additive.", Membership.self),
        ], required: ["destination"], extra: ["allOf": [
            exactlyOne(["source", "value", "generate"]),
            ["dependentRequired": ["onUnresolved": ["resolve"]]],
            ["if": ["properties": ["key": ["const": true]], "required": ["key"]],
             "then": ["properties": ["newOnly": ["const": true], "generate": false, "resolve": false, "membership": false]]],
            ["if": ["required": ["generate"]], "then": ["properties": ["resolve": false, "membership": false]]],
        ]])
        return object("What one job copies from its source to its destination, and how.", [
            "source": object("Where entries are read.", [
                "connection": string("A Connection's name.", minLength: 1),
                "filter": string("Which entries, e.g. 'status == \"active\"'."),
                "base": string("Only entries below this DN."),
            ], required: ["connection"]),
            "destination": object("Where entries are written.", [
                "connection": string("A Connection's name.", minLength: 1),
                "objectClass": list("Object classes of created entries.", of: string("An object class.")),
                "container": string("The DN new entries go under; goes with rdn."),
                "rdn": string("The attribute that names new entries; goes with container."),
            ], required: ["connection"], extra: ["dependentRequired": ["rdn": ["container"], "container": ["rdn"]]]),
            "mappings": list("The fields written; at least one is the key.", of: mapping, minItems: 1)
                .merging(["contains": ["required": ["key"], "properties": ["key": ["const": true]]]]) { _, new in new },
            "create": bool("Create source objects missing at the destination (default true)."),
            "delete": bool("Delete destination objects missing from the source (default false)."),
            "allowEmptySource": bool("Let an empty source through (it would delete everything)."),
            "deleteThreshold": object("More deletes than this fail the job, which then writes nothing (default count 500).", [
                "count": int("Deletes.", 0...Int(Int32.max)),
                "percent": int("Percent of the destination's matched objects.", 0...100),
            ], extra: ["minProperties": 1]),
            "secretAttributes": attributeNames,
            "workflow": object("Runs of this job wait for an approver.", [
                "approvers": list("Who may approve: bob@corp.example or Bob <bob@corp.example>.",
                                  of: string("An email address.", pattern: "^[^ @]+@[^ @]+$|<[^ @]+@[^ @]+>$"), minItems: 1),
                "expiresAfter": duration("How long a request waits, e.g. 7d."),
                "onScheduledRuns": choice("Whether scheduled runs wait too.", OnScheduledRuns.self),
            ], required: ["approvers"]),
        ], required: ["source", "destination", "mappings"])
    }

    static func schedule() -> Node {
        let trigger = object("When the targets run: one of cron, every, once or atStartup.", [
            "cron": string("Five fields, e.g. \"30 2 * * *\"."),
            "every": duration("An interval, e.g. 15m."),
            "from": timestamp("With every: the first fire time."),
            "for": duration("With every and from: how long it keeps firing."),
            "once": timestamp("One fire time, e.g. 2026-12-01T08:00."),
            "atStartup": ["const": true, "description": "Fire when the reconciler starts."],
        ], extra: ["allOf": [
            exactlyOne(["cron", "every", "once", "atStartup"]),
            ["dependentRequired": ["from": ["every"], "for": ["every", "from"]]],
        ]])
        return object("When collections run.", [
            "targets": list("The collections.", of: string("A JobCollection's name."), minItems: 1),
            "timezone": string("An IANA time zone, e.g. Europe/Berlin (default UTC)."),
            "triggers": list("When.", of: trigger, minItems: 1),
            "timeout": duration("How long a run may take, e.g. 2h."),
            "expires": timestamp("No fire after this."),
            "enabled": bool("false pauses the schedule."),
            "missedRuns": choice("What a reconciler that was down does about the fires it missed.", MissedRuns.self),
            "startingDeadline": duration("How late a fire may still start, e.g. 10m."),
        ], required: ["targets", "triggers"])
    }
}
