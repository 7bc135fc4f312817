import CLDAP
import Foundation

/// How to reach and use an LDAP directory: a `Connection` of `type: ldap`, with its secret read.
public struct LDAPSettings: Sendable {
    public var url: String
    public var startTLS: Bool
    public var caFile: String?
    public var insecureSkipVerify: Bool
    public var bindDN: String?
    /// The bind password, read from its reference just before use; never logged.
    public var password: String?
    public var baseDN: String
    public var pageSize: Int
    /// Seconds to wait for the network, and for any one answer.
    public var timeout: Int
    /// How many write operations may wait for their answers at once.
    public var maxOutstanding: Int
    /// The server is Active Directory (`flavor: activeDirectory`): writes follow its rules
    /// (`ActiveDirectory`).
    public var activeDirectory = false

    public init(url: String, startTLS: Bool = false, caFile: String? = nil, insecureSkipVerify: Bool = false,
                bindDN: String? = nil, password: String? = nil, baseDN: String, pageSize: Int = 500, timeout: Int = 30,
                maxOutstanding: Int = 32) {
        self.url = url
        self.startTLS = startTLS
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
        self.bindDN = bindDN
        self.password = password
        self.baseDN = baseDN
        self.pageSize = pageSize
        self.timeout = timeout
        self.maxOutstanding = maxOutstanding
    }
}

/// A directory server reached through OpenLDAP's libldap.
///
/// Reads are paged searches (RFC 2696), so a server's size limit never truncates a job. Writes
/// take effect at once (there is nothing to commit) and are pipelined: up to `maxOutstanding`
/// operations wait for their answers at a time, each answer mapped back to its object.
///
/// The handle has one owner, this object, which unbinds it. It is used from one thread at a time.
public final class LDAPDirectory: Directory {
    public let settings: LDAPSettings
    /// "connection corp", for messages.
    public let what: String
    private var handle: OpaquePointer?

    public init(_ settings: LDAPSettings, what: String) {
        self.settings = settings
        self.what = what
    }

    deinit {
        if let handle { ldap_unbind_ext(handle, nil, nil) }
    }

    public var traits: DirectoryTraits { DirectoryTraits(readsFromServer: true) }

    public func commit() throws {}

    // MARK: Connecting

    /// The bound handle, connecting and binding on first use.
    func connection() throws -> OpaquePointer {
        if let handle { return handle }
        _ = brokenPipesIgnored
        var ld: OpaquePointer?
        var code = ldap_initialize(&ld, settings.url)
        guard code == LDAP_SUCCESS, let ld else {
            throw DirectoryError.server(connection: what, problem: "\(settings.url) is not a usable LDAP URL (\(LDAPResult.name(code)))")
        }
        var connected = false
        defer { if !connected { ldap_unbind_ext(ld, nil, nil) } }
        var version = LDAP_VERSION3
        ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)
        ldap_set_option(ld, LDAP_OPT_REFERRALS, nil) // LDAP_OPT_OFF: never chase referrals with our credentials
        var timeout = timeval(tv_sec: settings.timeout, tv_usec: 0)
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &timeout)
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &timeout)
        var require = settings.insecureSkipVerify ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND
        ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require)
        if let caFile = settings.caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw DirectoryError.server(connection: what, problem: "the CA file \(caFile) cannot be read")
            }
            _ = caFile.withCString { ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, $0) }
        }
        var server: Int32 = 0
        ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &server) // apply this handle's TLS settings
        if settings.startTLS {
            code = ldap_start_tls_s(ld, nil, nil)
            guard code == LDAP_SUCCESS else {
                throw DirectoryError.server(connection: what, problem: "StartTLS with \(settings.url) failed: \(describe(ld, code))")
            }
        }
        var credential = berval()
        let password = settings.password ?? ""
        code = password.withCString { pointer in
            credential.bv_len = ber_len_t(strlen(pointer))
            credential.bv_val = UnsafeMutablePointer(mutating: pointer)
            return ldap_sasl_bind_s(ld, settings.bindDN, nil, &credential, nil, nil, nil)
        }
        guard code == LDAP_SUCCESS else {
            let who = settings.bindDN.map { "as \($0)" } ?? "anonymously"
            // Active Directory (and a slapd with `security simple_bind=…`) refuses a simple bind
            // in clear text: say what to do about it.
            let hint = code == LDAP_STRONG_AUTH_REQUIRED && settings.url.hasPrefix("ldap://") && !settings.startTLS
                ? "; the server wants transport encryption for this bind: use an ldaps:// URL, or startTLS: true" : ""
            throw DirectoryError.server(connection: what, problem: "binding \(who) to \(settings.url) failed: \(describe(ld, code))\(hint)")
        }
        connected = true
        handle = ld
        return ld
    }

    /// `name (code): the server's message`.
    func describe(_ ld: OpaquePointer, _ code: Int32) -> String {
        var message: UnsafeMutablePointer<CChar>?
        ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &message)
        defer { if let message { ldap_memfree(message) } }
        let diagnostic = message.map { String(cString: $0) } ?? ""
        return LDAPResult.describe(code, diagnostic)
    }

    // MARK: Reading

    /// A read to keep (`keepNextRead(of:)`), and once read, its pages.
    private var kept: (scope: ReadScope, pages: [[Entry]]?)?
    /// The most entries a kept read holds; a larger read is not kept, and is searched again.
    static let keptEntriesLimit = 250_000

    public func keepNextRead(of scope: ReadScope) { kept = (scope, nil) }

    public func read(_ scope: ReadScope, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        guard let keep = kept, keep.scope == scope else { return try search(scope, pageSize: pageSize, page) }
        if let pages = keep.pages {
            kept = nil
            for entries in pages { try page(entries) }
            return
        }
        kept = nil
        var pages: [[Entry]]? = []
        var count = 0
        try search(scope, pageSize: pageSize) { entries in
            count += entries.count
            if count > Self.keptEntriesLimit { pages = nil } else { pages?.append(entries) }
            try page(entries)
        }
        if let pages { kept = (scope, pages) }
    }

    private func search(_ scope: ReadScope, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        let ld = try connection()
        let base = scope.base ?? settings.baseDN
        let size = ber_int_t(max(1, min(pageSize, settings.pageSize)))
        let filter = scope.filter ?? "(objectClass=*)"
        // The attributes asked for, as a NULL-terminated C array; nil asks for all user attributes.
        let names = scope.attributes.map { $0.map { strdup($0.name) } + [nil] }
        defer { names?.forEach { free($0) } }
        var reader = EntryReader(names: scope.attributes ?? [])

        /// Sends the search for the page after `cookie`; returns its message id.
        func request(after cookie: UnsafeMutablePointer<berval>?) throws -> Int32 {
            var control: UnsafeMutablePointer<LDAPControl>?
            var code = ldap_create_page_control(ld, size, cookie, 1, &control)
            guard code == LDAP_SUCCESS, let control else {
                throw DirectoryError.server(connection: what, problem: "cannot make a paged search: \(describe(ld, code))")
            }
            defer { ldap_control_free(control) }
            var controls: [UnsafeMutablePointer<LDAPControl>?] = [control, nil]
            var timeout = timeval(tv_sec: settings.timeout, tv_usec: 0)
            var messageID: Int32 = 0
            code = withNullTerminated(names) { attributes in
                ldap_search_ext(ld, base, LDAP_SCOPE_SUBTREE, filter, attributes, 0, &controls, nil, &timeout, 0, &messageID)
            }
            guard code == LDAP_SUCCESS else {
                throw DirectoryError.server(connection: what, problem: "searching \(base) with \(filter) failed: \(describe(ld, code))")
            }
            return messageID
        }

        /// The entries of one page, and the cookie for the next (nil after the last page).
        func collect(_ messageID: Int32) throws -> ([Entry], UnsafeMutablePointer<berval>?) {
            var entries: [Entry] = []
            entries.reserveCapacity(Int(size))
            while true {
                var message: OpaquePointer?
                var wait = timeval(tv_sec: settings.timeout, tv_usec: 0)
                let type = ldap_result(ld, messageID, Int32(LDAP_MSG_ONE), &wait, &message)
                guard type > 0, let message else {
                    if let message { ldap_msgfree(message) }
                    ldap_abandon_ext(ld, messageID, nil, nil)
                    let reason = type == 0 ? "no answer within \(settings.timeout) s" : describe(ld, type)
                    throw DirectoryError.server(connection: what, problem: "searching \(base) failed: \(reason)")
                }
                defer { ldap_msgfree(message) }
                switch type {
                case LDAPResult.searchEntry:
                    guard let entry = reader.entry(ld, message) else {
                        ldap_abandon_ext(ld, messageID, nil, nil)
                        throw DirectoryError.server(connection: what, problem: "searching \(base) failed: an entry of the answer cannot be decoded")
                    }
                    entries.append(entry)
                case LDAPResult.searchResult:
                    var result: Int32 = 0
                    var diagnostic: UnsafeMutablePointer<CChar>?
                    var serverControls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?
                    let code = ldap_parse_result(ld, message, &result, nil, &diagnostic, nil, &serverControls, 0)
                    let text = diagnostic.map { String(cString: $0) } ?? ""
                    if let diagnostic { ldap_memfree(diagnostic) }
                    defer { if let serverControls { ldap_controls_free(serverControls) } }
                    guard code == LDAP_SUCCESS, result == LDAP_SUCCESS else {
                        let problem = "searching \(base) failed: " + LDAPResult.describe(code == LDAP_SUCCESS ? result : code, text)
                        if code == LDAP_SUCCESS, result == LDAP_NO_SUCH_OBJECT {
                            throw DirectoryError.noSuchBase(connection: what, base: base, problem: problem)
                        }
                        throw DirectoryError.server(connection: what, problem: problem)
                    }
                    var next: UnsafeMutablePointer<berval>?
                    if let found = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, serverControls, nil) {
                        var estimate: ber_int_t = 0
                        var value = berval()
                        if ldap_parse_pageresponse_control(ld, found, &estimate, &value) == LDAP_SUCCESS, value.bv_len > 0 {
                            next = ber_bvdup(&value)
                        }
                        if value.bv_val != nil { ber_memfree(value.bv_val) }
                    }
                    return (entries, next)
                default:
                    continue // referrals and intermediate responses carry no entries
                }
            }
        }

        // The next page is asked for before this one is handed over, so the server prepares it
        // while the caller works on this one.
        var pending: Int32? = try request(after: nil)
        while let messageID = pending {
            var (entries, cookie) = try collect(messageID)
            // An attribute with more values than the server sends at once came as a range
            // (`member;range=0-1499`): the rest is read before the page is handed over.
            if reader.sawRanges {
                do {
                    entries = try entries.map { try completeRanges(ld, $0) }
                } catch {
                    if let cookie { ber_bvfree(cookie) }
                    ldap_abandon_ext(ld, messageID, nil, nil)
                    throw error
                }
            }
            pending = nil
            if let cookie {
                defer { ber_bvfree(cookie) }
                pending = try request(after: cookie)
            }
            do {
                if !entries.isEmpty { try page(entries) }
            } catch {
                if let pending { ldap_abandon_ext(ld, pending, nil, nil) }
                throw error
            }
        }
    }

    /// `entry` with each attribute the server sent as a range (`member;range=0-1499`) read
    /// whole: the next ranges are asked for (`member;range=1500-*`), one base search each, until
    /// one ends in `*`. An attribute that cannot be read whole fails the read: a group read in
    /// part would look as if it had lost members.
    func completeRanges(_ ld: OpaquePointer, _ entry: Entry) throws -> Entry {
        var ranged: [(name: AttributeName, next: Int?)] = []
        var kept: [(AttributeName, [ArraySlice<UInt8>])] = []
        entry.forEachAttribute { name, values in
            guard !values.isEmpty else { return }
            if let range = Self.range(of: name) {
                ranged.append((range.name, range.high.map { $0 + 1 }))
                kept.append((range.name, values))
            } else {
                kept.append((name, values))
            }
        }
        guard !ranged.isEmpty else { return entry }
        for (name, start) in ranged {
            var next = start
            while let low = next {
                let asked = "\(name);range=\(low)-*"
                let (values, high) = try readRange(ld, dn: entry.dn, asked: asked, attribute: name, low: low)
                if let index = kept.firstIndex(where: { $0.0 == name }) { kept[index].1 += values.map { $0[...] } }
                next = high.map { $0 + 1 }
            }
        }
        var out = Entry(dn: entry.dn)
        for (name, values) in kept { for value in values { out.append(name, bytes: value) } }
        return out
    }

    /// `member;range=0-1499` → (member, 1499); `member;range=1500-*` → (member, nil).
    public static func range(of name: AttributeName) -> (name: AttributeName, high: Int?)? {
        let text = name.name
        guard let marker = text.range(of: ";range=", options: .caseInsensitive) else { return nil }
        let bounds = text[marker.upperBound...].split(separator: "-", maxSplits: 1)
        guard bounds.count == 2, Int(bounds[0]) != nil else { return nil }
        return (AttributeName(String(text[..<marker.lowerBound])), bounds[1] == "*" ? nil : Int(bounds[1]))
    }

    /// One more range of `attribute` of the entry at `dn`: its values, and where it ended (nil
    /// when it was the last).
    private func readRange(_ ld: OpaquePointer, dn: String, asked: String, attribute: AttributeName, low: Int) throws -> ([[UInt8]], Int?) {
        var timeout = timeval(tv_sec: settings.timeout, tv_usec: 0)
        var message: OpaquePointer?
        let name = strdup(asked)
        defer { free(name) }
        var list: [UnsafeMutablePointer<CChar>?] = [name, nil]
        let code = list.withUnsafeMutableBufferPointer {
            ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", $0.baseAddress, 0, nil, nil, &timeout, 0, &message)
        }
        defer { if let message { ldap_msgfree(message) } }
        func incomplete(_ why: String) -> DirectoryError {
            .server(connection: what, problem: "\(dn) has more \(attribute) values than the server sent at once, "
                    + "and reading \(asked) failed (\(why)); nothing was planned from a part of them")
        }
        guard code == LDAP_SUCCESS, let message, let found = ldap_first_entry(ld, message) else {
            throw incomplete(code == LDAP_SUCCESS ? "no entry came back" : describe(ld, code))
        }
        var ber: OpaquePointer?
        var current = ldap_first_attribute(ld, found, &ber)
        defer { if let ber { ber_free(ber, 0) } }
        while let pointer = current {
            let returned = AttributeName(String(cString: pointer))
            ldap_memfree(pointer)
            if let range = Self.range(of: returned), range.name == attribute {
                var values: [[UInt8]] = []
                if let list = ldap_get_values_len(ld, found, returned.name) {
                    var position = 0
                    while let value = list[position] {
                        values.append(Array(UnsafeRawBufferPointer(start: value.pointee.bv_val, count: Int(value.pointee.bv_len))))
                        position += 1
                    }
                    ldap_value_free_len(list)
                }
                if let high = range.high, high < low { throw incomplete("the server answered with an earlier range, ending at \(high)") }
                return (values, range.high)
            }
            current = ldap_next_attribute(ld, found, ber)
        }
        throw incomplete("the answer held no range of \(attribute)")
    }

    /// The attribute types of the server's schema (every name of each), read once from its
    /// subschema entry; nil when the server does not publish one to this bind.
    public func declaredAttributes() throws -> [AttributeName]? {
        if let schemaNames { return schemaNames }
        let ld = try connection()
        func search(_ base: String, _ filter: String, _ attribute: String) -> [String] {
            var message: OpaquePointer?
            var timeout = timeval(tv_sec: settings.timeout, tv_usec: 0)
            let name = strdup(attribute)
            defer { free(name) }
            var attributes: [UnsafeMutablePointer<CChar>?] = [name, nil]
            let code = attributes.withUnsafeMutableBufferPointer { list in
                ldap_search_ext_s(ld, base, LDAP_SCOPE_BASE, filter, list.baseAddress, 0, nil, nil, &timeout, 0, &message)
            }
            defer { if let message { ldap_msgfree(message) } }
            guard code == LDAP_SUCCESS, let message, let entry = ldap_first_entry(ld, message) else { return [] }
            guard let values = ldap_get_values_len(ld, entry, attribute) else { return [] }
            defer { ldap_value_free_len(values) }
            var out: [String] = []
            var index = 0
            while let value = values[index] {
                out.append(String(decoding: UnsafeRawBufferPointer(start: value.pointee.bv_val, count: Int(value.pointee.bv_len)), as: UTF8.self))
                index += 1
            }
            return out
        }
        guard let subschema = search("", "(objectClass=*)", "subschemaSubentry").first else { return nil }
        let types = search(subschema, "(objectClass=subschema)", "attributeTypes")
        guard !types.isEmpty else { return nil }
        let names = types.flatMap(Self.attributeTypeNames)
        schemaNames = names
        return names
    }

    private var schemaNames: [AttributeName]?

    /// The names of one RFC 4512 AttributeTypeDescription: `NAME 'cn'` or `NAME ( 'cn' 'commonName' )`.
    static func attributeTypeNames(_ description: String) -> [AttributeName] {
        guard let range = description.range(of: " NAME ") else { return [] }
        var rest = description[range.upperBound...].drop { $0 == " " }
        var names: [AttributeName] = []
        let list = rest.first == "("
        if list { rest = rest.dropFirst() }
        while true {
            rest = rest.drop { $0 == " " }
            guard rest.first == "'" else { break }
            rest = rest.dropFirst()
            guard let end = rest.firstIndex(of: "'") else { break }
            names.append(AttributeName(String(rest[..<end])))
            rest = rest[rest.index(after: end)...]
            if !list { break }
        }
        return names
    }

    // MARK: Writing

    public func apply(_ change: DirectoryChange) throws {
        var failure: (any Error)?
        try apply(objects: [[change]]) { _, error in failure = error }
        if let failure { throw failure }
    }

    /// Applies each object's changes in order, keeping up to `maxOutstanding` operations in
    /// flight across objects. Two objects that touch the same DN never overlap.
    public func apply(objects given: [[DirectoryChange]], done: (Int, (any Error)?) -> Void) throws {
        kept = nil // what was read is no longer what is there
        let ld = try connection()
        // Active Directory's order and encodings, worked out first; an object that breaks one of
        // its rules fails here, and nothing of it is sent.
        var objects = given
        var afterCreate: [[String?]] = []
        var refused: [Int: any Error] = [:]
        if settings.activeDirectory {
            for (object, changes) in given.enumerated() {
                do {
                    let steps = try ActiveDirectory.steps(for: changes)
                    objects[object] = steps.map(\.change)
                    afterCreate.append(steps.map(\.afterCreate))
                } catch {
                    objects[object] = []
                    afterCreate.append([])
                    refused[object] = error
                }
            }
        }
        var next = 0
        var inFlight: [Int32: (object: Int, step: Int)] = [:]
        var busy: [String: Int] = [:] // normalised DN → objects in flight that touch it
        var touching: [Int: Set<String>] = [:] // object in flight → the DNs it touches
        func release(_ object: Int) {
            for dn in touching.removeValue(forKey: object) ?? [] {
                busy[dn, default: 1] -= 1
                if busy[dn] == 0 { busy[dn] = nil }
            }
        }
        /// Sends step `step` of `object`; false (and `done` called) when it could not be sent.
        func send(_ object: Int, _ step: Int) -> Bool {
            do {
                inFlight[try submit(ld, objects[object][step])] = (object, step)
                return true
            } catch {
                release(object)
                done(object, error)
                return false
            }
        }
        while next < objects.count || !inFlight.isEmpty {
            while inFlight.count < settings.maxOutstanding, next < objects.count {
                let dns = Self.touched(objects[next])
                if dns.contains(where: { busy[$0] != nil }) { break } // wait for the other object first
                let object = next
                next += 1
                guard !objects[object].isEmpty else { done(object, refused[object]); continue }
                for dn in dns { busy[dn, default: 0] += 1 }
                touching[object] = dns
                _ = send(object, 0)
            }
            guard !inFlight.isEmpty else { continue }
            var message: OpaquePointer?
            var wait = timeval(tv_sec: settings.timeout, tv_usec: 0)
            let type = ldap_result(ld, LDAP_RES_ANY, Int32(LDAP_MSG_ONE), &wait, &message)
            guard type > 0, let message else {
                if let message { ldap_msgfree(message) }
                // The connection is gone or silent: every object still waiting fails with why.
                let reason = type == 0 ? "no answer within \(settings.timeout) s" : describe(ld, type)
                for (_, pending) in inFlight.sorted(by: { $0.value.object < $1.value.object }) {
                    done(pending.object, DirectoryError.server(connection: what, problem: "\(reason)"))
                }
                inFlight.removeAll()
                for object in next..<objects.count { done(object, DirectoryError.server(connection: what, problem: "not sent: \(reason)")) }
                next = objects.count
                handle = nil
                ldap_unbind_ext(ld, nil, nil)
                return
            }
            let id = ldap_msgid(message)
            var result: Int32 = 0
            var diagnostic: UnsafeMutablePointer<CChar>?
            let code = ldap_parse_result(ld, message, &result, nil, &diagnostic, nil, nil, 1)
            let text = diagnostic.map { String(cString: $0) } ?? ""
            if let diagnostic { ldap_memfree(diagnostic) }
            guard let (object, step) = inFlight.removeValue(forKey: id) else { continue }
            if code != LDAP_SUCCESS || result != LDAP_SUCCESS {
                release(object)
                var reason = LDAPResult.describe(code != LDAP_SUCCESS ? code : result, text)
                if settings.activeDirectory {
                    reason = ActiveDirectory.explain(reason)
                    if let prefix = afterCreate[object][step] { reason = "\(prefix): \(reason)" }
                }
                done(object, DirectoryError.object(dn: nil, problem: reason))
            } else if step + 1 < objects[object].count {
                _ = send(object, step + 1)
            } else {
                release(object)
                done(object, nil)
            }
        }
    }

    /// The DNs one object's changes touch, lowercased.
    static func touched(_ changes: [DirectoryChange]) -> Set<String> {
        var out: Set<String> = []
        for change in changes {
            switch change {
            case .add(let entry): out.insert(entry.dn.lowercased())
            case .modify(let dn, _), .delete(let dn): out.insert(dn.lowercased())
            case .rename(let dn, let newRDN, let newSuperior):
                out.insert(dn.lowercased())
                out.insert(DistinguishedName.renamed(dn, newRDN: newRDN, newSuperior: newSuperior).lowercased())
            }
        }
        return out
    }

    /// Sends one operation; returns its message id.
    private func submit(_ ld: OpaquePointer, _ change: DirectoryChange) throws -> Int32 {
        var id: Int32 = 0
        let code: Int32
        switch change {
        case .add(let entry):
            let mods = ModificationList(adding: entry)
            code = mods.withPointer { ldap_add_ext(ld, entry.dn, $0, nil, nil, &id) }
        case .modify(let dn, let modifications):
            let mods = ModificationList(modifications.map { m in
                let op: Int32 = switch m.operation {
                case .add: LDAP_MOD_ADD
                case .replace: LDAP_MOD_REPLACE
                case .delete: LDAP_MOD_DELETE
                }
                return (op, m.attribute.name, m.values.map { Array($0.bytes)[...] })
            })
            code = mods.withPointer { ldap_modify_ext(ld, dn, $0, nil, nil, &id) }
        case .delete(let dn):
            code = ldap_delete_ext(ld, dn, nil, nil, &id)
        case .rename(let dn, let newRDN, let newSuperior):
            code = ldap_rename(ld, dn, newRDN, newSuperior, 1, nil, nil, &id)
        }
        guard code == LDAP_SUCCESS else { throw DirectoryError.object(dn: nil, problem: describe(ld, code)) }
        return id
    }

    private func withNullTerminated<T>(_ names: [UnsafeMutablePointer<CChar>?]?,
                                       _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> T) -> T {
        guard var names else { return body(nil) }
        return names.withUnsafeMutableBufferPointer { body($0.baseAddress) }
    }
}

/// A NULL-terminated `LDAPMod *` array with binary values, laid out in one allocation (the
/// pointer array, the `LDAPMod`s, the value arrays, the `berval`s, the bytes and the names) and
/// freed on release. libldap encodes a request before `ldap_add_ext` or `ldap_modify_ext`
/// returns, so the list only has to live through the call.
final class ModificationList {
    private let memory: UnsafeMutableRawPointer
    private let mods: UnsafeMutablePointer<UnsafeMutablePointer<LDAPMod>?>

    init(_ items: [(op: Int32, name: String, values: [ArraySlice<UInt8>])]) {
        let pointer = MemoryLayout<UnsafeMutableRawPointer?>.stride
        let valueCount = items.reduce(0) { $0 + $1.values.count }
        let byteCount = items.reduce(0) { total, item in total + item.values.reduce(0) { $0 + $1.count } }
        let nameBytes = items.reduce(0) { $0 + $1.name.utf8.count + 1 }
        // Regions, each aligned for what it holds: pointers, LDAPMods, bervals, then bytes.
        let modsAt = 0
        let structsAt = modsAt + (items.count + 1) * pointer
        let arraysAt = structsAt + items.count * MemoryLayout<LDAPMod>.stride
        let bervalsAt = arraysAt + (valueCount + items.count) * pointer
        let bytesAt = bervalsAt + valueCount * MemoryLayout<berval>.stride
        let size = bytesAt + byteCount + nameBytes
        memory = .allocate(byteCount: max(size, 1), alignment: 16)
        mods = (memory + modsAt).bindMemory(to: UnsafeMutablePointer<LDAPMod>?.self, capacity: items.count + 1)
        let structs = (memory + structsAt).bindMemory(to: LDAPMod.self, capacity: items.count)
        var array = (memory + arraysAt).bindMemory(to: UnsafeMutablePointer<berval>?.self, capacity: valueCount + items.count)
        var bervals = (memory + bervalsAt).bindMemory(to: berval.self, capacity: valueCount)
        var bytes = (memory + bytesAt).bindMemory(to: CChar.self, capacity: byteCount + nameBytes)
        for (index, item) in items.enumerated() {
            let values = array
            for value in item.values {
                value.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { UnsafeMutableRawPointer(bytes).copyMemory(from: base, byteCount: raw.count) }
                }
                bervals.initialize(to: berval(bv_len: ber_len_t(value.count), bv_val: bytes))
                array.initialize(to: bervals)
                array += 1
                bervals += 1
                bytes += value.count
            }
            array.initialize(to: nil)
            array += 1
            let name = bytes
            for byte in item.name.utf8 { bytes.initialize(to: CChar(bitPattern: byte)); bytes += 1 }
            bytes.initialize(to: 0)
            bytes += 1
            var mod = LDAPMod()
            mod.mod_op = item.op | LDAP_MOD_BVALUES
            mod.mod_type = name
            mod.mod_vals.modv_bvals = values
            (structs + index).initialize(to: mod)
            (mods + index).initialize(to: structs + index)
        }
        (mods + items.count).initialize(to: nil)
    }

    /// Adds every attribute of `entry`, its values read from the entry's own bytes.
    convenience init(adding entry: Entry) {
        var items: [(op: Int32, name: String, values: [ArraySlice<UInt8>])] = []
        items.reserveCapacity(entry.nameCount)
        entry.forEachAttribute { name, values in items.append((LDAP_MOD_ADD, name.name, values)) }
        self.init(items)
    }

    func withPointer<T>(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<LDAPMod>?>) -> T) -> T {
        body(mods)
    }

    deinit { memory.deallocate() }
}

/// LDAP result codes (RFC 4511) by name, for messages users can search for.
public enum LDAPResult {
    static let searchEntry: Int32 = 0x64
    static let searchResult: Int32 = 0x65

    static let names: [Int32: String] = [
        0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded", 4: "sizeLimitExceeded",
        7: "authMethodNotSupported", 8: "strongerAuthRequired", 10: "referral", 11: "adminLimitExceeded",
        12: "unavailableCriticalExtension", 13: "confidentialityRequired", 16: "noSuchAttribute",
        17: "undefinedAttributeType", 18: "inappropriateMatching", 19: "constraintViolation",
        20: "attributeOrValueExists", 21: "invalidAttributeSyntax", 32: "noSuchObject", 34: "invalidDNSyntax",
        48: "inappropriateAuthentication", 49: "invalidCredentials", 50: "insufficientAccessRights", 51: "busy",
        52: "unavailable", 53: "unwillingToPerform", 54: "loopDetect", 64: "namingViolation",
        65: "objectClassViolation", 66: "notAllowedOnNonLeaf", 67: "notAllowedOnRDN", 68: "entryAlreadyExists",
        69: "objectClassModsProhibited", 71: "affectsMultipleDSAs", 80: "other",
        -1: "serverDown", -2: "localError", -3: "encodingError", -4: "decodingError", -5: "timeout",
        -6: "authUnknown", -7: "filterError", -8: "userCancelled", -9: "paramError", -10: "noMemory",
        -11: "connectError", -12: "notSupported",
    ]

    /// `entryAlreadyExists (68)`.
    public static func name(_ code: Int32) -> String { "\(names[code] ?? "code") (\(code))" }

    /// `entryAlreadyExists (68): <the server's message>`, or libldap's text when the server said nothing.
    public static func describe(_ code: Int32, _ diagnostic: String) -> String {
        let text = diagnostic.isEmpty ? (ldap_err2string(code).map { String(cString: $0) } ?? "") : diagnostic
        return text.isEmpty ? name(code) : "\(name(code)): \(text)"
    }
}

/// RFC 4515 filters.
public enum LDAPFilter {
    /// A value inside a filter: `*`, `(`, `)`, `\` and NUL as `\2a`, `\28`, `\29`, `\5c`, `\00`.
    /// Other characters (UTF-8 included) stand as they are.
    public static func escape(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "*": out += "\\2a"
            case "(": out += "\\28"
            case ")": out += "\\29"
            case "\\": out += "\\5c"
            case "\u{0}": out += "\\00"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Builds entries from search results. Entries share one list of attribute names (the ones
/// asked for, then any others the server sends), so a page of them costs few allocations.
///
/// The entry's encoding is walked once (`ldap_get_dn_ber`, then `ldap_get_attribute_ber`): the
/// DN, names and values are read where they lie in the message. (`ldap_get_values_len` would
/// search the whole entry again for each attribute.)
struct EntryReader {
    private var names: NameSpellings
    /// Whether some entry held an attribute sent as a range (`member;range=0-1499`).
    var sawRanges: Bool { names.names.contains { $0.name.range(of: ";range=", options: .caseInsensitive) != nil } }

    init(names: [AttributeName]) {
        self.names = NameSpellings(names: names)
    }

    /// The entry in `message`: its DN, and every value as the bytes the server sent; nil when the
    /// message cannot be decoded.
    mutating func entry(_ ld: OpaquePointer, _ message: OpaquePointer) -> Entry? {
        var ber: OpaquePointer?
        var dnValue = berval()
        guard ldap_get_dn_ber(ld, message, &ber, &dnValue) == LDAP_SUCCESS, let ber else { return nil }
        defer { ber_free(ber, 0) }
        let dn = String(decoding: UnsafeRawBufferPointer(start: dnValue.bv_val, count: Int(dnValue.bv_len)), as: UTF8.self)
        // First the names and value arrays, so the entry is made with the full name list.
        var found: [(Int, UnsafeMutablePointer<berval>)] = []
        defer { for (_, values) in found { ber_memfree(values) } }
        var bytes = 0, count = 0
        while true {
            var attribute = berval()
            var values: UnsafeMutablePointer<berval>?
            guard ldap_get_attribute_ber(ld, message, ber, &attribute, &values) == LDAP_SUCCESS else { return nil }
            guard attribute.bv_val != nil else { break }
            guard let values else { continue }
            found.append((names.index(of: UnsafeRawBufferPointer(start: attribute.bv_val, count: Int(attribute.bv_len))), values))
            var position = 0
            while values[position].bv_val != nil { bytes += Int(values[position].bv_len); count += 1; position += 1 }
        }
        var out = Entry(dn: dn, names: names.names, reservingBytes: bytes, values: count)
        for (index, values) in found {
            var position = 0
            while let pointer = values[position].bv_val {
                out.append(at: index, bytes: UnsafeRawBufferPointer(start: pointer, count: Int(values[position].bv_len)))
                position += 1
            }
        }
        return out
    }
}

/// A request sent to a server that has gone must fail with EPIPE (and the job say so), not kill
/// this process: libldap writes to its socket without MSG_NOSIGNAL, so SIGPIPE is ignored, once.
private let brokenPipesIgnored: Void = { signal(SIGPIPE, SIG_IGN) }()
