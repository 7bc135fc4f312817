import Foundation

/// One attribute value: binary-safe bytes, shown as text when they are valid UTF-8.
public struct Value: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let bytes: Data

    public init(_ bytes: Data) { self.bytes = bytes }
    public init(_ text: String) { self.bytes = Data(text.utf8) }
    public init(stringLiteral text: String) { self.init(text) }

    /// The value as text, or nil when it is not valid UTF-8.
    public var text: String? { String(data: bytes, encoding: .utf8) }

    /// Text when possible, else `base64:…`.
    public var description: String { text ?? "base64:\(bytes.base64EncodedString())" }

    public var isEmpty: Bool { bytes.isEmpty }
}

/// An attribute name; compared without regard to ASCII case, as LDAP does, and kept as first written.
public struct AttributeName: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let name: String
    private let folded: String

    public init(_ name: String) {
        self.name = name
        self.folded = name.lowercased()
    }

    public init(stringLiteral name: String) { self.init(name) }

    public static func == (lhs: AttributeName, rhs: AttributeName) -> Bool { lhs.folded == rhs.folded }
    public func hash(into hasher: inout Hasher) { hasher.combine(folded) }
    public var description: String { name }
}

/// One directory object: a DN (or, for CSV rows, `#<row>`), and multi-valued attributes in order.
public struct Entry: Sendable, Equatable {
    public var dn: String
    public private(set) var attributes: [(name: AttributeName, values: [Value])]

    public init(dn: String, attributes: [(AttributeName, [Value])] = []) {
        self.dn = dn
        self.attributes = []
        for (name, values) in attributes { self[name] = values }
    }

    public static func == (lhs: Entry, rhs: Entry) -> Bool {
        lhs.dn == rhs.dn && lhs.attributes.count == rhs.attributes.count
            && zip(lhs.attributes, rhs.attributes).allSatisfy { $0.name == $1.name && $0.values == $1.values }
    }

    /// The values of `name`; empty when absent. Setting an empty list removes the attribute.
    public subscript(name: AttributeName) -> [Value] {
        get { attributes.first { $0.name == name }?.values ?? [] }
        set {
            if let index = attributes.firstIndex(where: { $0.name == name }) {
                if newValue.isEmpty { attributes.remove(at: index) } else { attributes[index].values = newValue }
            } else if !newValue.isEmpty {
                attributes.append((name, newValue))
            }
        }
    }

    public subscript(name: String) -> [Value] {
        get { self[AttributeName(name)] }
        set { self[AttributeName(name)] = newValue }
    }

    /// The first value of `name` as text.
    public func first(_ name: String) -> String? { self[name].first?.description }
}

/// One attribute-level change within a modify.
public struct Modification: Sendable, Equatable {
    public enum Operation: String, Sendable { case add, replace, delete }
    public let operation: Operation
    public let attribute: AttributeName
    /// For `delete`, empty means every value.
    public let values: [Value]

    public init(_ operation: Operation, _ attribute: AttributeName, _ values: [Value]) {
        self.operation = operation
        self.attribute = attribute
        self.values = values
    }
}

/// A change to a directory.
public enum DirectoryChange: Sendable, Equatable {
    case add(Entry)
    case modify(dn: String, [Modification])
    case delete(dn: String)
    /// A new RDN (e.g. `uid=new`) and optionally a new parent.
    case rename(dn: String, newRDN: String, newSuperior: String?)

    public var dn: String {
        switch self {
        case .add(let entry): entry.dn
        case .modify(let dn, _), .delete(let dn), .rename(let dn, _, _): dn
        }
    }
}

/// The Directory module's error: names the connection and the file, DN or server at fault.
public struct DirectoryError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A source or destination of entries.
///
/// Reading hands entries over in pages. Writing takes changes one by one; each may fail on its
/// own (that object is then counted as failed and the job goes on). File directories keep changes
/// in memory and write them in `commit()`, atomically: readers see the old file or the new one.
public protocol Directory: AnyObject {
    /// Every entry below `base` (all entries when nil), in pages of at most `pageSize`.
    func read(base: String?, pageSize: Int, _ page: ([Entry]) throws -> Void) throws

    /// Applies one change; throws a `DirectoryError` naming why this one object failed.
    func apply(_ change: DirectoryChange) throws

    /// Makes every applied change durable. Nothing is visible before it.
    func commit() throws

    /// True when applied changes stay in memory until `commit()`, so a preview may apply them
    /// (and later jobs of the same run see them) without writing anything.
    var stagesChanges: Bool { get }
}
