import Directory
import Foundation
import Manifests

extension FilterExpression {
    /// Whether `entry` passes. Multi-valued fields match when any value does; comparisons are exact.
    public func matches(_ entry: Entry) -> Bool {
        CompiledFilter(self).matches(entry)
    }
}

/// A filter with its operands as bytes, evaluated on an entry's values without copying them.
indirect enum CompiledFilter: Sendable {
    case compare(AttributeName, FilterExpression.Comparison, [UInt8])
    /// `<`, `<=`, `>`, `>=`, with the operand read as a number once.
    case numeric(AttributeName, FilterExpression.Comparison, Double)
    case oneOf(AttributeName, [[UInt8]])
    case exists(AttributeName)
    case not(CompiledFilter)
    case and(CompiledFilter, CompiledFilter)
    case or(CompiledFilter, CompiledFilter)

    init(_ expression: FilterExpression) {
        switch expression {
        case .compare(let field, let comparison, let operand):
            if comparison.isNumeric {
                // The parser accepts only numbers after these; NaN compares false, as a non-number would.
                self = .numeric(AttributeName(field), comparison, Double(operand) ?? .nan)
            } else {
                self = .compare(AttributeName(field), comparison, Array(operand.utf8))
            }
        case .oneOf(let field, let list): self = .oneOf(AttributeName(field), list.map { Array($0.utf8) })
        case .exists(let field): self = .exists(AttributeName(field))
        case .not(let inner): self = .not(CompiledFilter(inner))
        case .and(let a, let b): self = .and(CompiledFilter(a), CompiledFilter(b))
        case .or(let a, let b): self = .or(CompiledFilter(a), CompiledFilter(b))
        }
    }

    func matches(_ entry: Entry) -> Bool {
        func any(_ name: AttributeName, _ test: (ArraySlice<UInt8>) -> Bool) -> Bool {
            guard let index = entry.index(of: name) else { return false }
            var found = false
            entry.forEachValue(at: index) { if !found && test($0) { found = true } }
            return found
        }
        switch self {
        case .compare(let name, let comparison, let operand):
            switch comparison {
            case .equals: return any(name) { $0.elementsEqual(operand) }
            case .notEquals: return !any(name) { $0.elementsEqual(operand) }
            case .startsWith: return any(name) { $0.starts(with: operand) }
            case .lessThan, .atMost, .greaterThan, .atLeast:
                return false // compiled as .numeric
            case .contains:
                return any(name) { value in
                    guard !operand.isEmpty else { return true }
                    guard value.count >= operand.count else { return false }
                    var i = value.startIndex
                    while i + operand.count <= value.endIndex {
                        if value[i..<i + operand.count].elementsEqual(operand) { return true }
                        i += 1
                    }
                    return false
                }
            }
        case .numeric(let name, let comparison, let number):
            return any(name) { value in Double(String(decoding: value, as: UTF8.self)).map { comparison.holds($0, number) } ?? false }
        case .oneOf(let name, let list):
            return any(name) { value in list.contains { value.elementsEqual($0) } }
        case .exists(let name):
            return entry.index(of: name).flatMap { entry.firstValue(at: $0) } != nil
        case .not(let inner): return !inner.matches(entry)
        case .and(let a, let b): return a.matches(entry) && b.matches(entry)
        case .or(let a, let b): return a.matches(entry) || b.matches(entry)
        }
    }
}

/// Why a row could not be transformed.
public struct TransformError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension ValueTemplate {
    /// `render(entry)`'s text as UTF-8, appended to `out` (emptied first). Fields without pipes,
    /// and `lower`/`upper` of ASCII text, are copied as bytes without making strings.
    ///
    /// `columns`, when given, is each field's position in `entry`'s name list, in the order the
    /// fields appear (see `fieldNames`): the engine works them out once per name list.
    public func render(_ entry: Entry, into out: inout [UInt8], columns: [Int?]? = nil) throws(TransformError) {
        out.removeAll(keepingCapacity: true)
        try render(entry, appendingTo: &out, columns: columns)
    }

    /// `render(_:into:columns:)`, appending to what `out` holds.
    ///
    /// `pinned`, when given, is a column and one of its values: placeholders of that column take
    /// that value instead of the first (a template over a multi-valued field renders once per value).
    /// `emptyInRDN`, when given, is set when a placeholder that stands for an RDN value (right
    /// after `=` in a DN-shaped template) renders empty.
    public func render(_ entry: Entry, appendingTo out: inout [UInt8], columns: [Int?]? = nil,
                       pinned: (column: Int, value: ArraySlice<UInt8>)? = nil, dnShaped: Bool = false,
                       emptyInRDN: UnsafeMutablePointer<String?>? = nil) throws(TransformError) {
        var field = 0
        var afterEquals = false
        for segment in segments {
            switch segment {
            case .literal(let text):
                out.append(contentsOf: text.utf8)
                afterEquals = text.utf8.last == UInt8(ascii: "=")
            case .field(let name, let pipes):
                let column = columns.map { $0[field] } ?? entry.index(of: AttributeName(name))
                field += 1
                let start = out.count
                defer {
                    // In a DN template, a value that stands for an RDN value is escaped
                    // (`Smith, Jr` → `Smith\, Jr`), and an empty one is reported.
                    if afterEquals, dnShaped {
                        if out.count == start {
                            if let emptyInRDN, emptyInRDN.pointee == nil { emptyInRDN.pointee = name }
                        } else {
                            let raw = String(decoding: out[start...], as: UTF8.self)
                            let escaped = DistinguishedName.escape(raw)
                            if escaped != raw { out.replaceSubrange(start..., with: escaped.utf8) }
                        }
                    }
                    afterEquals = false
                }
                let value: ArraySlice<UInt8>? = if let pinned, let column, pinned.column == column { pinned.value }
                    else { column.flatMap { entry.firstValue(at: $0) } }
                guard let first = value else {
                    if !pipes.isEmpty { out.append(contentsOf: Self.piped("", pipes).utf8) }
                    continue
                }
                let ascii = first.allSatisfy { $0 < 0x80 }
                if pipes.isEmpty, ascii || String(validating: first, as: UTF8.self) != nil {
                    out.append(contentsOf: first)
                } else if ascii, pipes.count == 1, pipes[0] == .lower || pipes[0] == .upper {
                    let lower = pipes[0] == .lower
                    for byte in first {
                        let letter = lower ? (0x41...0x5A).contains(byte) : (0x61...0x7A).contains(byte)
                        out.append(letter ? byte ^ 0x20 : byte)
                    }
                } else {
                    guard let text = String(validating: first, as: UTF8.self) else {
                        throw TransformError("\(name) is binary, not text, so {{\(name)}} cannot use it")
                    }
                    out.append(contentsOf: Self.piped(text, pipes).utf8)
                }
            }
        }
    }

    /// True when the template makes a DN: some placeholder stands right after `=`, and the text
    /// around the placeholders has a `,` after an `=` (`uid={{manager}},ou=People,dc=corp`). An
    /// empty value in such a place would make a malformed DN (`uid=,ou=…`).
    public var isDNShaped: Bool {
        var literal = ""
        var placeholderAfterEquals = false
        for segment in segments {
            switch segment {
            case .literal(let text): literal += text
            case .field: if literal.hasSuffix("=") { placeholderAfterEquals = true }; literal += "x"
            }
        }
        guard placeholderAfterEquals, let equals = literal.firstIndex(of: "=") else { return false }
        return literal[equals...].contains(",")
    }

    /// The fields the template reads, in order (one per placeholder).
    public var fieldNames: [AttributeName] {
        segments.compactMap { if case .field(let name, _) = $0 { AttributeName(name) } else { nil } }
    }

    private static func piped(_ value: String, _ pipes: [Pipe]) -> String {
        var value = value
        for pipe in pipes { value = pipe.apply(to: value) }
        return value
    }

    /// The text for `entry`: each placeholder takes the field's first value, through its pipes.
    /// A missing field is empty (so `default(x)` applies). Fails on a value that is not UTF-8 text.
    public func render(_ entry: Entry) throws(TransformError) -> String {
        var out = ""
        for segment in segments {
            switch segment {
            case .literal(let text):
                out += text
            case .field(let name, let pipes):
                var value = ""
                if let index = entry.index(of: AttributeName(name)), let first = entry.firstValue(at: index) {
                    guard let text = String(validating: first, as: UTF8.self) else {
                        throw TransformError("\(name) is binary, not text, so {{\(name)}} cannot use it")
                    }
                    value = text
                }
                for pipe in pipes { value = pipe.apply(to: value) }
                out += value
            }
        }
        return out
    }
}

extension ValueTemplate.Pipe {
    func apply(to value: String) -> String {
        switch self {
        case .lower: return value.lowercased()
        case .upper: return value.uppercased()
        case .trim: return value.trimmingCharacters(in: .whitespacesAndNewlines)
        case .left(let n): return String(value.prefix(n))
        case .substring(let start, let length): return String(value.dropFirst(start).prefix(length))
        case .replace(let a, let b): return value.replacingOccurrences(of: a, with: b)
        case .defaultValue(let fallback): return value.isEmpty ? fallback : value
        }
    }
}

/// Strong random passwords for `generate: password`.
public enum PasswordGenerator {
    static let upper = Array("ABCDEFGHJKLMNPQRSTUVWXYZ")
    static let lower = Array("abcdefghijkmnopqrstuvwxyz")
    static let digits = Array("23456789")
    static let symbols = Array("!#$%&*+-=?@^_")

    /// 20 characters with at least one of each class, from the system's secure generator.
    public static func make(length: Int = 20) -> String {
        var generator = SystemRandomNumberGenerator()
        let all = upper + lower + digits + symbols
        var chars = [upper, lower, digits, symbols].map { $0.randomElement(using: &generator) ?? "x" }
        while chars.count < length { chars.append(all.randomElement(using: &generator) ?? "x") }
        chars.shuffle(using: &generator)
        return String(chars)
    }
}
