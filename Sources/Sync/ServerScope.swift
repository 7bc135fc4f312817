import Directory
import Manifests

extension FilterExpression {
    /// Every field the filter reads.
    public var fields: Set<String> {
        switch self {
        case .compare(let field, _, _), .oneOf(let field, _), .exists(let field): [field]
        case .not(let inner): inner.fields
        case .and(let a, let b), .or(let a, let b): a.fields.union(b.fields)
        }
    }

    /// An RFC 4515 filter that matches **at least** the entries this filter keeps, or nil when
    /// no narrower filter than "everything" is safe.
    ///
    /// A directory server matches by each attribute's matching rule, usually ignoring case,
    /// where Syncwright's filter compares exactly. So only positive tests are sent (`==`,
    /// `contains`, `startsWith`, `in`, `exists`): the server may return a few entries more,
    /// and the exact filter drops them. A negation (`!`, `!=`) is sent as "everything", because
    /// the server's looser match would drop entries that the exact filter keeps.
    public var ldapSuperset: String? {
        func usable(_ field: String) -> Bool {
            guard let first = field.unicodeScalars.first, first.properties.isASCIIHexDigit || (first.isASCII && first.properties.isAlphabetic) else { return false }
            return field.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == ";" || $0 == ".") }
        }
        switch self {
        case .compare(let field, let comparison, let value):
            guard usable(field), !value.isEmpty else { return nil }
            let v = LDAPFilter.escape(value)
            switch comparison {
            case .equals: return "(\(field)=\(v))"
            case .notEquals: return nil
            // Servers order values by each attribute's own rule, often as text: never sent.
            case .lessThan, .atMost, .greaterThan, .atLeast: return nil
            case .contains: return "(\(field)=*\(v)*)"
            case .startsWith: return "(\(field)=\(v)*)"
            }
        case .oneOf(let field, let values):
            guard usable(field), !values.isEmpty, !values.contains(where: \.isEmpty) else { return nil }
            let terms = values.map { "(\(field)=\(LDAPFilter.escape($0)))" }
            return terms.count == 1 ? terms[0] : "(|\(terms.joined()))"
        case .exists(let field):
            return usable(field) ? "(\(field)=*)" : nil
        case .not:
            return nil
        case .and(let a, let b):
            switch (a.ldapSuperset, b.ldapSuperset) {
            case (nil, nil): return nil
            case (let x?, nil), (nil, let x?): return x
            case (let x?, let y?): return "(&\(x)\(y))"
            }
        case .or(let a, let b):
            guard let x = a.ldapSuperset, let y = b.ldapSuperset else { return nil }
            return "(|\(x)\(y))"
        }
    }
}

extension ValueTemplate {
    /// Every field the template reads.
    public var fields: [String] {
        segments.compactMap { if case .field(let name, _) = $0 { name } else { nil } }
    }
}

extension JobEngine {
    /// What the job reads from its source: below `source.base`, only the fields it uses (mapped
    /// fields, template fields and filter fields), narrowed by the filter where that is safe.
    public var sourceScope: ReadScope {
        var names: [AttributeName] = []
        func add(_ name: String) { if !names.contains(AttributeName(name)) { names.append(AttributeName(name)) } }
        for mapping in spec.mappings {
            if let source = mapping.source { add(source) }
            if let value = mapping.value, let template = try? ValueTemplate.parse(value) { template.fields.forEach(add) }
        }
        var serverFilter: String?
        if let text = spec.source.filter, let filter = try? FilterExpression.parse(text) {
            filter.fields.sorted().forEach(add)
            serverFilter = filter.ldapSuperset
        }
        return ReadScope(base: spec.source.base, attributes: names, filter: serverFilter)
    }

    /// What the job reads from its destination: below its container, the attributes it maps and
    /// `objectClass`.
    public var destinationScope: ReadScope {
        ReadScope(base: spec.destination.container, attributes: [Self.objectClass] + spec.mappings.map { AttributeName($0.destination) }
            .reduce(into: [AttributeName]()) { if !$0.contains($1) && $1 != Self.objectClass { $0.append($1) } })
    }
}
