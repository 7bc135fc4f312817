import Foundation

/// Byte-level helpers shared by the connectors and the sync engine: comparing and splitting
/// without building strings, and without force-unwrapping base addresses (an empty buffer has none).
public enum Bytes {
    /// Whether two buffers hold the same bytes.
    @inline(__always)
    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0, let x = a.baseAddress, let y = b.baseAddress else { return true }
        return memcmp(x, y, a.count) == 0
    }

    /// Whether the bytes are valid UTF-8 (ASCII checked first, without building a string).
    public static func isUTF8(_ value: UnsafeRawBufferPointer) -> Bool {
        var ascii = true
        for byte in value where byte >= 0x80 { ascii = false; break }
        return ascii || String(validating: value.bindMemory(to: UInt8.self), as: UTF8.self) != nil
    }

    /// Whether `haystack` holds `needle` at `offset` (false when it would run past the end).
    @inlinable
    public static func matches(_ haystack: UnsafeRawBufferPointer, at offset: Int, _ needle: UnsafeRawBufferPointer) -> Bool {
        guard offset >= 0, offset + needle.count <= haystack.count else { return false }
        guard needle.count > 0 else { return true }
        guard let h = haystack.baseAddress, let n = needle.baseAddress else { return false }
        return memcmp(h + offset, n, needle.count) == 0
    }

    /// Whether `haystack` holds `needle` at `offset`.
    @inlinable
    public static func matches(_ haystack: UnsafeRawBufferPointer, at offset: Int, _ needle: some ContiguousBytes) -> Bool {
        needle.withUnsafeBytes { matches(haystack, at: offset, $0) }
    }

    /// Calls `body` with the range of each part of `value` between `separator`s, trimmed of
    /// spaces; empty parts are left out. An empty separator gives the whole value, trimmed.
    @inlinable
    public static func forEachPart(of value: UnsafeRawBufferPointer, separatedBy separator: [UInt8], _ body: (Range<Int>) -> Void) {
        let count = value.count, width = separator.count
        var partStart = 0, i = 0
        func emit(_ end: Int) {
            var a = partStart, b = end
            while a < b, value[a] == 0x20 { a += 1 }
            while b > a, value[b - 1] == 0x20 { b -= 1 }
            if a < b { body(a..<b) }
        }
        if let first = separator.first {
            while i < count {
                if value[i] == first, matches(value, at: i, separator) {
                    emit(i)
                    i += width
                    partStart = i
                } else {
                    i += 1
                }
            }
        }
        emit(count)
    }
}
