import Foundation
import Manifests
import TestSupport
import Testing

/// Every kind with every field the parser accepts: valid, and covering every place of the schema.
let kitchenSink = """
    apiVersion: syncwright.dev/v1
    kind: Connection
    metadata: { name: corp, description: The corporate directory }
    spec:
      type: ldap
      url: ldaps://ldap.corp.example:636
      baseDN: dc=corp,dc=example
      bindDN: cn=sync,dc=corp,dc=example
      passwordFrom: { env: CORP_PASSWORD }
      caFile: /etc/ssl/corp-ca.pem
      insecureSkipVerify: false
      startTLS: false
      pageSize: 500
      maxOutstanding: 32
      timeout: 30s
      maxValuesPerRequest: 1000
      secretAttributes: [pin]
    ---
    apiVersion: syncwright.dev/v1
    kind: Connection
    metadata: { name: hr }
    spec: { type: csv, repoPath: data/in.csv, delimiter: ";", secretAttributes: [pin] }
    ---
    apiVersion: syncwright.dev/v1
    kind: Connection
    metadata: { name: out }
    spec: { type: ldif, path: out.ldif }
    ---
    apiVersion: syncwright.dev/v1
    kind: NotificationChannel
    metadata: { name: mail }
    spec:
      type: smtp
      host: mail.corp.example
      port: 587
      tls: starttls
      username: sync
      passwordFrom: { file: /run/secrets/smtp }
      from: Syncwright <sync@corp.example>
      caFile: /etc/ssl/corp-ca.pem
      insecureSkipVerify: false
      timeout: 30s
    ---
    apiVersion: syncwright.dev/v1
    kind: NotificationChannel
    metadata: { name: teams }
    spec: { type: webhook, urlFrom: { env: TEAMS_URL }, format: teams, timeout: 10s }
    ---
    apiVersion: syncwright.dev/v1
    kind: Job
    metadata: { name: users }
    spec:
      source: { connection: hr, filter: 'status == "active"', base: "ou=x" }
      destination: { connection: corp, objectClass: [inetOrgPerson], container: "ou=People,dc=corp,dc=example", rdn: uid }
      mappings:
        - { source: id, destination: employeeNumber, key: true, newOnly: true }
        - { source: login, destination: uid }
        - { destination: cn, value: "{{given}} {{sn}}" }
        - { destination: userPassword, generate: password, newOnly: true }
        - { source: phones, destination: telephoneNumber, delimiter: "|", membership: additive }
        - { source: manager, destination: manager, resolve: { job: users }, onUnresolved: failRow }
        - { source: boss, destination: seeAlso, resolve: { job: users, by: login } }
        - { source: dn, destination: description, resolve: { job: users, from: dn } }
        - { source: owner, destination: owner, resolve: { attribute: employeeNumber, base: "ou=People,dc=corp,dc=example" } }
      create: true
      delete: true
      allowEmptySource: false
      deleteThreshold: { count: 10, percent: 5 }
      secretAttributes: [pin]
      workflow: { approvers: [security@corp.example, "Bob <bob@corp.example>"], expiresAfter: 7d, onScheduledRuns: require }
    ---
    apiVersion: syncwright.dev/v1
    kind: JobCollectionTemplate
    metadata: { name: base }
    spec: { jobs: [ { job: users, onFailure: continue } ] }
    ---
    apiVersion: syncwright.dev/v1
    kind: JobCollectionTemplate
    metadata: { name: derived }
    spec: { template: base }
    ---
    apiVersion: syncwright.dev/v1
    kind: JobCollection
    metadata: { name: nightly }
    spec:
      template: derived
      jobs: [ { job: users, onFailure: abort } ]
      notifications: { when: [jobFails, recovered], recipients: [team@corp.example], channels: [mail, teams], repeatAfter: 1h }
    ---
    apiVersion: syncwright.dev/v1
    kind: Schedule
    metadata: { name: nightly }
    spec:
      targets: [nightly]
      timezone: Europe/Berlin
      triggers:
        - { cron: "30 2 * * *" }
        - { every: 15m, from: "2026-12-01T08:00", for: 8h }
        - { once: "2026-12-24T18:00" }
        - { atStartup: true }
      timeout: 2h
      expires: "2027-01-01T00:00"
      enabled: true
      missedRuns: runOnce
      startingDeadline: 10m
    ---
    apiVersion: syncwright.dev/v1
    kind: Policy
    metadata: { name: protect }
    spec:
      rules:
        - name: r
          description: d
          match: { kinds: [Job, Connection], names: "hr-*", connection: src }
          expression: 'spec.delete == false || exists(spec.workflow)'
          message: m
          enforcement: warn
      limits:
        - { name: l, description: d, match: { connection: src, jobs: "hr-*" }, maxDeletes: 5, maxDeletePercent: 5, per: run,
            approvers: [ops@corp.example] }
      protect:
        - { name: p, description: d, match: { connection: src }, neverWrite: [adminCount], neverDeleteUnder: ["ou=Service,dc=x"],
            approvers: ["Ops <ops@corp.example>"] }
      windows:
        - { name: w, description: d, match: { connection: src, jobs: "*" }, timeZone: Europe/Berlin,
            deny: [ { days: [Mon, Fri], from: "08:00", to: "18:00" } ] }
        - { name: v, timeZone: UTC, allow: [ { days: [Sat], from: "22:00", to: "24:00" } ] }
    ---
    apiVersion: syncwright.dev/v1
    kind: Approval
    metadata: { name: a }
    spec: { request: req-20261127-093000-ab12, decision: deny, reason: not now }

    """

/// The places of the schema and the keys each allows, named as `ManifestParser.acceptedFields` names
/// them: `Job:spec.mappings[]`.
func schemaPlaces(_ schema: [String: Any]) -> [String: Set<String>] {
    let defs = schema["$defs"] as? [String: [String: Any]] ?? [:]
    var out: [String: Set<String>] = [:]
    func walk(_ node: [String: Any], _ place: String) {
        if let ref = node["$ref"] as? String, let target = defs[String(ref.split(separator: "/").last ?? "")] {
            walk(target, place)
            return
        }
        if let properties = node["properties"] as? [String: Any], node["type"] as? String == "object" {
            out[place, default: []].formUnion(properties.keys)
            for (key, value) in properties {
                if let child = value as? [String: Any] { walk(child, place.hasSuffix(":") ? place + key : "\(place).\(key)") }
            }
        }
        if let items = node["items"] as? [String: Any] { walk(items, place + "[]") }
    }
    for kind in Kind.allCases {
        var top = schema
        var properties = top["properties"] as? [String: Any] ?? [:]
        properties["spec"] = ["$ref": "#/$defs/\(kind.rawValue)"]
        top["properties"] = properties
        walk(top, "\(kind.rawValue):")
    }
    return out
}

/// Runs Python's jsonschema over `files` (name → YAML); the errors of each.
func schemaErrors(_ files: [String: String]) throws -> [String: [String]] {
    let folder = try TemporaryFolder()
    let schemaPath = folder.sub("schema.json")
    try ManifestSchema.json().write(toFile: schemaPath, atomically: true, encoding: .utf8)
    let request = try JSONSerialization.data(withJSONObject: ["schema": schemaPath, "files": files])
    let requestPath = folder.sub("request.json")
    try request.write(to: URL(fileURLWithPath: requestPath))
    let result = try runProcess("/bin/sh", ["-c", "/usr/bin/python3 \(packageRoot)/Tests/Oracles/schema_check.py < \(requestPath)"])
    #expect(result.status == 0, "\(result.stderr)")
    return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: [String]] ?? [:]
}

/// Corpus cases a schema can express: a field unknown, missing, of the wrong type, out of range,
/// not one of its values, or breaking a "one of" rule. The rest need the whole repository or a
/// parser (YAML syntax, references, duplicates, templates, cron, filters, time zones, files).
let schemaLevelCases: Set<String> = [
    "document is a list", "missing apiVersion", "wrong apiVersion", "unknown kind",
    "approval: a deny without a reason", "approval: an unknown decision",
    "approval: a request id that is no id, and an unknown field",
    "workflow: an approver with no address, a bad expiry, an unknown onScheduledRuns",
    "missing spec", "invalid name", "unknown top-level field", "unknown metadata field", "unknown job field (typo)",
    "wrong type: bool as string", "wrong type: mappings is a mapping", "job with no key mapping",
    "mapping with both source and value", "generate something unknown", "key that is not new-only",
    "delete threshold out of range", "csv delimiter of two characters", "rdn without container",
    "csv connection with neither path nor repoPath", "connection type unknown", "ldap connection without url, with a path",
    "ldap bindDN without passwordFrom", "passwordFrom with both env and file",
    "ldap startTLS on an ldaps URL, and a page size of 0", "ldap caFile and insecureSkipVerify together, and a zero timeout",
    "ldap settings on a file connection", "repoPath escaping the repository", "bad onFailure",
    "notification trigger unknown", "trigger with two kinds and a bad interval",
    "notification channels: smtp and webhook fields mixed, a password without TLS, a bad sender", "bad timestamp and duration",
    "resolve: its shapes, and the fields that go with it", "maxValuesPerRequest is for ldap connections",
    "missedRuns, startingDeadline and for without from",
]

@Suite struct SchemaTests {
    @Test func theSchemaAllowsExactlyTheFieldsTheParserAccepts() throws {
        let parsed = ManifestParser.parse(file: "sink.yaml", contents: Data(kitchenSink.utf8))
        #expect(parsed.problems.isEmpty, "\(parsed.problems)")
        let accepted = ManifestParser.acceptedFields(contents: Data(kitchenSink.utf8))
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(ManifestSchema.json().utf8)) as? [String: Any])
        let places = schemaPlaces(schema)
        for (place, keys) in accepted {
            #expect(places[place] == keys, "\(place): the parser accepts \(keys.sorted()), the schema allows \((places[place] ?? []).sorted())")
        }
        // Every place of the schema is one the parser reads (the kitchen sink reaches them all).
        let onlySchema = Set(places.keys).subtracting(accepted.keys).sorted()
        let onlyParser = Set(accepted.keys).subtracting(places.keys).sorted()
        #expect(onlySchema.isEmpty && onlyParser.isEmpty, "only in the schema: \(onlySchema); only in the parser: \(onlyParser)")
    }

    @Test func theExamplesSchemaIsWhatSyncwrightSchemaPrints() throws {
        let saved = try String(contentsOfFile: packageRoot + "/examples/schema.json", encoding: .utf8)
        #expect(saved == ManifestSchema.json(), "examples/schema.json is out of date: run syncwright schema > examples/schema.json")
        let settings = try String(contentsOfFile: packageRoot + "/examples/.vscode/settings.json", encoding: .utf8)
        #expect(settings.contains("\"./schema.json\""))
    }

    @Test func everyExampleAndTheKitchenSinkPassTheSchema() throws {
        var files = ["kitchen-sink": kitchenSink]
        let examples = packageRoot + "/examples"
        for case let path as String in FileManager.default.enumerator(atPath: examples)! where ManifestParser.isManifestPath(path) {
            files[path] = try String(contentsOfFile: examples + "/" + path, encoding: .utf8)
        }
        #expect(files.count > 10)
        let errors = try schemaErrors(files)
        #expect(errors.count == files.count)
        for (name, found) in errors { #expect(found.isEmpty, "\(name): \(found)") }
    }

    @Test func theCorpusSchemaLevelCasesFailTheSchema() throws {
        let names = Set(badCases.map(\.name))
        #expect(schemaLevelCases.isSubset(of: names), "no such corpus case: \(schemaLevelCases.subtracting(names).sorted())")
        var files: [String: String] = [:]
        for bad in badCases where schemaLevelCases.contains(bad.name) {
            for (path, text) in bad.files where ManifestParser.isManifestPath(path) { files["\(bad.name) | \(path)"] = text }
        }
        let errors = try schemaErrors(files)
        for bad in badCases where schemaLevelCases.contains(bad.name) {
            let found = errors.filter { $0.key.hasPrefix("\(bad.name) | ") }.flatMap(\.value)
            #expect(!found.isEmpty, "\(bad.name): the schema accepts what validate rejects: \(bad.expected)")
        }
    }
}
