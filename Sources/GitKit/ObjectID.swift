import CGit2
import Foundation

/// A git object id (SHA-1), held by value.
public struct ObjectID: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The 40-character lowercase hex form.
    public let hex: String

    init(_ oid: git_oid) {
        var copy = oid
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_fmt(&buffer, &copy)
        self.hex = String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Parses a full 40-character hex id; nil for anything else.
    public init?(hex: String) {
        guard hex.count == 40, hex.allSatisfy({ $0.isHexDigit }) else { return nil }
        self.hex = hex.lowercased()
    }

    public var description: String { hex }

    /// The 7-character abbreviation used in file names and messages.
    public var short: String { String(hex.prefix(7)) }

    /// The libgit2 form. `hex` is validated at construction, so this cannot fail.
    var oid: git_oid {
        var oid = git_oid()
        _ = git_oid_fromstr(&oid, hex)
        return oid
    }
}
