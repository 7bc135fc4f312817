import Foundation
import Manifests
import TestSupport
import Testing

/// One bad repository and the exact problems it must produce.
struct BadCase: CustomTestStringConvertible, Sendable {
    let name: String
    let files: [String: String]
    let expected: [String]
    var testDescription: String { name }
}

let header = "apiVersion: syncwright.dev/v1\n"
let goodConnections = Fixtures.csvToLDIFConnections(out: "out.ldif")
let goodJob = """
    apiVersion: syncwright.dev/v1
    kind: Job
    metadata: { name: j1 }
    spec:
      source: { connection: src }
      destination: { connection: dst }
      mappings:
        - { source: id, destination: employeeNumber, key: true }

    """

/// Validates `files` as a whole repository (plus `data/in.csv`, which exists).
func problems(_ files: [String: String]) -> [String] {
    let all = files.merging(["c.yaml": goodConnections]) { mine, _ in mine }
    let parsed = ManifestParser.parse(files: all.sorted { $0.key < $1.key }.map {
        ManifestFile(path: $0.key, contents: Data($0.value.utf8))
    })
    var found = parsed.problems
    do {
        _ = try DesiredState.build(manifests: parsed.manifests, scope: .full, fileExists: { $0 == "data/in.csv" })
    } catch let error as ManifestError {
        found += error.problems
    } catch {
        Issue.record("unexpected error \(error)")
    }
    return ManifestError(found).problems.map(\.description)
}

let mailChannel = header + "kind: NotificationChannel\nmetadata: { name: mail }\n"
    + "spec: { type: smtp, host: mail.corp.example, from: sync@corp.example }\n"
let webhookChannel = header + "kind: NotificationChannel\nmetadata: { name: teams }\n"
    + "spec: { type: webhook, urlFrom: { env: TEAMS_URL }, format: teams }\n"

let badCases: [BadCase] = [
    BadCase(name: "YAML syntax: unclosed flow mapping",
            files: ["a.yaml": header + "kind: Job\nmetadata: { name: x\n"],
            expected: ["a.yaml:4:1: YAML syntax error: did not find expected ',' or '}' while parsing a flow mapping"]),
    BadCase(name: "YAML syntax: bad indentation",
            files: ["a.yaml": header + "kind: Job\n  metadata: x\n"],
            expected: ["a.yaml:3:11: YAML syntax error: mapping values are not allowed in this context"]),
    BadCase(name: "document is a list",
            files: ["a.yaml": "- a\n- b\n"],
            expected: ["a.yaml:1:1: expected a mapping, found a list"]),
    BadCase(name: "missing apiVersion",
            files: ["a.yaml": "kind: Policy\nmetadata: { name: p }\nspec: { rules: [] }\n"],
            expected: ["a.yaml:1:1: apiVersion: required field is missing"]),
    BadCase(name: "wrong apiVersion",
            files: ["a.yaml": "apiVersion: syncwright.dev/v2\nkind: Policy\nmetadata: { name: p }\nspec: { rules: [] }\n"],
            expected: ["a.yaml:1:13: apiVersion: unsupported apiVersion 'syncwright.dev/v2' (expected syncwright.dev/v1)"]),
    BadCase(name: "unknown kind",
            files: ["a.yaml": header + "kind: Jobb\nmetadata: { name: x }\nspec: {}\n"],
            expected: ["a.yaml:2:7: kind: unknown kind 'Jobb' (expected one of: Approval, Connection, Job, JobCollection, "
                       + "JobCollectionTemplate, NotificationChannel, Policy, Schedule)"]),
    BadCase(name: "approval: a deny without a reason",
            files: ["a.yaml": header + "kind: Approval\nmetadata: { name: a1 }\nspec: { request: req-1, decision: deny }\n"],
            expected: ["a.yaml:4:7: spec.reason: a deny needs a reason"]),
    BadCase(name: "approval: an unknown decision",
            files: ["a.yaml": header + "kind: Approval\nmetadata: { name: a1 }\nspec: { request: req-1, decision: maybe }\n"],
            expected: ["a.yaml:4:35: spec.decision: 'maybe' is not one of approve, deny"]),
    BadCase(name: "approval: a request id that is no id, and an unknown field",
            files: ["a.yaml": header + "kind: Approval\nmetadata: { name: a1 }\nspec: { request: Req_1, decision: approve, by: me }\n"],
            expected: ["a.yaml:4:18: spec.request: 'Req_1' is not a request id (ids look like req-20261127-093000-ab12; "
                       + "see syncwright requests)",
                       "a.yaml:4:44: spec.by: unknown field (expected one of: decision, reason, request)"]),
    BadCase(name: "workflow: an approver with no address, a bad expiry, an unknown onScheduledRuns",
            files: ["j.yaml": goodJob + "  workflow: { approvers: [bob], expiresAfter: soon, onScheduledRuns: never }\n"],
            expected: ["j.yaml:9:27: spec.workflow.approvers[0]: 'bob' is not an email address (write bob@corp.example "
                       + "or Bob <bob@corp.example>)",
                       "j.yaml:9:47: spec.workflow.expiresAfter: 'soon' is not a duration like 7d or 12h",
                       "j.yaml:9:70: spec.workflow.onScheduledRuns: 'never' is not one of skip, require"]),
    BadCase(name: "missing spec",
            files: ["a.yaml": header + "kind: Policy\nmetadata: { name: p }\n"],
            expected: ["a.yaml:1:1: spec: required field is missing"]),
    BadCase(name: "invalid name",
            files: ["a.yaml": header + "kind: Policy\nmetadata: { name: Bad_Name }\nspec: { rules: [] }\n"],
            expected: ["a.yaml:3:19: metadata.name: 'Bad_Name' is not a valid name: use at most 63 lowercase letters, "
                       + "digits and '-', starting and ending with a letter or digit"]),
    BadCase(name: "unknown top-level field",
            files: ["a.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec: { rules: [] }\nstatus: {}\n"],
            expected: ["a.yaml:5:1: status: unknown field (expected one of: apiVersion, kind, metadata, spec)"]),
    BadCase(name: "unknown metadata field",
            files: ["a.yaml": header + "kind: Policy\nmetadata: { name: p, labels: {} }\nspec: { rules: [] }\n"],
            expected: ["a.yaml:3:22: metadata.labels: unknown field (expected one of: description, name)"]),
    BadCase(name: "unknown job field (typo)",
            files: ["j.yaml": goodJob + "  delet: true\n"],
            expected: ["j.yaml:9:3: spec.delet: unknown field (expected one of: allowEmptySource, create, delete, "
                       + "deleteThreshold, destination, mappings, secretAttributes, source, workflow)"]),
    BadCase(name: "wrong type: bool as string",
            files: ["j.yaml": goodJob + "  create: \"yes\"\n"],
            expected: ["j.yaml:9:11: spec.create: expected true or false, found 'yes'"]),
    BadCase(name: "wrong type: mappings is a mapping",
            files: ["j.yaml": goodJob.replacingOccurrences(of: "  mappings:\n    - { source: id, destination: employeeNumber, key: true }\n",
                                                           with: "  mappings: { source: id }\n")],
            expected: ["j.yaml:7:13: spec.mappings: expected a list, found a mapping"]),
    BadCase(name: "job with no key mapping",
            files: ["j.yaml": goodJob.replacingOccurrences(of: ", key: true", with: "")],
            expected: ["j.yaml:8:5: spec.mappings: a job needs at least one mapping with key: true, "
                       + "to match source and destination objects"]),
    BadCase(name: "mapping with both source and value",
            files: ["j.yaml": goodJob + "    - { source: a, value: b, destination: cn }\n"],
            expected: ["j.yaml:9:7: spec.mappings[1]: give only one of source, value or generate"]),
    BadCase(name: "generate something unknown",
            files: ["j.yaml": goodJob + "    - { generate: pin, destination: pin }\n"],
            expected: ["j.yaml:9:19: spec.mappings[1].generate: 'pin' cannot be generated (only: password)"]),
    BadCase(name: "key that is not new-only",
            files: ["j.yaml": goodJob + "    - { source: mail, destination: mail, key: true, newOnly: false }\n"],
            expected: ["j.yaml:9:62: spec.mappings[1].newOnly: a key field is always new-only"]),
    BadCase(name: "same destination mapped twice",
            files: ["j.yaml": goodJob + "    - { source: other, destination: EmployeeNumber }\n"],
            expected: ["j.yaml:9:7: spec.mappings[1].destination: destination 'EmployeeNumber' is already mapped by spec.mappings[0]"]),
    BadCase(name: "unclosed template placeholder",
            files: ["j.yaml": goodJob + "    - { value: \"{{givenName} x\", destination: cn }\n"],
            expected: ["j.yaml:9:16: spec.mappings[1].value: column 1: '{{' is never closed with '}}'"]),
    BadCase(name: "template with an unknown pipe",
            files: ["j.yaml": goodJob + "    - { value: \"{{ mail | lowercase }}\", destination: mail }\n"],
            expected: ["j.yaml:9:16: spec.mappings[1].value: column 11: unknown pipe 'lowercase' (use lower, upper, trim, "
                       + "left(n), substring(start, length), replace(a, b) or default(x))"]),
    BadCase(name: "filter with a missing operand",
            files: ["j.yaml": goodJob.replacingOccurrences(of: "source: { connection: src }",
                                                           with: "source: { connection: src, filter: 'status == && x' }")],
            expected: ["j.yaml:5:38: spec.source.filter: column 11: expected a quoted string, true, false or a number"]),
    BadCase(name: "policy rule without match",
            files: ["p.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec:\n  rules:\n    - { name: r, expression: 'x == 1' }\n"],
            expected: ["p.yaml:6:7: spec.rules[0].match: required field is missing: which objects the rule checks, "
                       + "e.g. match: { kinds: [Job] }"]),
    BadCase(name: "policy with nothing in it",
            files: ["p.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec: { }\n"],
            expected: ["p.yaml:4:7: spec: a policy needs rules (over the manifests), limits, protect or windows (over what runs write)"]),
    BadCase(name: "limit without a maximum",
            files: ["p.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec:\n  limits:\n    - { name: l, per: run }\n"],
            expected: ["p.yaml:6:7: spec.limits[0]: a limit needs maxDeletes, maxDeletePercent or both"]),
    BadCase(name: "limit over 100 percent, counted per something unknown",
            files: ["p.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec:\n  limits:\n"
                        + "    - { name: l, maxDeletePercent: 150, per: week }\n"],
            expected: ["p.yaml:6:36: spec.limits[0].maxDeletePercent: 150 is out of range 0-100",
                       "p.yaml:6:46: spec.limits[0].per: 'week' is not one of job, run"]),
    BadCase(name: "protection with nothing protected, and one with a container that is no DN",
            files: ["p.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec:\n  protect:\n"
                        + "    - { name: a }\n    - { name: b, neverDeleteUnder: [Service Accounts] }\n"],
            expected: ["p.yaml:6:7: spec.protect[0]: a protection needs neverWrite (attributes), neverDeleteUnder (DNs) or both",
                       "p.yaml:7:7: spec.protect[1]: a protection needs neverWrite (attributes), neverDeleteUnder (DNs) or both",
                       "p.yaml:7:37: spec.protect[1].neverDeleteUnder[0]: 'Service Accounts' is not a DN (write e.g. ou=Service Accounts,dc=corp,dc=example)"]),
    BadCase(name: "limit naming a connection that does not exist",
            files: ["c.yaml": goodConnections,
                    "p.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec:\n  limits:\n"
                        + "    - { name: l, match: { connection: corp-ldpa }, maxDeletes: 1 }\n"],
            expected: ["p.yaml:6:39: spec.limits[0].match.connection: no Connection named 'corp-ldpa' exists"]),
    BadCase(name: "sync window with both allow and deny, a bad zone, day and time",
            files: ["p.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec:\n  windows:\n"
                        + "    - name: w\n      timeZone: Europe/Berln\n"
                        + "      allow: [ { days: [Saturday], from: \"02:00\", to: \"6\" } ]\n"
                        + "      deny: [ { days: [Mon], from: \"08:00\", to: \"18:00\" } ]\n"],
            expected: ["p.yaml:6:7: spec.windows[0]: a window needs allow (writes only then) or deny (no writes then), not both",
                       "p.yaml:7:17: spec.windows[0].timeZone: 'Europe/Berln' is not a time zone (write e.g. Europe/Berlin or UTC)",
                       "p.yaml:8:25: spec.windows[0].allow[0].days[0]: 'Saturday' is not a day (one of: Mon, Tue, Wed, Thu, Fri, Sat, Sun)",
                       "p.yaml:8:55: spec.windows[0].allow[0].to: '6' is not a time of day like 08:00 (00:00 to 24:00)"]),
    BadCase(name: "policy rule matching an unknown kind",
            files: ["p.yaml": header + "kind: Policy\nmetadata: { name: p }\nspec:\n  rules:\n"
                        + "    - { name: r, match: { kinds: [Jobs] }, expression: 'x == 1' }\n"],
            expected: ["p.yaml:6:35: spec.rules[0].match.kinds[0]: 'Jobs' is not a kind (one of: Connection, NotificationChannel, Job, "
                       + "JobCollectionTemplate, JobCollection, Schedule, Policy, Approval)"]),
    BadCase(name: "delete threshold out of range",
            files: ["j.yaml": goodJob + "  deleteThreshold: { percent: 150 }\n"],
            expected: ["j.yaml:9:31: spec.deleteThreshold.percent: 150 is out of range 0-100"]),
    BadCase(name: "csv delimiter of two characters",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: hr }\nspec: { type: csv, path: a.csv, delimiter: ';;' }\n"],
            expected: ["x.yaml:4:44: spec.delimiter: ';;' must be one character other than a quote or a line break (e.g. ';' or a tab)"]),
    BadCase(name: "dangling connection reference",
            files: ["j.yaml": goodJob.replacingOccurrences(of: "{ connection: dst }", with: "{ connection: corp-ldap }")],
            expected: ["j.yaml:6:30: spec.destination.connection: no Connection named 'corp-ldap' exists"]),
    BadCase(name: "rdn without container",
            files: ["j.yaml": goodJob.replacingOccurrences(of: "{ connection: dst }", with: "{ connection: dst, rdn: employeeNumber }")],
            expected: ["j.yaml:6:16: spec.destination.container: required field is missing"]),
    BadCase(name: "duplicate name in a kind, across files",
            files: ["j.yaml": goodJob, "k.yaml": goodJob],
            expected: ["k.yaml:3:19: metadata.name: duplicate Job name 'j1' (first defined at j.yaml:3:19)"]),
    BadCase(name: "duplicate YAML key",
            files: ["a.yaml": header + "kind: Policy\nkind: Policy\nmetadata: { name: p }\nspec: { rules: [] }\n"],
            expected: ["a.yaml:3:1: duplicate key 'kind': a mapping may name each key once"]),
    BadCase(name: "csv connection with neither path nor repoPath",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: hr }\nspec: { type: csv }\n"],
            expected: ["x.yaml:4:7: spec: a csv connection needs exactly one of path or repoPath"]),
    BadCase(name: "connection type unknown",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: hr }\nspec: { type: excel, path: a.xlsx }\n"],
            expected: ["x.yaml:4:15: spec.type: 'excel' is not one of csv, ldif, ldap"]),
    BadCase(name: "ldap connection without url, with a path",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: corp }\nspec: { type: ldap, baseDN: 'dc=corp', path: x }\n"],
            expected: ["x.yaml:4:7: spec.url: required field is missing",
                       "x.yaml:4:46: spec.path: an ldap connection has no path; use url"]),
    BadCase(name: "ldap bindDN without passwordFrom",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: corp }\n"
                        + "spec:\n  type: ldap\n  url: ldaps://dc1\n  baseDN: dc=corp\n  bindDN: cn=sync\n"],
            expected: ["x.yaml:8:11: spec.passwordFrom: bindDN needs passwordFrom (env or file)"]),
    BadCase(name: "passwordFrom with both env and file",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: corp }\n"
                        + "spec:\n  type: ldap\n  url: ldap://dc1\n  baseDN: dc=corp\n  passwordFrom: { env: A, file: /b }\n"],
            expected: ["x.yaml:8:17: spec.passwordFrom: give exactly one of env or file"]),
    BadCase(name: "ldap startTLS on an ldaps URL, and a page size of 0",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: corp }\n"
                        + "spec:\n  type: ldap\n  url: ldaps://dc1\n  baseDN: dc=corp\n  startTLS: true\n  pageSize: 0\n"],
            expected: ["x.yaml:8:13: spec.startTLS: startTLS is for ldap:// URLs; ldaps:// is TLS from the start",
                       "x.yaml:9:13: spec.pageSize: 0 is out of range 1-100000"]),
    BadCase(name: "ldap caFile and insecureSkipVerify together, and a zero timeout",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: corp }\n"
                        + "spec:\n  type: ldap\n  url: ldap://dc1\n  baseDN: dc=corp\n  caFile: /ca.pem\n  insecureSkipVerify: true\n  timeout: 0s\n"],
            expected: ["x.yaml:9:23: spec.insecureSkipVerify: give caFile to trust a private CA, or insecureSkipVerify to trust anything, not both",
                       "x.yaml:10:12: spec.timeout: '0s' is not a duration like 30s or 2m"]),
    BadCase(name: "ldap settings on a file connection",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: hr }\nspec: { type: csv, path: hr.csv, startTLS: true, baseDN: dc=x }\n"],
            expected: ["x.yaml:4:44: spec.startTLS: only an ldap connection has startTLS",
                       "x.yaml:4:58: spec.baseDN: only an ldap connection has baseDN"]),
    BadCase(name: "repoPath that does not exist",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: hr }\nspec: { type: csv, repoPath: data/missing.csv }\n"],
            expected: ["x.yaml:4:30: spec.repoPath: the file 'data/missing.csv' does not exist in the repository"]),
    BadCase(name: "repoPath escaping the repository",
            files: ["x.yaml": header + "kind: Connection\nmetadata: { name: hr }\nspec: { type: csv, repoPath: ../etc/passwd }\n"],
            expected: ["x.yaml:4:30: spec.repoPath: '../etc/passwd' must be a path inside the repository, without '..' or a leading '/'"]),
    BadCase(name: "collection with a dangling job",
            files: ["j.yaml": goodJob, "c2.yaml": header + "kind: JobCollection\nmetadata: { name: nightly }\n"
                        + "spec:\n  jobs:\n    - { job: j1 }\n    - { job: j2, onFailure: continue }\n"],
            expected: ["c2.yaml:7:14: spec.jobs[1].job: no Job named 'j2' exists (did you mean 'j1'?)"]),
    BadCase(name: "bad onFailure",
            files: ["j.yaml": goodJob, "c2.yaml": header + "kind: JobCollection\nmetadata: { name: nightly }\n"
                        + "spec:\n  jobs:\n    - { job: j1, onFailure: retry }\n"],
            expected: ["c2.yaml:6:29: spec.jobs[0].onFailure: 'retry' is not one of abort, continue"]),
    BadCase(name: "job listed twice via the template",
            files: ["j.yaml": goodJob,
                    "t.yaml": header + "kind: JobCollectionTemplate\nmetadata: { name: base }\nspec: { jobs: [ { job: j1 } ] }\n",
                    "c2.yaml": header + "kind: JobCollection\nmetadata: { name: nightly }\n"
                        + "spec:\n  template: base\n  jobs:\n    - { job: j1 }\n"],
            expected: ["c2.yaml:7:5: spec.jobs: job 'j1' is listed twice (its template 'base' included)"]),
    BadCase(name: "template cycle",
            files: ["j.yaml": goodJob,
                    "t.yaml": header + "kind: JobCollectionTemplate\nmetadata: { name: a }\nspec: { template: b, jobs: [ { job: j1 } ] }\n"
                        + "---\n" + header + "kind: JobCollectionTemplate\nmetadata: { name: b }\nspec: { template: a, jobs: [] }\n"],
            expected: ["t.yaml:4:19: spec.template: template cycle: a → b → a",
                       "t.yaml:9:19: spec.template: template cycle: b → a → b"]),
    BadCase(name: "notification trigger unknown",
            files: ["j.yaml": goodJob, "c2.yaml": header + "kind: JobCollection\nmetadata: { name: nightly }\n"
                        + "spec:\n  jobs: [ { job: j1 } ]\n  notifications: { when: [failure], recipients: [ops@corp.example], channels: [mail] }\n",
                    "n.yaml": mailChannel],
            expected: ["c2.yaml:6:27: spec.notifications.when[0]: 'failure' is not one of always, recordsUpdated, errors, jobFails, recovered"]),
    BadCase(name: "notifications: no channels, a dangling channel, recipients with only a webhook, an smtp channel with no recipients",
            files: ["j.yaml": goodJob, "n.yaml": mailChannel + "---\n" + webhookChannel,
                    "c2.yaml": header + "kind: JobCollection\nmetadata: { name: a }\nspec:\n  jobs: [ { job: j1 } ]\n"
                        + "  notifications: { recipients: [ops@corp.example] }\n"
                        + "---\n" + header + "kind: JobCollection\nmetadata: { name: b }\nspec:\n  jobs: [ { job: j1 } ]\n"
                        + "  notifications: { channels: [mial] }\n"
                        + "---\n" + header + "kind: JobCollection\nmetadata: { name: c }\nspec:\n  jobs: [ { job: j1 } ]\n"
                        + "  notifications: { recipients: [ops@corp.example], channels: [teams] }\n"
                        + "---\n" + header + "kind: JobCollection\nmetadata: { name: d }\nspec:\n  jobs: [ { job: j1 } ]\n"
                        + "  notifications: { when: [errors], channels: [mail, teams], repeatAfter: 2h }\n"
                        + "---\n" + header + "kind: JobCollection\nmetadata: { name: e }\nspec:\n  jobs: [ { job: j1 } ]\n"
                        + "  notifications: { channels: [teams], repeatAfter: soon }\n"],
            expected: ["c2.yaml:6:18: spec.notifications.channels: required field is missing",
                       "c2.yaml:13:31: spec.notifications.channels[0]: no NotificationChannel named 'mial' exists (did you mean 'mail'?)",
                       "c2.yaml:20:62: spec.notifications.recipients: recipients are mailed through an smtp channel, and none of the channels listed is one: list one, or leave recipients out",
                       "c2.yaml:27:46: spec.notifications.recipients: an smtp channel is listed, so name the recipients to mail",
                       "c2.yaml:34:52: spec.notifications.repeatAfter: 'soon' is not a duration like 1h or 30m"]),
    BadCase(name: "notification channels: smtp and webhook fields mixed, a password without TLS, a bad sender",
            files: ["n.yaml": header + "kind: NotificationChannel\nmetadata: { name: m }\n"
                        + "spec: { type: smtp, tls: none, username: sync, passwordFrom: { env: P }, from: nobody, urlFrom: { env: U } }\n"
                        + "---\n" + header + "kind: NotificationChannel\nmetadata: { name: w }\n"
                        + "spec: { type: webhook, host: mail.corp.example, format: discord }\n"],
            expected: ["n.yaml:4:7: spec.host: required field is missing",
                       "n.yaml:4:42: spec.username: a password is never sent without TLS: use tls: starttls or implicit",
                       "n.yaml:4:80: spec.from: 'nobody' is not an email address (write sync@corp.example or Syncwright <sync@corp.example>)",
                       "n.yaml:4:97: spec.urlFrom: only a webhook channel has urlFrom",
                       "n.yaml:9:7: spec.urlFrom: required field is missing",
                       "n.yaml:9:30: spec.host: only an smtp channel has host",
                       "n.yaml:9:57: spec.format: 'discord' is not one of json, slack, teams"]),
    BadCase(name: "invalid cron: hour out of range",
            files: ["s.yaml": header + "kind: Schedule\nmetadata: { name: s }\n"
                        + "spec:\n  targets: []\n  triggers:\n    - cron: \"0 25 * * *\"\n"],
            expected: ["s.yaml:5:12: spec.targets: name at least one collection",
                       "s.yaml:7:13: spec.triggers[0].cron: hour field '25': 25 is out of range 0-23"]),
    BadCase(name: "invalid cron: wrong field count",
            files: ["j.yaml": goodJob, "s.yaml": header + "kind: Schedule\nmetadata: { name: s }\n"
                        + "spec:\n  targets: [nightly]\n  triggers:\n    - cron: \"*/5 * * *\"\n"],
            expected: ["s.yaml:7:13: spec.triggers[0].cron: a cron expression has 5 fields "
                       + "(minute hour day-of-month month day-of-week), found 4"]),
    BadCase(name: "schedule targeting a missing collection",
            files: ["s.yaml": header + "kind: Schedule\nmetadata: { name: s }\n"
                        + "spec:\n  targets: [nightly]\n  triggers: [ { every: 15m } ]\n"],
            expected: ["s.yaml:5:13: spec.targets[0]: no JobCollection named 'nightly' exists"]),
    BadCase(name: "unknown time zone",
            files: ["s.yaml": header + "kind: Schedule\nmetadata: { name: s }\n"
                        + "spec:\n  targets: [x]\n  timezone: Europe/Atlantis\n  triggers: [ { atStartup: true } ]\n"],
            expected: ["s.yaml:6:13: spec.timezone: unknown time zone 'Europe/Atlantis' (use an IANA name like Europe/Berlin)"]),
    BadCase(name: "trigger with two kinds and a bad interval",
            files: ["s.yaml": header + "kind: Schedule\nmetadata: { name: s }\n"
                        + "spec:\n  targets: [x]\n  triggers:\n    - { cron: '@daily', once: '2026-12-01T08:00' }\n    - { every: 15 }\n"],
            expected: ["s.yaml:7:7: spec.triggers[0]: give only one of cron, once",
                       "s.yaml:8:16: spec.triggers[1].every: '15' is not an interval like 30s, 15m, 2h or 1d"]),
    BadCase(name: "bad timestamp and duration",
            files: ["s.yaml": header + "kind: Schedule\nmetadata: { name: s }\n"
                        + "spec:\n  targets: [x]\n  triggers: [ { once: '2026-02-30T08:00' } ]\n  timeout: soon\n  expires: tomorrow\n"],
            expected: ["s.yaml:6:23: spec.triggers[0].once: '2026-02-30T08:00' is not a timestamp like 2026-12-01T08:00",
                       "s.yaml:7:12: spec.timeout: 'soon' is not a duration like 30m, 2h or 1h30m",
                       "s.yaml:8:12: spec.expires: 'tomorrow' is not a timestamp like 2026-12-31T23:59"]),
    BadCase(name: "resolve: a missing job, another destination, and a job with two keys",
            files: ["j.yaml": goodJob + "---\n" + header + """
                kind: Job
                metadata: { name: j2 }
                spec:
                  source: { connection: src }
                  destination: { connection: src }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: a, destination: manager, resolve: { job: j3 } }
                    - { source: b, destination: member, resolve: { job: j1 } }
                    - { source: c, destination: seeAlso, resolve: { job: j4 } }
                ---
                apiVersion: syncwright.dev/v1
                kind: Job
                metadata: { name: j4 }
                spec:
                  source: { connection: src }
                  destination: { connection: src }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true }
                    - { source: login, destination: uid, key: true }

                """],
            expected: ["j.yaml:18:58: spec.mappings[1].resolve.job: no Job named 'j3' exists (did you mean 'j1'?)",
                       "j.yaml:19:57: spec.mappings[2].resolve.job: job 'j1' writes to connection 'dst', not 'src', so the DNs it gives are not this destination's; resolve by attribute to look objects up here instead",
                       "j.yaml:20:58: spec.mappings[3].resolve.job: job 'j4' matches rows by 2 keys, so one value cannot name a row; add by: (one of its source columns) or from: dn"]),
    BadCase(name: "resolve: its shapes, and the fields that go with it",
            files: ["j.yaml": header + """
                kind: Job
                metadata: { name: j1 }
                spec:
                  source: { connection: src }
                  destination: { connection: dst, container: "ou=x", rdn: cn }
                  mappings:
                    - { source: id, destination: employeeNumber, key: true, resolve: { job: j1, by: login } }
                    - { source: a, destination: cn, resolve: { job: j1, by: login } }
                    - { source: b, destination: member, resolve: { job: j1, attribute: uid } }
                    - { source: c, destination: manager, resolve: { job: j1, by: x, from: rdn, base: "ou=y" } }
                    - { source: d, destination: owner, resolve: { attribute: "e mail", by: x } }
                    - { source: e, destination: mail, onUnresolved: failRow, membership: sometimes }

                """],
            expected: ["j.yaml:8:70: spec.mappings[0].resolve: a key is matched as written, so it cannot be resolved",
                       "j.yaml:9:7: spec.mappings[1].resolve: rdn 'cn' names the object, so its value cannot be a resolved reference",
                       "j.yaml:10:50: spec.mappings[2].resolve: give job (an object another job writes) or attribute (an object the destination holds), not both",
                       "j.yaml:11:66: spec.mappings[3].resolve.by: give by (a source column of the job) or from: dn, not both",
                       "j.yaml:11:75: spec.mappings[3].resolve.from: 'rdn' is not one of dn",
                       "j.yaml:11:86: spec.mappings[3].resolve.base: base 'ou=y' is for resolve by attribute; a job reference looks in the job's own rows",
                       "j.yaml:12:62: spec.mappings[4].resolve.attribute: 'e mail' is not an attribute name",
                       "j.yaml:12:76: spec.mappings[4].resolve.by: by is for resolve by job; by attribute, the value is matched against the attribute",
                       "j.yaml:13:53: spec.mappings[5].onUnresolved: onUnresolved needs resolve: only a reference can fail to resolve",
                       "j.yaml:13:74: spec.mappings[5].membership: 'sometimes' is not one of authoritative, additive"]),
    BadCase(name: "maxValuesPerRequest is for ldap connections",
            files: ["c.yaml": header + "kind: Connection\nmetadata: { name: src }\nspec: { type: csv, repoPath: data/in.csv, maxValuesPerRequest: 10 }\n"
                        + "---\n" + header + "kind: Connection\nmetadata: { name: dst }\n"
                        + "spec: { type: ldap, url: 'ldap://h', baseDN: 'dc=x', maxValuesPerRequest: 0 }\n"],
            expected: ["c.yaml:4:64: spec.maxValuesPerRequest: only an ldap connection has maxValuesPerRequest",
                       "c.yaml:9:75: spec.maxValuesPerRequest: 0 is out of range 1-1000000"]),
    BadCase(name: "missedRuns, startingDeadline and for without from",
            files: ["s.yaml": header + "kind: Schedule\nmetadata: { name: s }\n"
                        + "spec:\n  targets: [x]\n  triggers: [ { every: 1h, for: 8h } ]\n  missedRuns: always\n  startingDeadline: later\n"],
            expected: ["s.yaml:6:33: spec.triggers[0].for: for counts from a start: give from as well",
                       "s.yaml:7:15: spec.missedRuns: 'always' is not one of skip, runOnce",
                       "s.yaml:8:21: spec.startingDeadline: 'later' is not a duration like 10m or 1h"]),
]

@Test("each bad repository reports exactly its problems", arguments: badCases.filter { !$0.expected.isEmpty })
func badRepository(_ bad: BadCase) {
    #expect(problems(bad.files) == bad.expected)
}

@Test func corpusIsLargeEnough() {
    #expect(badCases.filter { !$0.expected.isEmpty }.count >= 25)
}

@Test func invalidUTF8IsReported() {
    let (manifests, found) = ManifestParser.parse(file: "bin.yaml", contents: Data([0x6B, 0x3A, 0x20, 0xFF, 0xFE]))
    #expect(manifests.isEmpty)
    #expect(found.map(\.description) == ["bin.yaml:1:1: the file is not valid UTF-8"])
}

@Test func oneFileReportsEveryProblemInOnePass() {
    let found = problems(["j.yaml": goodJob + "  create: maybe\n  delete: 1\n  extra: 1\n"])
    #expect(found.count == 3)
}
