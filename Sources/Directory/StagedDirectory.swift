import Foundation

/// A server directory as a preview sees it: what the server holds, with the changes that earlier
/// jobs of the preview would make laid over it in memory. Nothing ever reaches the server:
/// changes are only staged, and `commit()` refuses.
///
/// So a preview chains over LDAP as it does over files: a job that reads a directory an earlier
/// job of the collection would change sees those changes (its creates, updates, renames and
/// deletes). A modify is kept as its modifications and laid over the server's entry when a read
/// hands that entry over, so staging a million updates costs no extra search; only a rename
/// reads its entry once, and a filtered read looks up the changed entries the server's filter
/// may have left out (the caller filters exactly).
public final class StagedDirectory: Directory {
    let server: Directory

    private enum State {
        /// The whole entry as it would be (created, or renamed here).
        case entry(Entry)
        /// The server's entry with these modifications.
        case modified([Modification])
        /// Gone (deleted, or renamed away).
        case deleted
    }

    /// Staged objects by normalized DN, with the DN as spelled.
    private var staged: [String: (dn: String, state: State)] = [:]
    /// Staged keys in the order they were first staged (new objects are read in that order).
    private var order: [String] = []

    public init(over server: Directory) {
        self.server = server
    }

    public var traits: DirectoryTraits {
        var traits = server.traits
        traits.stagesChanges = true
        return traits
    }

    public var countHint: Int? { server.countHint }

    public func declaredAttributes() throws -> [AttributeName]? { try server.declaredAttributes() }

    /// The server's read is kept: staged changes are laid over it at each read, and the server
    /// itself is never written through this directory.
    public func keepNextRead(of scope: ReadScope) { server.keepNextRead(of: scope) }

    public func read(_ scope: ReadScope, pageSize: Int, _ page: ([Entry]) throws -> Void) throws {
        guard !staged.isEmpty else { return try server.read(scope, pageSize: pageSize, page) }
        var seen: Set<String> = []
        try server.read(scope, pageSize: pageSize) { entries in
            var out: [Entry] = []
            out.reserveCapacity(entries.count)
            for entry in entries {
                let key = DistinguishedName.normalize(entry.dn)
                guard let (_, state) = staged[key] else {
                    out.append(entry)
                    continue
                }
                seen.insert(key)
                switch state {
                case .entry(let changed): out.append(Self.project(changed, scope))
                case .modified(let modifications): out.append(Self.project(Self.applying(modifications, to: entry), scope))
                case .deleted: break
                }
            }
            try page(out)
        }
        // What the server did not hand over: new and renamed objects, and, when the server
        // filtered, changed objects its filter may have left out on their old values.
        let base = scope.base.map(DistinguishedName.normalize)
        var rest: [Entry] = []
        for key in order where !seen.contains(key) && Self.isWithin(key, base) {
            guard let (dn, state) = staged[key] else { continue }
            switch state {
            case .entry(let changed):
                rest.append(Self.project(changed, scope))
            case .modified(let modifications):
                guard scope.filter != nil, let held = try serverEntry(dn) else { continue }
                rest.append(Self.project(Self.applying(modifications, to: held), scope))
            case .deleted:
                continue
            }
            if rest.count >= pageSize {
                try page(rest)
                rest = []
            }
        }
        if !rest.isEmpty { try page(rest) }
    }

    public func apply(_ change: DirectoryChange) throws {
        switch change {
        case .add(let entry):
            let key = DistinguishedName.normalize(entry.dn)
            if case .entry? = staged[key]?.state {
                throw DirectoryError.object(dn: entry.dn, problem: "already exists: \(entry.dn)")
            }
            stage(key, entry.dn, .entry(entry))
        case .modify(let dn, let modifications):
            let key = DistinguishedName.normalize(dn)
            switch staged[key]?.state {
            case .entry(var entry)?:
                entry = Self.applying(modifications, to: entry)
                stage(key, dn, .entry(entry))
            case .modified(let earlier)?:
                stage(key, dn, .modified(earlier + modifications))
            case .deleted?:
                throw DirectoryError.object(dn: dn, problem: "no such object: \(dn)")
            case nil:
                stage(key, dn, .modified(modifications))
            }
        case .delete(let dn):
            let key = DistinguishedName.normalize(dn)
            if case .deleted? = staged[key]?.state { throw DirectoryError.object(dn: dn, problem: "no such object: \(dn)") }
            stage(key, dn, .deleted)
        case .rename(let dn, let newRDN, let newSuperior):
            let key = DistinguishedName.normalize(dn)
            var entry = try current(dn, key)
            let newDN = DistinguishedName.renamed(dn, newRDN: newRDN, newSuperior: newSuperior)
            entry.dn = newDN
            stage(key, dn, .deleted)
            stage(DistinguishedName.normalize(newDN), newDN, .entry(entry))
        }
    }

    /// A preview writes nothing.
    public func commit() throws {
        throw DirectoryError.object(dn: nil, problem: "a preview's staged changes are never written to the server")
    }

    private func stage(_ key: String, _ dn: String, _ state: State) {
        if staged.updateValue((dn, state), forKey: key) == nil { order.append(key) }
    }

    /// The object at `dn` as it would be now.
    private func current(_ dn: String, _ key: String) throws -> Entry {
        switch staged[key]?.state {
        case .entry(let entry)?: return entry
        case .deleted?: throw DirectoryError.object(dn: dn, problem: "no such object: \(dn)")
        case .modified(let modifications)?:
            guard let held = try serverEntry(dn) else { throw DirectoryError.object(dn: dn, problem: "no such object: \(dn)") }
            return Self.applying(modifications, to: held)
        case nil:
            guard let held = try serverEntry(dn) else { throw DirectoryError.object(dn: dn, problem: "no such object: \(dn)") }
            return held
        }
    }

    /// The server's entry at `dn`, every attribute, or nil when it has none.
    private func serverEntry(_ dn: String) throws -> Entry? {
        let key = DistinguishedName.normalize(dn)
        var found: Entry?
        do {
            try server.read(ReadScope(base: dn), pageSize: 16) { entries in
                if found == nil { found = entries.first { DistinguishedName.normalize($0.dn) == key } }
            }
        } catch DirectoryError.noSuchBase {
            return nil
        }
        return found
    }

    static func applying(_ modifications: [Modification], to entry: Entry) -> Entry {
        var entry = entry
        for modification in modifications { entry.apply(modification) }
        return entry
    }

    /// `entry` with only the attributes `scope` asks for (all when it names none).
    static func project(_ entry: Entry, _ scope: ReadScope) -> Entry {
        guard let wanted = scope.attributes else { return entry }
        let names = Set(wanted)
        var attributes: [(AttributeName, [Value])] = []
        for index in 0..<entry.nameCount where names.contains(entry.name(at: index)) {
            let values = entry.values(at: index)
            if !values.isEmpty { attributes.append((entry.name(at: index), values.map { Value(Data($0)) })) }
        }
        return Entry(dn: entry.dn, attributes: attributes)
    }

    /// Whether the normalized DN `key` is `base` or below it (everything when there is no base).
    static func isWithin(_ key: String, _ base: String?) -> Bool {
        guard let base, !base.isEmpty else { return true }
        return key == base || key.hasSuffix("," + base)
    }
}
