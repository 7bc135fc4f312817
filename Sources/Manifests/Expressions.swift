/// A syntax error in a filter or template, at a 1-based column of the expression text.
public struct ExpressionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let column: Int
    public let message: String
    public init(column: Int, message: String) {
        self.column = column
        self.message = message
    }
    public var description: String { "column \(column): \(message)" }
}

// MARK: Filters

/// A source filter: `status == "active" && !(title startsWith "Intern")`.
///
/// Fields are multi-valued: a comparison holds when **any** value matches, and `!=` holds when
/// no value equals. A missing field has no values. Comparisons are exact (case-sensitive).
public indirect enum FilterExpression: Sendable, Equatable {
    public enum Comparison: String, Sendable {
        case equals = "==", notEquals = "!=", contains, startsWith
        /// Numeric: a value that reads as a number compares with the operand (a number).
        case lessThan = "<", atMost = "<=", greaterThan = ">", atLeast = ">="

        public var isNumeric: Bool { [.lessThan, .atMost, .greaterThan, .atLeast].contains(self) }

        /// Whether `value` (a number) compares with `operand` as this comparison says.
        public func holds(_ value: Double, _ operand: Double) -> Bool {
            switch self {
            case .lessThan: value < operand
            case .atMost: value <= operand
            case .greaterThan: value > operand
            case .atLeast: value >= operand
            default: false
            }
        }
    }
    case compare(field: String, Comparison, String)
    case oneOf(field: String, [String])
    case exists(field: String)
    case not(FilterExpression)
    case and(FilterExpression, FilterExpression)
    case or(FilterExpression, FilterExpression)

    /// Every field the filter reads, in the order written, each once.
    public var fields: [String] {
        var out: [String] = []
        func walk(_ e: FilterExpression) {
            switch e {
            case .compare(let field, _, _), .oneOf(let field, _), .exists(let field):
                if !out.contains(where: { $0.lowercased() == field.lowercased() }) { out.append(field) }
            case .not(let inner): walk(inner)
            case .and(let a, let b), .or(let a, let b): walk(a); walk(b)
            }
        }
        walk(self)
        return out
    }

    /// Whether the expression holds for an object whose field `name` has `values(name)` (none:
    /// absent). The same rules as on entries: any value may match; `!=` holds when none equals;
    /// numeric comparisons hold when any value reads as a number that compares.
    public func holds(_ values: (String) -> [String]) -> Bool {
        switch self {
        case .compare(let field, let comparison, let operand):
            let found = values(field)
            switch comparison {
            case .equals: return found.contains(operand)
            case .notEquals: return !found.contains(operand)
            case .contains: return found.contains { $0.contains(operand) }
            case .startsWith: return found.contains { $0.hasPrefix(operand) }
            case .lessThan, .atMost, .greaterThan, .atLeast:
                guard let number = Double(operand) else { return false }
                return found.contains { Double($0).map { comparison.holds($0, number) } ?? false }
            }
        case .oneOf(let field, let list): return values(field).contains { list.contains($0) }
        case .exists(let field): return !values(field).isEmpty
        case .not(let inner): return !inner.holds(values)
        case .and(let a, let b): return a.holds(values) && b.holds(values)
        case .or(let a, let b): return a.holds(values) || b.holds(values)
        }
    }

    public static func parse(_ text: String) throws(ExpressionError) -> FilterExpression {
        var parser = ExpressionLexer(text)
        let expression = try parser.parseOr()
        parser.skipSpaces()
        guard parser.atEnd else { throw parser.error("unexpected '\(parser.rest.prefix(12))'") }
        return expression
    }
}

/// A parser over Unicode scalars, shared by filters and templates. Columns count scalars, as
/// YAML positions do.
struct ExpressionLexer {
    let chars: [Unicode.Scalar]
    var index = 0
    /// Added to reported columns when the text is part of a larger string (template placeholders).
    let columnOffset: Int

    init(_ text: String, columnOffset: Int = 0) {
        chars = Array(text.unicodeScalars)
        self.columnOffset = columnOffset
    }

    init(_ scalars: ArraySlice<Unicode.Scalar>, columnOffset: Int) {
        chars = Array(scalars)
        self.columnOffset = columnOffset
    }

    var atEnd: Bool { index >= chars.count }
    var rest: String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: chars[min(index, chars.count)...])
        return String(out)
    }

    static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
    static func isLetter(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic }
    static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }

    func error(_ message: String) -> ExpressionError {
        ExpressionError(column: columnOffset + index + 1, message: message)
    }

    mutating func skipSpaces() {
        while index < chars.count, Self.isSpace(chars[index]) { index += 1 }
    }

    mutating func take(_ token: StaticString) -> Bool {
        skipSpaces()
        // Tokens are ASCII: compare them to the characters one by one, without allocating.
        let length = token.utf8CodeUnitCount
        guard index + length <= chars.count else { return false }
        let matched = token.withUTF8Buffer { bytes in
            for offset in 0..<length where chars[index + offset] != Unicode.Scalar(bytes[offset]) { return false }
            return true
        }
        guard matched else { return false }
        // A word token must not run into an identifier (`in` is not the start of `inactive`).
        let endsInLetter = token.withUTF8Buffer { bytes in bytes.last.map { Self.isLetter(Unicode.Scalar($0)) } ?? false }
        if endsInLetter, index + length < chars.count, isIdentifierCharacter(chars[index + length]) {
            return false
        }
        index += length
        return true
    }

    func isIdentifierCharacter(_ c: Unicode.Scalar) -> Bool {
        Self.isLetter(c) || Self.isDigit(c) || c == "_" || c == "-" || c == "." || c == ";"
    }

    mutating func identifier(_ what: String) throws(ExpressionError) -> String {
        skipSpaces()
        let start = index
        while index < chars.count, isIdentifierCharacter(chars[index]) { index += 1 }
        guard index > start, Self.isLetter(chars[start]) || chars[start] == "_" else {
            index = start
            throw error("expected \(what)")
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: chars[start..<index])
        return String(out)
    }

    mutating func stringLiteral() throws(ExpressionError) -> String {
        skipSpaces()
        guard index < chars.count, chars[index] == "\"" || chars[index] == "'" else {
            throw error("expected a quoted string")
        }
        let quote = chars[index]
        let start = index
        index += 1
        var out = String.UnicodeScalarView()
        while index < chars.count {
            let c = chars[index]
            if c == "\\" && index + 1 < chars.count {
                out.append(chars[index + 1])
                index += 2
                continue
            }
            if c == quote {
                index += 1
                return String(out)
            }
            out.append(c)
            index += 1
        }
        index = start
        throw error("the string is never closed with \(quote)")
    }

    mutating func number() throws(ExpressionError) -> Int {
        skipSpaces()
        let start = index
        if index < chars.count, chars[index] == "-" { index += 1 }
        while index < chars.count, Self.isDigit(chars[index]) { index += 1 }
        var digits = String.UnicodeScalarView()
        digits.append(contentsOf: chars[start..<index])
        guard let value = Int(String(digits)) else {
            index = start
            throw error("expected a number")
        }
        return value
    }

    // Filter grammar: or := and ('||' and)*; and := unary ('&&' unary)*; unary := '!' unary | primary.

    mutating func parseOr() throws(ExpressionError) -> FilterExpression {
        var left = try parseAnd()
        while take("||") { left = .or(left, try parseAnd()) }
        return left
    }

    mutating func parseAnd() throws(ExpressionError) -> FilterExpression {
        var left = try parseUnary()
        while take("&&") { left = .and(left, try parseUnary()) }
        return left
    }

    mutating func parseUnary() throws(ExpressionError) -> FilterExpression {
        if take("!=") { index -= 2; throw error("'!=' needs a field before it") }
        if take("!") { return .not(try parseUnary()) }
        return try parsePrimary()
    }

    mutating func parsePrimary() throws(ExpressionError) -> FilterExpression {
        if take("(") {
            let inner = try parseOr()
            guard take(")") else { throw error("expected ')'") }
            return inner
        }
        skipSpaces()
        let start = index
        if take("exists") {
            if take("(") {
                let field = try identifier("a field name")
                guard take(")") else { throw error("expected ')' after exists(\(field)") }
                return .exists(field: field)
            }
            index = start
        }
        let field = try identifier("a field name, '!', '(' or exists(field)")
        if take("==") { return .compare(field: field, .equals, try operand()) }
        if take("!=") { return .compare(field: field, .notEquals, try operand()) }
        // Two-character operators first: `<=` is not `<` followed by `=`.
        let numeric: FilterExpression.Comparison? = take("<=") ? .atMost : take(">=") ? .atLeast
            : take("<") ? .lessThan : take(">") ? .greaterThan : nil
        if let comparison = numeric {
            skipSpaces()
            let start = index
            let value = try operand()
            guard Double(value) != nil else {
                index = start
                throw error("\(comparison.rawValue) compares numbers: write a number after it")
            }
            return .compare(field: field, comparison, value)
        }
        if take("contains") { return .compare(field: field, .contains, try stringLiteral()) }
        if take("startsWith") { return .compare(field: field, .startsWith, try stringLiteral()) }
        if take("in") {
            guard take("[") else { throw error("expected '[' after in") }
            var values = [try operand()]
            while take(",") { values.append(try operand()) }
            guard take("]") else { throw error("expected ',' or ']'") }
            return .oneOf(field: field, values)
        }
        skipSpaces()
        throw error(atEnd ? "expected ==, !=, <, <=, >, >=, contains, startsWith or in after '\(field)'"
                          : "expected ==, !=, <, <=, >, >=, contains, startsWith or in after '\(field)', found '\(rest.prefix(8))'")
    }

    /// A quoted string, or a bare `true`, `false` or number, which stands for its text
    /// (`enabled == true` is `enabled == "true"`).
    mutating func operand() throws(ExpressionError) -> String {
        skipSpaces()
        guard index < chars.count, chars[index] != "\"", chars[index] != "'" else { return try stringLiteral() }
        if take("true") { return "true" }
        if take("false") { return "false" }
        let start = index
        if index < chars.count, chars[index] == "-" { index += 1 }
        while index < chars.count, Self.isDigit(chars[index]) || chars[index] == "." { index += 1 }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: chars[start..<index])
        guard index > start, Double(String(text)) != nil else {
            index = start
            throw error("expected a quoted string, true, false or a number")
        }
        return String(text)
    }
}

// MARK: Value templates

/// A value template: literal text with `{{ field | pipe | pipe(arg) }}` placeholders.
public struct ValueTemplate: Sendable, Equatable {
    public enum Pipe: Sendable, Equatable {
        case lower, upper, trim
        case left(Int)
        case substring(start: Int, length: Int)
        case replace(String, String)
        case defaultValue(String)
    }

    public enum Segment: Sendable, Equatable {
        case literal(String)
        case field(String, [Pipe])
    }

    public let segments: [Segment]

    public static func parse(_ text: String) throws(ExpressionError) -> ValueTemplate {
        var segments: [Segment] = []
        let chars = Array(text.unicodeScalars)
        var literal = String.UnicodeScalarView()
        var i = 0
        while i < chars.count {
            if chars[i] == "{", i + 1 < chars.count, chars[i + 1] == "{" {
                var j = i + 2
                while j + 1 < chars.count, !(chars[j] == "}" && chars[j + 1] == "}") { j += 1 }
                guard j + 1 < chars.count else {
                    throw ExpressionError(column: i + 1, message: "'{{' is never closed with '}}'")
                }
                if !literal.isEmpty { segments.append(.literal(String(literal))); literal = String.UnicodeScalarView() }
                segments.append(try placeholder(chars[(i + 2)..<j], offset: i + 2))
                i = j + 2
                continue
            }
            if chars[i] == "}", i + 1 < chars.count, chars[i + 1] == "}" {
                throw ExpressionError(column: i + 1, message: "'}}' has no matching '{{'")
            }
            literal.append(chars[i])
            i += 1
        }
        if !literal.isEmpty { segments.append(.literal(String(literal))) }
        return ValueTemplate(segments: segments)
    }

    private static func placeholder(_ text: ArraySlice<Unicode.Scalar>, offset: Int) throws(ExpressionError) -> Segment {
        var lexer = ExpressionLexer(text, columnOffset: offset)
        let field = try lexer.identifier("a field name inside {{ }}")
        var pipes: [Pipe] = []
        while lexer.take("|") {
            let name = try lexer.identifier("a pipe name after '|'")
            let start = lexer.index
            switch name {
            case "lower": pipes.append(.lower)
            case "upper": pipes.append(.upper)
            case "trim": pipes.append(.trim)
            case "left":
                guard lexer.take("(") else { throw lexer.error("left needs a length: left(n)") }
                let n = try lexer.number()
                guard lexer.take(")") else { throw lexer.error("expected ')' after left(\(n)") }
                guard n >= 0 else { lexer.index = start; throw lexer.error("left(n) needs n ≥ 0") }
                pipes.append(.left(n))
            case "substring":
                guard lexer.take("(") else { throw lexer.error("substring needs a start and a length: substring(start, length)") }
                let s = try lexer.number()
                guard lexer.take(",") else { throw lexer.error("substring needs a start and a length: substring(start, length)") }
                let l = try lexer.number()
                guard lexer.take(")") else { throw lexer.error("expected ')'") }
                guard s >= 0, l >= 0 else { lexer.index = start; throw lexer.error("substring(start, length) needs both ≥ 0") }
                pipes.append(.substring(start: s, length: l))
            case "replace":
                guard lexer.take("(") else { throw lexer.error("replace needs two strings: replace(\"a\", \"b\")") }
                let a = try lexer.stringLiteral()
                guard lexer.take(",") else { throw lexer.error("replace needs two strings: replace(\"a\", \"b\")") }
                let b = try lexer.stringLiteral()
                guard lexer.take(")") else { throw lexer.error("expected ')'") }
                guard !a.isEmpty else { lexer.index = start; throw lexer.error("replace needs a non-empty string to find") }
                pipes.append(.replace(a, b))
            case "default":
                guard lexer.take("(") else { throw lexer.error("default needs a value: default(\"x\")") }
                let value = try lexer.stringLiteral()
                guard lexer.take(")") else { throw lexer.error("expected ')'") }
                pipes.append(.defaultValue(value))
            default:
                lexer.index = start - name.count
                throw lexer.error("unknown pipe '\(name)' (use lower, upper, trim, left(n), substring(start, length), "
                                  + "replace(a, b) or default(x))")
            }
        }
        lexer.skipSpaces()
        guard lexer.atEnd else { throw lexer.error("expected '|' or '}}', found '\(lexer.rest.prefix(8))'") }
        return .field(field, pipes)
    }
}
