import Foundation

/// Attribute names as a reader meets them, as bytes: each spelling is mapped to its position in
/// one name list that the entries read share (spellings that differ only in letter case share a
/// position). Records and search results repeat one order of attributes, so the spelling after
/// the last one found is tried first.
struct NameSpellings {
    /// The name list, in first-seen order (after any names given at the start).
    private(set) var names: [AttributeName]
    private var spellings: [(bytes: [UInt8], index: Int)] = []
    private var last = -1

    init(names: [AttributeName] = []) {
        self.names = names
    }

    /// The position of `name` in `names`, adding it when it is new.
    mutating func index(of name: UnsafeRawBufferPointer) -> Int {
        func matches(_ spelling: [UInt8]) -> Bool {
            spelling.count == name.count && Bytes.matches(name, at: 0, spelling)
        }
        let guess = last + 1
        if guess < spellings.count, matches(spellings[guess].bytes) { last = guess; return spellings[guess].index }
        if let found = spellings.firstIndex(where: { matches($0.bytes) }) { last = found; return spellings[found].index }
        let attribute = AttributeName(String(decoding: name, as: UTF8.self))
        let index: Int
        if let known = names.firstIndex(of: attribute) {
            index = known // the same name in other letter case
        } else {
            index = names.count
            names.append(attribute)
        }
        spellings.append((Array(name), index))
        last = spellings.count - 1
        return index
    }
}
