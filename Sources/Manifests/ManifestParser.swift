import Foundation
import Yams

/// Reads manifest files: YAML syntax, document header, and each kind's fields, strictly.
///
/// Checks that need other documents (references, duplicates, templates) are `DesiredState`'s.
public enum ManifestParser {
    /// True for the files the config repository is made of.
    public static func isManifestPath(_ path: String) -> Bool {
        path.hasSuffix(".yaml") || path.hasSuffix(".yml")
    }

    /// Decodes every document in one file. Empty documents are skipped.
    ///
    /// `locatingEveryField` keeps every field's position (`Manifest.location(of:)`), not only those
    /// of references and names: slower, for the files a later check found a problem in.
    public static func parse(file: String, contents: Data,
                             locatingEveryField: Bool = false) -> (manifests: [Manifest], problems: [ManifestProblem]) {
        parse(contents, ReadContext(file: file, trackAll: locatingEveryField))
    }

    /// What the parser accepts, as it reads `contents`: per place (`Job:spec.mappings[]`, `:`
    /// for the document itself), the keys it reads there. Tests hold `ManifestSchema` to it.
    public static func acceptedFields(contents: Data) -> [String: Set<String>] {
        let context = ReadContext(file: "schema-check.yaml")
        context.accepted = [:]
        _ = parse(contents, context)
        return context.accepted ?? [:]
    }

    private static func parse(_ contents: Data, _ context: ReadContext) -> (manifests: [Manifest], problems: [ManifestProblem]) {
        let file = context.file
        guard let text = String(data: contents, encoding: .utf8) else {
            return ([], [ManifestProblem(SourceLocation(file: file, line: 1, column: 1), field: "",
                                         "the file is not valid UTF-8")])
        }
        var manifests: [Manifest] = []
        do {
            // Scalars are interpreted by the reader, so Yams need not guess tags (its default resolver runs
            // regular expressions on every scalar). The encoding is given because Yams' default reads the
            // whole process environment for every parser.
            let parser = try Parser(yaml: text, resolver: .basic, encoding: .utf8)
            while let root = try parser.nextRoot() {
                if isNull(root) { continue }
                context.fieldLocations = [:]
                if let manifest = document(root, context: context) {
                    manifests.append(manifest)
                }
            }
        } catch let error as YamlError {
            context.problems.append(syntaxProblem(error, file: file, text: text))
        } catch {
            context.problems.append(ManifestProblem(SourceLocation(file: file, line: 1, column: 1), field: "",
                                                    "cannot read YAML: \(error)"))
        }
        return (manifests, context.problems)
    }

    /// Every document's kind and name as written, read loosely (no field is checked): with the
    /// parsed manifests' keys, tells which documents were declared but are invalid.
    public static func declaredKeys(in files: [ManifestFile]) -> Set<ObjectKey> {
        var keys: Set<ObjectKey> = []
        for file in files {
            guard let text = String(data: file.contents, encoding: .utf8),
                  let parser = try? Parser(yaml: text, resolver: .basic, encoding: .utf8) else { continue }
            while let root = try? parser.nextRoot() {
                guard case .mapping(let map) = root,
                      let kind = map["kind"]?.scalar.flatMap({ Kind(rawValue: $0.string) }),
                      case .mapping(let metadata)? = map["metadata"],
                      let name = metadata["name"]?.scalar?.string else { continue }
                keys.insert(ObjectKey(kind, name))
            }
        }
        return keys
    }

    static func syntaxProblem(_ error: YamlError, file: String, text: String) -> ManifestProblem {
        switch error {
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.sorted().first ?? ""
            let place = secondOccurrence(of: key, in: text, after: context.mark.line)
                ?? SourceLocation(file: file, line: context.mark.line, column: context.mark.column)
            return ManifestProblem(SourceLocation(file: file, line: place.line, column: place.column), field: "",
                                   "duplicate key '\(key)': a mapping may name each key once")
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { "\(problem) \($0.text)" } ?? problem
            return ManifestProblem(SourceLocation(file: file, line: mark.line, column: mark.column), field: "",
                                   "YAML syntax error: \(detail)")
        case .reader(let problem, _, _, _):
            return ManifestProblem(SourceLocation(file: file, line: 1, column: 1), field: "",
                                   "YAML syntax error: \(problem)")
        default:
            return ManifestProblem(SourceLocation(file: file, line: 1, column: 1), field: "",
                                   "YAML syntax error: \(error)")
        }
    }

    /// Where a block-style key appears for the second time (Yams reports only the mapping's position).
    private static func secondOccurrence(of key: String, in text: String, after line: Int) -> SourceLocation? {
        var seen = 0
        for (index, content) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let stripped = content.drop { $0 == " " || $0 == "-" }
            guard stripped.hasPrefix(key), stripped.dropFirst(key.count).drop(while: { $0 == " " }).hasPrefix(":")
            else { continue }
            seen += 1
            if seen == 2 {
                return SourceLocation(file: "", line: index + 1, column: content.count - stripped.count + 1)
            }
        }
        return nil
    }

    private static func document(_ root: Node, context: ReadContext) -> Manifest? {
        guard var top = MapReader(root, path: "", context: context) else { return nil }
        let before = context.problems.count
        let version = top.string("apiVersion", required: true)
        if let version, version != apiVersion {
            context.fail(top.value("apiVersion"), "apiVersion",
                         "unsupported apiVersion '\(version)' (expected \(apiVersion))")
        }
        let kindText = top.string("kind", required: true)
        context.kind = kindText ?? ""
        var kind: Kind?
        if let kindText {
            kind = Kind(rawValue: kindText)
            if kind == nil {
                let known = Kind.allCases.map(\.rawValue).sorted().joined(separator: ", ")
                context.fail(top.value("kind"), "kind", "unknown kind '\(kindText)' (expected one of: \(known))")
            }
        }
        var metadata: Metadata?
        if var meta = top.map("metadata", required: true) {
            let name = meta.string("name", required: true)
            let description = meta.string("description")
            meta.finish()
            if let name {
                if let reason = nameProblem(name) {
                    context.fail(meta.value("name"), "metadata.name", reason)
                } else {
                    metadata = Metadata(name: name, description: description)
                }
            }
        }
        var spec: Spec?
        if let specNode = top.value("spec") {
            if let kind, var reader = MapReader(specNode, path: "spec", context: context) {
                spec = decodeSpec(kind, &reader)
                reader.finish()
            }
        } else {
            top.missing("spec")
        }
        top.finish()
        guard context.problems.count == before, let metadata, let spec else { return nil }
        return Manifest(metadata: metadata, spec: spec, file: context.file, location: context.location(root),
                        fieldLocations: context.fieldLocations)
    }

    /// Why `name` is not a valid object name, or nil when it is.
    public static func nameProblem(_ name: String) -> String? {
        // `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, checked by hand: a Regex literal is re-parsed on every call.
        let bytes = Array(name.utf8)
        func alphanumeric(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        let valid = !bytes.isEmpty && bytes.count <= 63
            && alphanumeric(bytes[0]) && alphanumeric(bytes[bytes.count - 1])
            && bytes.allSatisfy { alphanumeric($0) || $0 == 0x2D }
        return valid ? nil : "'\(name)' is not a valid name: use at most 63 lowercase letters, digits and '-', "
            + "starting and ending with a letter or digit"
    }

    private static func decodeSpec(_ kind: Kind, _ r: inout MapReader) -> Spec? {
        switch kind {
        case .connection: return decodeConnection(&r).map(Spec.connection)
        case .notificationChannel: return decodeChannel(&r).map(Spec.notificationChannel)
        case .job: return decodeJob(&r).map(Spec.job)
        case .jobCollectionTemplate:
            let template = r.string("template")
            let jobs = decodeEntries(&r)
            return jobs.map { .jobCollectionTemplate(JobCollectionTemplateSpec(template: template, jobs: $0)) }
        case .jobCollection: return decodeCollection(&r).map(Spec.jobCollection)
        case .schedule: return decodeSchedule(&r).map(Spec.schedule)
        case .policy: return decodePolicy(&r).map(Spec.policy)
        case .approval: return decodeApproval(&r).map(Spec.approval)
        }
    }

    // MARK: Connection

    private static func decodeConnection(_ r: inout MapReader) -> ConnectionSpec? {
        let context = r.context
        let type = r.enumeration("type", ConnectionType.self, required: true)
        let path = r.string("path")
        let repoPath = r.string("repoPath")
        let baseDN = r.string("baseDN")
        let url = r.string("url")
        let bindDN = r.string("bindDN")
        let delimiter = r.string("delimiter")
        let secrets = secretAttributes(&r)
        let startTLS = r.bool("startTLS")
        let caFile = r.string("caFile")
        let insecureSkipVerify = r.bool("insecureSkipVerify")
        let pageSize = r.int("pageSize", in: 1...100_000)
        let flavor = r.enumeration("flavor", LDAPFlavor.self)
        let maxOutstanding = r.int("maxOutstanding", in: 1...1_024)
        let timeout = r.duration("timeout", example: "30s or 2m")
        let maxValuesPerRequest = r.int("maxValuesPerRequest", in: 1...1_000_000)
        let password = secretReference(&r, "passwordFrom")
        guard let type else { return nil }
        switch type {
        case .csv, .ldif:
            if (path == nil) == (repoPath == nil) {
                context.fail(r.node, "spec", "a \(type.rawValue) connection needs exactly one of path or repoPath")
            }
            for (field, value) in [("url", url), ("bindDN", bindDN)] where value != nil {
                context.fail(r.value(field), "spec.\(field)", "only an ldap connection has \(field)")
            }
            if password != nil {
                context.fail(r.value("passwordFrom"), "spec.passwordFrom", "only an ldap connection has passwordFrom")
            }
            for field in ["baseDN", "startTLS", "caFile", "insecureSkipVerify", "pageSize", "maxOutstanding", "timeout", "maxValuesPerRequest",
                          "flavor"]
            where r.has(field) {
                context.fail(r.value(field), "spec.\(field)", "only an ldap connection has \(field)")
            }
            if let delimiter {
                if type != .csv {
                    context.fail(r.value("delimiter"), "spec.delimiter", "only a csv connection has a delimiter")
                } else if delimiter.count != 1 || delimiter == "\"" || delimiter == "\n" || delimiter == "\r" {
                    context.fail(r.value("delimiter"), "spec.delimiter",
                                 "'\(delimiter)' must be one character other than a quote or a line break (e.g. ';' or a tab)")
                }
            }
        case .ldap:
            if let url {
                if !(url.hasPrefix("ldap://") || url.hasPrefix("ldaps://")) {
                    context.fail(r.value("url"), "spec.url", "'\(url)' must start with ldap:// or ldaps://")
                }
            } else {
                r.missing("url")
            }
            if baseDN == nil { r.missing("baseDN") }
            for (field, value) in [("path", path), ("repoPath", repoPath), ("delimiter", delimiter)] where value != nil {
                context.fail(r.value(field), "spec.\(field)", "an ldap connection has no \(field); use url")
            }
            if bindDN != nil && password == nil && !r.has("passwordFrom") {
                context.fail(r.value("bindDN"), "spec.passwordFrom", "bindDN needs passwordFrom (env or file)")
            }
            if startTLS == true, let url, url.hasPrefix("ldaps://") {
                context.fail(r.value("startTLS"), "spec.startTLS", "startTLS is for ldap:// URLs; ldaps:// is TLS from the start")
            }
            if insecureSkipVerify == true && caFile != nil {
                context.fail(r.value("insecureSkipVerify"), "spec.insecureSkipVerify",
                             "give caFile to trust a private CA, or insecureSkipVerify to trust anything, not both")
            }
            // Active Directory refuses a simple bind without transport encryption (and a password
            // sent in clear text is one an eavesdropper has).
            if flavor == .activeDirectory, let url, url.hasPrefix("ldap://"), startTLS != true {
                context.fail(r.value("url"), "spec.url", "Active Directory refuses plain binds without transport encryption: "
                    + "use an ldaps:// URL, or startTLS: true")
            }
        }
        if let repoPath, repoPath.hasPrefix("/") || repoPath.split(separator: "/").contains("..") {
            context.fail(r.value("repoPath"), "spec.repoPath",
                         "'\(repoPath)' must be a path inside the repository, without '..' or a leading '/'")
        }
        return ConnectionSpec(type: type, path: path, repoPath: repoPath, baseDN: baseDN, url: url,
                              bindDN: bindDN, passwordFrom: password, delimiter: delimiter, secretAttributes: secrets,
                              startTLS: startTLS, caFile: caFile, insecureSkipVerify: insecureSkipVerify, pageSize: pageSize,
                              maxOutstanding: maxOutstanding, timeout: timeout, maxValuesPerRequest: maxValuesPerRequest,
                              flavor: flavor)
    }

    /// A secret named by reference (`{ env }` or `{ file }`), never written in a manifest.
    private static func secretReference(_ r: inout MapReader, _ key: String) -> SecretReference? {
        guard var p = r.map(key) else { return nil }
        let env = p.string("env")
        let file = p.string("file")
        p.finish()
        if (env == nil) == (file == nil) {
            r.context.fail(p.node, "spec.\(key)", "give exactly one of env or file")
            return nil
        }
        return SecretReference(env: env, file: file)
    }

    // MARK: NotificationChannel

    private static func decodeChannel(_ r: inout MapReader) -> NotificationChannelSpec? {
        let context = r.context
        let type = r.enumeration("type", NotificationChannelType.self, required: true)
        let host = r.string("host")
        let port = r.int("port", in: 1...65_535)
        let tls = r.enumeration("tls", MailSecurity.self)
        let username = r.string("username")
        let password = secretReference(&r, "passwordFrom")
        let from = r.string("from")
        let url = secretReference(&r, "urlFrom")
        let format = r.enumeration("format", WebhookFormat.self)
        let caFile = r.string("caFile")
        let insecureSkipVerify = r.bool("insecureSkipVerify")
        let timeout = r.duration("timeout", example: "30s or 2m")
        guard let type else { return nil }
        switch type {
        case .smtp:
            if host == nil { r.missing("host") }
            if let from {
                if !Workflow.isEmail(from) {
                    context.fail(r.value("from"), "spec.from", "'\(from)' is not an email address (write sync@corp.example or Syncwright <sync@corp.example>)")
                }
            } else {
                r.missing("from")
            }
            for field in ["urlFrom", "format"] where r.has(field) {
                context.fail(r.value(field), "spec.\(field)", "only a webhook channel has \(field)")
            }
            if username == nil && r.has("passwordFrom") {
                context.fail(r.value("passwordFrom"), "spec.username", "passwordFrom needs username")
            }
            if username != nil && !r.has("passwordFrom") {
                context.fail(r.value("username"), "spec.passwordFrom", "username needs passwordFrom (env or file)")
            }
            if tls == MailSecurity.none && username != nil {
                context.fail(r.value("username"), "spec.username", "a password is never sent without TLS: use tls: starttls or implicit")
            }
            if tls == MailSecurity.none && (caFile != nil || insecureSkipVerify != nil) {
                context.fail(r.value(caFile != nil ? "caFile" : "insecureSkipVerify"), "spec.tls", "tls: none has no certificate to check")
            }
        case .webhook:
            if !r.has("urlFrom") { r.missing("urlFrom") }
            for field in ["host", "port", "tls", "username", "passwordFrom", "from"] where r.has(field) {
                context.fail(r.value(field), "spec.\(field)", "only an smtp channel has \(field)")
            }
        }
        if insecureSkipVerify == true && caFile != nil {
            context.fail(r.value("insecureSkipVerify"), "spec.insecureSkipVerify",
                         "give caFile to trust a private CA, or insecureSkipVerify to trust anything, not both")
        }
        return NotificationChannelSpec(type: type, host: host, port: port, tls: tls, username: username, passwordFrom: password,
                                       from: from, urlFrom: url, format: format, caFile: caFile,
                                       insecureSkipVerify: insecureSkipVerify, timeout: timeout)
    }

    /// `secretAttributes`: attribute names whose values are masked in logs, reports and previews.
    private static func secretAttributes(_ r: inout MapReader) -> [String]? {
        guard let names = r.stringList("secretAttributes") else { return nil }
        for name in names where name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ";") }) {
            r.context.fail(r.value("secretAttributes"), "spec.secretAttributes", "'\(name)' is not an attribute name")
        }
        return names
    }

    // MARK: Job

    private static func decodeJob(_ r: inout MapReader) -> JobSpec? {
        let context = r.context
        var source: JobSource?
        if var s = r.map("source", required: true) {
            let connection = s.string("connection", required: true)
            let filter = s.string("filter")
            if let filter {
                do { _ = try FilterExpression.parse(filter) } catch {
                    context.fail(s.value("filter"), "spec.source.filter", error.description)
                }
            }
            let base = s.string("base")
            s.finish()
            source = connection.map { JobSource(connection: $0, filter: filter, base: base) }
        }
        var destination: JobDestination?
        if var d = r.map("destination", required: true) {
            let connection = d.string("connection", required: true)
            let objectClass = d.stringList("objectClass") ?? []
            let container = d.string("container")
            let rdn = d.string("rdn")
            if rdn != nil && container == nil { d.missing("container") }
            if container != nil && rdn == nil { d.missing("rdn") }
            d.finish()
            destination = connection.map {
                JobDestination(connection: $0, objectClass: objectClass, container: container, rdn: rdn)
            }
        }
        var mappings: [FieldMapping] = []
        if let items = r.list("mappings", required: true) {
            var destinations: [String: String] = [:]
            for (item, path) in items {
                guard var m = MapReader(item, path: path, context: context) else { continue }
                let mapping = decodeMapping(&m)
                m.finish()
                guard let mapping else { continue }
                if let first = destinations[mapping.destination.lowercased()] {
                    context.fail(item, "\(path).destination",
                                 "destination '\(mapping.destination)' is already mapped by \(first)")
                }
                destinations[mapping.destination.lowercased()] = path
                if let rdn = destination?.rdn, mapping.destination.lowercased() == rdn.lowercased(), mapping.resolve != nil {
                    context.fail(item, "\(path).resolve", "rdn '\(rdn)' names the object, so its value cannot be a resolved reference")
                }
                mappings.append(mapping)
            }
            if !items.isEmpty && mappings.count == items.count && !mappings.contains(where: \.key) {
                context.fail(r.value("mappings"), "spec.mappings",
                             "a job needs at least one mapping with key: true, to match source and destination objects")
            }
            if items.isEmpty {
                context.fail(r.value("mappings"), "spec.mappings", "a job needs at least one mapping")
            }
            if let rdn = destination?.rdn, !mappings.isEmpty, !mappings.contains(where: { $0.destination.lowercased() == rdn.lowercased() }) {
                context.fail(r.value("destination"), "spec.destination.rdn",
                             "rdn '\(rdn)' is not the destination of any mapping")
            }
        }
        let create = r.bool("create") ?? true
        let delete = r.bool("delete") ?? false
        let allowEmptySource = r.bool("allowEmptySource") ?? false
        let secrets = secretAttributes(&r)
        var threshold = DeleteThreshold.standard
        if var t = r.map("deleteThreshold") {
            let count = t.int("count", in: 0...Int(Int32.max))
            let percent = t.int("percent", in: 0...100)
            t.finish()
            if !t.has("count") && !t.has("percent") {
                context.fail(t.node, "spec.deleteThreshold", "give count, percent or both")
            }
            threshold = DeleteThreshold(count: count, percent: percent)
        }
        var workflow: Workflow?
        if var w = r.map("workflow") {
            var approvers: [String] = []
            let items = w.list("approvers", required: true)
            for (item, itemPath) in items ?? [] {
                guard case .scalar(let scalar) = item, !isNull(item) else {
                    context.fail(item, itemPath, "expected a string, found \(shape(item))")
                    continue
                }
                if !Workflow.isEmail(scalar.string) {
                    context.fail(item, itemPath, "'\(scalar.string)' is not an email address "
                                 + "(write bob@corp.example or Bob <bob@corp.example>)")
                }
                approvers.append(scalar.string)
            }
            let expiresAfter = w.duration("expiresAfter", example: "7d or 12h")
            let onScheduledRuns = w.enumeration("onScheduledRuns", OnScheduledRuns.self)
            w.finish()
            if let items, items.isEmpty {
                context.fail(w.value("approvers"), "spec.workflow.approvers", "name at least one approver")
            }
            workflow = Workflow(approvers: approvers, expiresAfter: expiresAfter, onScheduledRuns: onScheduledRuns)
        }
        guard let source, let destination else { return nil }
        return JobSpec(source: source, destination: destination, mappings: mappings, create: create,
                       delete: delete, workflow: workflow, allowEmptySource: allowEmptySource, deleteThreshold: threshold,
                       secretAttributes: secrets)
    }

    private static func decodeMapping(_ m: inout MapReader) -> FieldMapping? {
        let context = m.context
        let path = m.path
        let destination = m.string("destination", required: true)
        let source = m.string("source")
        let value = m.string("value")
        let generate = m.string("generate")
        let key = m.bool("key") ?? false
        let newOnlyWritten = m.bool("newOnly")
        let delimiter = m.string("delimiter")
        let ways = [source, value, generate].compactMap { $0 }.count
        if ways != 1 {
            context.fail(m.node, path, ways == 0 ? "give one of source, value or generate"
                                                 : "give only one of source, value or generate")
        }
        if let generate, generate != "password" {
            context.fail(m.value("generate"), "\(path).generate", "'\(generate)' cannot be generated (only: password)")
        }
        if key && generate != nil {
            context.fail(m.value("key"), "\(path).key", "a generated value cannot be a key")
        }
        if key && newOnlyWritten == false {
            context.fail(m.value("newOnly"), "\(path).newOnly", "a key field is always new-only")
        }
        if let delimiter, delimiter.isEmpty {
            context.fail(m.value("delimiter"), "\(path).delimiter", "must not be empty")
        }
        if let value {
            do { _ = try ValueTemplate.parse(value) } catch {
                context.fail(m.value("value"), "\(path).value", error.description)
            }
        }
        var resolve: ValueReference?
        if var r = m.map("resolve") {
            resolve = decodeReference(&r)
            r.finish()
            if key { context.fail(m.value("resolve"), "\(path).resolve", "a key is matched as written, so it cannot be resolved") }
            if generate != nil { context.fail(m.value("resolve"), "\(path).resolve", "a generated value cannot be resolved") }
        }
        let onUnresolved = m.enumeration("onUnresolved", OnUnresolved.self)
        if onUnresolved != nil && !m.has("resolve") {
            context.fail(m.value("onUnresolved"), "\(path).onUnresolved", "onUnresolved needs resolve: only a reference can fail to resolve")
        }
        let membership = m.enumeration("membership", Membership.self)
        if membership != nil && (key || generate != nil) {
            context.fail(m.value("membership"), "\(path).membership", "membership is for mapped values, not for a key or a generated value")
        }
        guard let destination else { return nil }
        return FieldMapping(source: source, destination: destination, value: value, generate: generate,
                            key: key, newOnly: key || (newOnlyWritten ?? false), delimiter: delimiter,
                            resolve: resolve, onUnresolved: onUnresolved, membership: membership)
    }

    /// `resolve`: `{ job, by | from }` or `{ attribute, base }`.
    private static func decodeReference(_ r: inout MapReader) -> ValueReference? {
        let context = r.context
        let job = r.string("job")
        let by = r.string("by")
        let from = r.enumeration("from", ValueReference.From.self)
        let attribute = r.string("attribute")
        let base = r.string("base")
        if (job == nil) == (attribute == nil) {
            context.fail(r.node, r.path, "give job (an object another job writes) or attribute (an object the destination holds), not both")
            return nil
        }
        if job != nil {
            if by != nil && r.has("from") {
                context.fail(r.value("by"), "\(r.path).by", "give by (a source column of the job) or from: dn, not both")
            }
            if let base { context.fail(r.value("base"), "\(r.path).base", "base '\(base)' is for resolve by attribute; a job reference looks in the job's own rows") }
        } else {
            for field in ["by", "from"] where r.has(field) {
                context.fail(r.value(field), "\(r.path).\(field)", "\(field) is for resolve by job; by attribute, the value is matched against the attribute")
            }
        }
        if let by, by.isEmpty { context.fail(r.value("by"), "\(r.path).by", "must not be empty") }
        if let attribute, attribute.isEmpty || !attribute.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
            context.fail(r.value("attribute"), "\(r.path).attribute", "'\(attribute)' is not an attribute name")
        }
        return ValueReference(job: job, by: by, from: from, attribute: attribute, base: base)
    }

    // MARK: Collections

    private static func decodeEntries(_ r: inout MapReader) -> [CollectionEntry]? {
        let context = r.context
        guard let items = r.list("jobs", required: !r.has("template")) else {
            return r.has("jobs") ? nil : []
        }
        var entries: [CollectionEntry] = []
        var failed = false
        for (item, path) in items {
            guard var e = MapReader(item, path: path, context: context) else { failed = true; continue }
            let job = e.string("job", required: true)
            let onFailure = e.enumeration("onFailure", OnFailure.self)
            let badFailure = e.has("onFailure") && onFailure == nil
            e.finish()
            guard let job, !badFailure else { failed = true; continue }
            entries.append(CollectionEntry(job: job, onFailure: onFailure ?? .abort))
        }
        return failed ? nil : entries
    }

    private static func decodeCollection(_ r: inout MapReader) -> JobCollectionSpec? {
        let context = r.context
        let template = r.string("template")
        let jobs = decodeEntries(&r)
        var notifications: Notifications?
        if var n = r.map("notifications") {
            var triggers: [NotificationTrigger] = []
            for (item, path) in n.list("when") ?? [] {
                if case .scalar(let s) = item, let trigger = NotificationTrigger(rawValue: s.string) {
                    if !triggers.contains(trigger) { triggers.append(trigger) }
                } else {
                    let allowed = NotificationTrigger.allCases.map(\.rawValue).joined(separator: ", ")
                    context.fail(item, path, "\(shape(item)) is not one of \(allowed)")
                }
            }
            if n.has("when") && triggers.isEmpty && !context.problems.contains(where: { $0.field.hasPrefix("spec.notifications.when") }) {
                context.fail(n.value("when"), "spec.notifications.when", "name at least one trigger, or leave when out for jobFails and recovered")
            }
            let recipients = n.stringList("recipients") ?? []
            for (index, recipient) in recipients.enumerated() {
                if !Workflow.isEmail(recipient) {
                    context.fail(n.value("recipients"), "spec.notifications.recipients[\(index)]",
                                 "'\(recipient)' is not an email address")
                }
            }
            let channels = n.stringList("channels") ?? []
            let repeatAfter = n.duration("repeatAfter", example: "1h or 30m")
            if !n.has("channels") {
                n.missing("channels")
            } else if channels.isEmpty {
                context.fail(n.value("channels"), "spec.notifications.channels", "name at least one NotificationChannel")
            }
            n.finish()
            notifications = Notifications(when: n.has("when") ? triggers : NotificationTrigger.defaults, recipients: recipients,
                                          channels: channels, repeatAfter: repeatAfter)
        }
        guard let jobs else { return nil }
        return JobCollectionSpec(template: template, jobs: jobs, notifications: notifications)
    }

    // MARK: Schedule

    private static func decodeSchedule(_ r: inout MapReader) -> ScheduleSpec? {
        let context = r.context
        let targets = r.stringList("targets", required: true) ?? []
        if r.has("targets") && targets.isEmpty {
            context.fail(r.value("targets"), "spec.targets", "name at least one collection")
        }
        let timezone = r.string("timezone") ?? "UTC"
        if TimeZone(identifier: timezone) == nil {
            let suggestion = Suggestion.nearest(to: timezone, among: TimeZone.knownTimeZoneIdentifiers)
            context.fail(r.value("timezone"), "spec.timezone", "unknown time zone '\(timezone)' "
                         + (suggestion.map { "(did you mean '\($0)'?)" } ?? "(use an IANA name like Europe/Berlin)"))
        }
        var triggers: [Trigger] = []
        if let items = r.list("triggers", required: true) {
            if items.isEmpty { context.fail(r.value("triggers"), "spec.triggers", "give at least one trigger") }
            for (item, path) in items {
                guard var t = MapReader(item, path: path, context: context) else { continue }
                if let trigger = decodeTrigger(&t) { triggers.append(trigger) }
                t.finish()
            }
        }
        let timeout = r.duration("timeout", example: "30m, 2h or 1h30m")
        let expires = r.timestamp("expires", example: "2026-12-31T23:59")
        let enabled = r.bool("enabled") ?? true
        let missedRuns = r.enumeration("missedRuns", MissedRuns.self)
        let startingDeadline = r.duration("startingDeadline", example: "10m or 1h")
        return ScheduleSpec(targets: targets, timezone: timezone, triggers: triggers, timeout: timeout,
                            expires: expires, enabled: enabled, missedRuns: missedRuns,
                            startingDeadline: startingDeadline)
    }

    private static func decodeTrigger(_ t: inout MapReader) -> Trigger? {
        let context = t.context
        let path = t.path
        let present = ["cron", "every", "once", "atStartup"].filter { t.has($0) }
        guard present.count == 1, let which = present.first else {
            _ = ["cron", "every", "once", "atStartup", "from", "for"].map { t.value($0) }
            context.fail(t.node, path, present.isEmpty ? "give one of cron, every, once or atStartup"
                                                        : "give only one of \(present.joined(separator: ", "))")
            return nil
        }
        if which != "every" {
            for extra in ["from", "for"] where t.has(extra) {
                context.fail(t.value(extra), "\(path).\(extra)", "\(extra) goes with every only")
            }
        }
        switch which {
        case "cron":
            guard let text = t.string("cron") else { return nil }
            do {
                _ = try CronExpression(text)
            } catch {
                context.fail(t.value("cron"), "\(path).cron", error.message)
                return nil
            }
            return .cron(text)
        case "every":
            guard let interval = t.duration("every", what: "an interval", example: "30s, 15m, 2h or 1d") else { return nil }
            let from = t.timestamp("from", example: "2026-12-01T08:00")
            let duration = t.duration("for", example: "8h")
            if duration != nil && from == nil && !t.has("from") {
                context.fail(t.value("for"), "\(path).for", "for counts from a start: give from as well")
            }
            return .every(interval: interval, from: from, for: duration)
        case "once":
            guard let text = t.timestamp("once", example: "2026-12-01T08:00") else { return nil }
            return .once(text)
        default:
            guard let on = t.bool("atStartup") else { return nil }
            if !on {
                context.fail(t.value("atStartup"), "\(path).atStartup", "write atStartup: true, or remove the trigger")
            }
            return .atStartup
        }
    }

    // MARK: Approval

    private static func decodeApproval(_ r: inout MapReader) -> ApprovalSpec? {
        let context = r.context
        let request = r.string("request", required: true)
        let decision = r.enumeration("decision", ApprovalDecision.self, required: true)
        let reason = r.string("reason")
        if let request, nameProblem(request) != nil {
            context.fail(r.value("request"), "spec.request",
                         "'\(request)' is not a request id (ids look like req-20261127-093000-ab12; see syncwright requests)")
        }
        if decision == .deny, (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            context.fail(r.value("reason") ?? r.node, "spec.reason", "a deny needs a reason")
        }
        guard let request, let decision else { return nil }
        return ApprovalSpec(request: request, decision: decision, reason: reason)
    }

    // MARK: Policy

    private static func decodePolicy(_ r: inout MapReader) -> PolicySpec? {
        let context = r.context
        var rules: [PolicyRule] = []
        var names: Set<String> = []
        if !r.has("rules") && !r.has("limits") && !r.has("protect") && !r.has("windows") {
            context.fail(r.node, "spec", "a policy needs rules (over the manifests), limits, protect or windows (over what runs write)")
        }
        for (item, path) in r.list("rules") ?? [] {
            guard var p = MapReader(item, path: path, context: context) else { continue }
            let (name, description) = ruleName(&p, path: path, names: &names, context: context)
            let present = p.has("match")
            let match = decodePolicyMatch(p.map("match"), path: "\(path).match", context: context)
            if !present {
                context.fail(p.node, "\(path).match", "required field is missing: which objects the rule checks, e.g. match: { kinds: [Job] }")
            }
            let expression = p.string("expression", required: true)
            if let expression {
                do { _ = try FilterExpression.parse(expression) } catch {
                    context.fail(p.value("expression"), "\(path).expression", error.description)
                }
            }
            let message = p.string("message")
            let enforcement = p.enumeration("enforcement", PolicyEnforcement.self)
            p.finish()
            if let name, let expression, let match {
                rules.append(PolicyRule(name: name, description: description, match: match, expression: expression,
                                        message: message, enforcement: enforcement ?? .deny))
            }
        }
        var limits: [DeleteLimit] = []
        var protect: [Protection] = []
        for (item, path) in r.list("limits") ?? [] {
            guard var l = MapReader(item, path: path, context: context) else { continue }
            let (name, description) = ruleName(&l, path: path, names: &names, context: context)
            let match = decodeRunMatch(l.map("match"), path: "\(path).match", context: context)
            let maxDeletes = l.int("maxDeletes", in: 0...Int(Int32.max))
            let maxPercent = l.int("maxDeletePercent", in: 0...100)
            if !l.has("maxDeletes") && !l.has("maxDeletePercent") {
                context.fail(item, path, "a limit needs maxDeletes, maxDeletePercent or both")
            }
            let per = l.enumeration("per", LimitScope.self)
            let approvers = policyApprovers(&l, path: path, context: context)
            l.finish()
            if let name {
                limits.append(DeleteLimit(name: name, description: description, match: match, maxDeletes: maxDeletes,
                                          maxDeletePercent: maxPercent, per: per ?? .job, approvers: approvers))
            }
        }
        for (item, path) in r.list("protect") ?? [] {
            guard var p = MapReader(item, path: path, context: context) else { continue }
            let (name, description) = ruleName(&p, path: path, names: &names, context: context)
            let match = decodeRunMatch(p.map("match"), path: "\(path).match", context: context)
            let attributes = p.stringList("neverWrite") ?? []
            var containers: [String] = []
            for (dnItem, dnPath) in p.list("neverDeleteUnder") ?? [] {
                guard case .scalar(let scalar) = dnItem, !isNull(dnItem) else {
                    context.fail(dnItem, dnPath, "expected a DN, found \(shape(dnItem))")
                    continue
                }
                guard scalar.string.contains("=") else {
                    context.fail(dnItem, dnPath, "'\(scalar.string)' is not a DN (write e.g. ou=Service Accounts,dc=corp,dc=example)")
                    continue
                }
                containers.append(scalar.string)
            }
            if attributes.isEmpty && containers.isEmpty {
                context.fail(item, path, "a protection needs neverWrite (attributes), neverDeleteUnder (DNs) or both")
            }
            let approvers = policyApprovers(&p, path: path, context: context)
            p.finish()
            if let name {
                protect.append(Protection(name: name, description: description, match: match, neverWrite: attributes,
                                          neverDeleteUnder: containers, approvers: approvers))
            }
        }
        var windows: [SyncWindow] = []
        for (item, path) in r.list("windows") ?? [] {
            guard var w = MapReader(item, path: path, context: context) else { continue }
            let (name, description) = ruleName(&w, path: path, names: &names, context: context)
            let match = decodeRunMatch(w.map("match"), path: "\(path).match", context: context)
            let zone = w.string("timeZone", required: true)
            if let zone, TimeZone(identifier: zone) == nil {
                context.fail(w.value("timeZone"), "\(path).timeZone", "'\(zone)' is not a time zone (write e.g. Europe/Berlin or UTC)")
            }
            let given = (w.has("allow"), w.has("deny"))
            let allow = decodeSpans(w.list("allow"), context: context)
            let deny = decodeSpans(w.list("deny"), context: context)
            if given.0 == given.1 {
                context.fail(item, path, "a window needs allow (writes only then) or deny (no writes then), not both")
            }
            w.finish()
            if let name, let zone {
                windows.append(SyncWindow(name: name, description: description, match: match, timeZone: zone, allow: allow, deny: deny))
            }
        }
        return PolicySpec(rules: rules, limits: limits, protect: protect, windows: windows)
    }

    private static func decodeSpans(_ items: [(node: Node, path: String)]?, context: ReadContext) -> [WindowSpan] {
        var spans: [WindowSpan] = []
        for (item, path) in items ?? [] {
            guard var s = MapReader(item, path: path, context: context) else { continue }
            var days: [Weekday] = []
            for (dayItem, dayPath) in s.list("days", required: true) ?? [] {
                guard case .scalar(let scalar) = dayItem, let day = Weekday(rawValue: scalar.string) else {
                    context.fail(dayItem, dayPath, "\(shape(dayItem)) is not a day (one of: Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
                    continue
                }
                days.append(day)
            }
            var times: [String] = []
            for key in ["from", "to"] {
                guard let text = s.string(key, required: true) else { continue }
                if WindowSpan.minutes(text) == nil {
                    context.fail(s.value(key), "\(path).\(key)", "'\(text)' is not a time of day like 08:00 (00:00 to 24:00)")
                    continue
                }
                times.append(text)
            }
            s.finish()
            if !days.isEmpty, times.count == 2 { spans.append(WindowSpan(days: days, from: times[0], to: times[1])) }
        }
        return spans
    }

    /// A policy entry's `name` (unique among the policy's rules, limits, protections and
    /// windows) and `description`.
    private static func ruleName(_ r: inout MapReader, path: String, names: inout Set<String>,
                                 context: ReadContext) -> (name: String?, description: String?) {
        let name = r.string("name", required: true)
        if let name, !names.insert(name).inserted {
            context.fail(r.value("name"), "\(path).name", "another rule of this policy is named '\(name)'")
        }
        return (name, r.string("description"))
    }

    /// `approvers`: email addresses, as a workflow's.
    private static func policyApprovers(_ r: inout MapReader, path: String, context: ReadContext) -> [String] {
        var approvers: [String] = []
        for (item, itemPath) in r.list("approvers") ?? [] {
            guard case .scalar(let scalar) = item, Workflow.isEmail(scalar.string) else {
                context.fail(item, itemPath, "\(shape(item)) is not an email address (write bob@corp.example or Bob <bob@corp.example>)")
                continue
            }
            approvers.append(scalar.string)
        }
        return approvers
    }

    private static func decodeRunMatch(_ reader: MapReader?, path: String, context: ReadContext) -> RunMatch? {
        guard var m = reader else { return nil }
        let connection = m.string("connection")
        let jobs = m.string("jobs")
        if let jobs, jobs.isEmpty { context.fail(m.value("jobs"), "\(path).jobs", "must not be empty") }
        m.finish()
        return RunMatch(connection: connection, jobs: jobs)
    }

    private static func decodePolicyMatch(_ reader: MapReader?, path: String, context: ReadContext) -> PolicyMatch? {
        guard var m = reader else { return nil }
        var kinds: [Kind] = []
        for (item, itemPath) in m.list("kinds", required: true) ?? [] {
            guard case .scalar(let scalar) = item, let kind = Kind(rawValue: scalar.string) else {
                context.fail(item, itemPath, "\(shape(item)) is not a kind (one of: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            kinds.append(kind)
        }
        if m.has("kinds"), kinds.isEmpty, context.problems.last?.field.hasPrefix("\(path).kinds") != true {
            context.fail(m.value("kinds"), "\(path).kinds", "must name at least one kind")
        }
        let names = m.string("names")
        if let names, names.isEmpty { context.fail(m.value("names"), "\(path).names", "must not be empty") }
        let connection = m.string("connection")
        m.finish()
        guard !kinds.isEmpty else { return nil }
        return PolicyMatch(kinds: kinds, names: names, connection: connection)
    }
}
