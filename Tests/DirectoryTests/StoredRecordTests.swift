@testable import Directory
import Foundation
import TestSupport
import Testing

/// An LDIF destination hands its records to a job unparsed (`readStored`), and writes the records
/// nothing changed back as the bytes they were read as.
@Suite struct StoredRecordTests {
    /// Records in every shape the parser accepts: a comment inside a record, CRLF line ends, a
    /// line folded at an odd width, base64 values (a key among them), and no trailing newline.
    let text = "version: 1\n"
        + "# people\n"
        + "dn: uid=plain,ou=People,dc=corp\nobjectClass: inetOrgPerson\nemployeeNumber: 1\nuid: plain\ncn: Plain\n"
        + "\n"
        + "dn: uid=crlf,ou=People,dc=corp\r\nobjectClass: inetOrgPerson\r\nemployeeNumber: 2\r\nuid: crlf\r\n"
        + "\r\n"
        + "dn: uid=folded,ou=People,dc=corp\nobjectClass: inetOrgPerson\nemployeeNum\n ber: 3\n# a note\nuid: fol\n ded\n"
        + "\n"
        + "dn: uid=base64,ou=People,dc=corp\nobjectClass: inetOrgPerson\nEMPLOYEENUMBER:: NA==\nsn:: TcO8bGxlcg==\n"
        + "\n"
        + "dn: uid=nokey,ou=People,dc=corp\nobjectClass: inetOrgPerson\nuid: nokey"

    func stored(_ directory: Directory) throws -> [StoredEntry] {
        var all: [StoredEntry] = []
        try directory.readStored(ReadScope(), pageSize: 2) { all += $0 }
        return all
    }

    @Test func keysAreReadFromRecordsAsFromParsedEntries() throws {
        let directory = LDIFDirectory(.contents(Data(text.utf8), label: "corp.ldif"), what: "c", missingIsEmpty: false)
        let records = try stored(directory)
        let entries = try readAll(directory)
        #expect(records.map(\.dn) == entries.map(\.dn))
        #expect(records.map { $0.firstValueText(of: "employeeNumber") } == ["1", "2", "3", "4", nil])
        #expect(records.map { $0.firstValueText(of: "uid") } == ["plain", "crlf", "folded", nil, "nokey"])
        #expect(records.map { $0.firstValueText(of: "sn") } == [nil, nil, nil, "Müller", nil])
        for (record, entry) in zip(records, entries) { #expect(try record.entry() == entry) }
    }

    @Test func aRecordHoldsValuesOnlyWhenItsLinesAreExactlyTheWrittenOnes() throws {
        let long = String(repeating: "a very long description ", count: 8)
        let entry = Entry(dn: "uid=u,dc=corp", attributes: [
            ("objectClass", ["inetOrgPerson", "top"]), ("cn", ["Dörte Müller"]), ("description", [Value(long)]),
            ("mail", [" padded"]), ("title", [""]),
        ])
        let directory = LDIFDirectory(.contents(LDIFCodec.encode([entry]), label: "x.ldif"), what: "c", missingIsEmpty: false)
        let record = try #require(try stored(directory).first)
        #expect(record.holdsValues(of: entry)) // folded, base64 and empty lines as written
        var changed = entry
        changed["title"] = ["Boss"]
        #expect(!record.holdsValues(of: changed))
        var more = entry
        more["cn"] = ["Dörte Müller", "D. Müller"]
        #expect(!record.holdsValues(of: more))
        let reordered = Entry(dn: entry.dn, attributes: entry.attributes.reversed())
        #expect(!record.holdsValues(of: reordered))
        #expect(!record.holdsValues(of: Entry(dn: entry.dn, attributes: Array(entry.attributes.dropLast()))))
        // A parsed entry never claims to hold anything: the job compares it value by value.
        #expect(!StoredEntry(entry).holdsValues(of: entry))
    }

    @Test func recordsNothingChangedAreWrittenBackAsTheyWereRead() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("corp.ldif")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let directory = LDIFDirectory(.path(path), what: "c", missingIsEmpty: false)
        let before = try readAll(directory)
        try directory.apply(.modify(dn: "uid=plain,ou=People,dc=corp", [Modification(.replace, "cn", ["Changed"])]))
        try directory.apply(.delete(dn: "uid=base64,ou=People,dc=corp"))
        try directory.commit()
        let written = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        #expect(written == "version: 1\n"
            + "\ndn: uid=plain,ou=People,dc=corp\nobjectClass: inetOrgPerson\nemployeeNumber: 1\nuid: plain\ncn: Changed\n"
            + "\ndn: uid=crlf,ou=People,dc=corp\r\nobjectClass: inetOrgPerson\r\nemployeeNumber: 2\r\nuid: crlf\r\n"
            + "\ndn: uid=folded,ou=People,dc=corp\nobjectClass: inetOrgPerson\nemployeeNum\n ber: 3\n# a note\nuid: fol\n ded\n"
            + "\ndn: uid=nokey,ou=People,dc=corp\nobjectClass: inetOrgPerson\nuid: nokey\n")
        let after = try readAll(LDIFDirectory(.path(path), what: "c", missingIsEmpty: false))
        var expected = before.filter { $0.dn != "uid=base64,ou=People,dc=corp" }
        expected[0]["cn"] = ["Changed"]
        #expect(after == expected)
    }

    @Test func aBadLineIsFoundWhenTheFileIsReadNotWhenItsRecordIsNeeded() throws {
        let bad = text.replacingOccurrences(of: "sn:: TcO8bGxlcg==", with: "sn:: !!!")
        let directory = LDIFDirectory(.contents(Data(bad.utf8), label: "corp.ldif"), what: "c", missingIsEmpty: false)
        #expect(throws: DirectoryError.malformed(connection: "c: corp.ldif", line: 25, problem: "the base64 value of sn is not valid")) {
            try stored(directory)
        }
    }
}

/// The DN index keeps hashes; keys whose hashes collide must still be told apart. Real
/// collisions are too rare to meet in a test, so these hashes are made to collide.
@Suite struct KeyIndexTests {
    @Test func keysWithOneHashAreToldApartThroughEveryChange() throws {
        var keys = ["a", "b", "c"]
        var index = KeyIndex()
        #expect(index.insert("a", hash: 7, at: 0, keys: keys) == nil)
        #expect(index.insert("b", hash: 7, at: 1, keys: keys) == nil)
        #expect(index.insert("c", hash: 7, at: 2, keys: keys) == nil)
        #expect(["a", "b", "c", "d"].map { index.position(of: $0, hash: 7, keys: keys) } == [0, 1, 2, nil])
        // The key holding the hash goes; the others stay found.
        index.remove("a", hash: 7, keys: keys)
        #expect(["a", "b", "c"].map { index.position(of: $0, hash: 7, keys: keys) } == [nil, 1, 2])
        // A key in the second index takes the free hash, and is not found twice.
        keys.append("b")
        #expect(index.insert("b", hash: 7, at: 3, keys: keys) == 1)
        #expect(index.position(of: "b", hash: 7, keys: keys) == 3)
        index.remove("b", hash: 7, keys: keys)
        #expect(index.position(of: "b", hash: 7, keys: keys) == nil)
        // Taking an add back points the key where it was.
        keys.append("c")
        #expect(index.insert("c", hash: 7, at: 4, keys: keys) == 2)
        index.restore("c", hash: 7, from: 4, to: 2)
        keys.removeLast()
        #expect(index.position(of: "c", hash: 7, keys: keys) == 2)
    }

    @Test func buildingNamesTheSecondOfTwoEqualKeys() {
        let keys = ["x", "y", "x"]
        guard case .failure(let repeated) = KeyIndex.build(keys: keys, hashes: [1, 1, 1]) else {
            Issue.record("a repeated key was not found")
            return
        }
        #expect(repeated.position == 2)
    }

    @Test func aFileThatHoldsADNTwiceFailsTheReadAndIsNeverWritten() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("corp.ldif")
        let text = "dn: uid=a,dc=corp\nuid: a\n\ndn: UID=a, dc=corp\nuid: b\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let directory = LDIFDirectory(.path(path), what: "c", missingIsEmpty: false)
        #expect(throws: DirectoryError.duplicate(file: "c: \(path)", dn: "UID=a, dc=corp")) {
            try directory.readStored(ReadScope(), pageSize: 10) { _ in }
        }
        #expect(throws: DirectoryError.duplicate(file: "c: \(path)", dn: "UID=a, dc=corp")) {
            try directory.apply(.delete(dn: "uid=a,dc=corp"))
        }
        try directory.commit()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
    }
}

@Suite struct Base64CheckTests {
    /// A scan checks base64 values without decoding them when they are canonical; what it passes
    /// must be what Foundation decodes, and anything else goes to Foundation.
    @Test func whatTheScanPassesFoundationDecodes() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let text = Array(Data(bytes).base64EncodedString().utf8)
            let canonical = text.withUnsafeBufferPointer { LDIFReader.isCanonicalBase64($0) }
            #expect(canonical == (length > 0), "\(length) bytes")
            if canonical { #expect(Data(base64Encoded: Data(text)) == Data(bytes)) }
        }
        for text in ["QR==", "QUJ=", "QQ", "Q===", "QUJD=", "QU JD", "QUJD\n", "=QUJ", "QU=D", "ÄÄÄÄ"] {
            let bytes = Array(text.utf8)
            // Bits past the end, no padding, padding inside, spaces, line feeds, non-ASCII.
            #expect(!bytes.withUnsafeBufferPointer { LDIFReader.isCanonicalBase64($0) }, "\(text)")
        }
    }
}

@Suite struct EntryBufferTests {
    struct Refused: Error {}

    /// Values written straight into an entry's buffer: a value when something is written,
    /// nothing when nothing is, and the entry as before when the writer throws.
    @Test func appendValueAddsWhatIsWrittenAndNothingElse() throws {
        var entry = Entry(dn: "uid=a", names: ["cn", "sn"])
        entry.append(at: 1, bytes: Array("Smith".utf8)[...])
        entry.appendValue(at: 0) { $0.append(contentsOf: "Alice Smith".utf8) }
        entry.appendValue(at: 0) { _ in }
        #expect(throws: Refused.self) {
            try entry.appendValue(at: 1) { (bytes: inout [UInt8]) throws(Refused) in
                bytes.append(contentsOf: "half".utf8)
                throw Refused()
            }
        }
        entry.append(at: 1, bytes: Array("Jones".utf8)[...])
        #expect(entry.valueCount == 3)
        #expect(entry["cn"] == ["Alice Smith"])
        #expect(entry["sn"] == ["Smith", "Jones"])
        #expect(entry.byteCount == "SmithAlice SmithJones".utf8.count)
    }
}
