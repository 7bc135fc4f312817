import Directory
import Foundation
import Manifests

extension FilterExpression {
    /// Whether `entry` passes. Multi-valued fields match when any value does; comparisons are exact.
    public func matches(_ entry: Entry) -> Bool {
        switch self {
        case .compare(let field, let comparison, let operand):
            let values = entry[field].map { $0.text ?? "" }
            switch comparison {
            case .equals: return values.contains(operand)
            case .notEquals: return !values.contains(operand)
            case .contains: return values.contains { $0.contains(operand) }
            case .startsWith: return values.contains { $0.hasPrefix(operand) }
            }
        case .oneOf(let field, let list):
            return entry[field].contains { list.contains($0.text ?? "") }
        case .exists(let field):
            return !entry[field].isEmpty
        case .not(let inner):
            return !inner.matches(entry)
        case .and(let a, let b):
            return a.matches(entry) && b.matches(entry)
        case .or(let a, let b):
            return a.matches(entry) || b.matches(entry)
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
                if let first = entry[name].first {
                    guard let text = first.text else {
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
