import Directory
import Foundation
import TestSupport
import Testing

func readAll(_ directory: Directory, base: String? = nil) throws -> [Entry] {
    var all: [Entry] = []
    try directory.read(base: base, pageSize: 2) { all += $0 }
    return all
}

@Suite struct CSVTests {
    let nasty = "\u{FEFF}id,name,title,phones\r\n"
        + "1,\"Smith, Bob\",\"Lead \"\"Identity\"\" Architect\",+49 1;+49 2\r\n"
        + "2,Dörte Müller,\"two\nlines\",\r\n"
        + "3,,\" padded \",+49 3"

    @Test func readsQuotesCommasNewlinesUnicodeBOMAndNoTrailingNewline() throws {
        let csv = CSVDirectory(.contents(Data(nasty.utf8), label: "hr.csv"), what: "connection hr",
                               multiValueDelimiters: ["phones": ";"], missingIsEmpty: false)
        let rows = try readAll(csv)
        #expect(rows.map(\.dn) == ["#1", "#2", "#3"])
        #expect(rows[0]["name"] == ["Smith, Bob"])
        #expect(rows[0]["title"] == ["Lead \"Identity\" Architect"])
        #expect(rows[0]["phones"] == ["+49 1", "+49 2"])
        #expect(rows[1]["name"] == ["Dörte Müller"])
        #expect(rows[1]["title"] == ["two\nlines"])
        #expect(rows[1]["phones"].isEmpty) // empty field: absent
        #expect(rows[2]["name"].isEmpty)
        #expect(rows[2]["title"] == [" padded "])
        #expect(rows[0]["ID"] == ["1"]) // attribute names ignore case
    }

    @Test func roundTripsThroughAFile() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("out.csv")
        try Data(nasty.utf8).write(to: URL(fileURLWithPath: path))
        let csv = CSVDirectory(.path(path), what: "connection out", multiValueDelimiters: ["phones": ";"], missingIsEmpty: false)
        let before = try readAll(csv)
        try csv.apply(.modify(dn: "#3", [Modification(.replace, "name", ["Chi, \"the\" Nguyen"])]))
        try csv.apply(.add(Entry(dn: "", attributes: [("id", ["4"]), ("mail", ["x@y"])])))
        try csv.commit()
        let again = try readAll(CSVDirectory(.path(path), what: "c", multiValueDelimiters: ["phones": ";"], missingIsEmpty: false))
        #expect(Array(again.prefix(2)) == Array(before.prefix(2)))
        #expect(again[2]["name"] == ["Chi, \"the\" Nguyen"])
        #expect(again[3]["mail"] == ["x@y"] && again[3]["id"] == ["4"])
        // Read the bytes: Foundation's String(contentsOfFile:) would drop a BOM.
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        #expect(text.hasPrefix("\u{FEFF}id,name,title,phones,mail\r\n")) // BOM and CRLF kept, new column appended
        #expect(text.contains("3,\"Chi, \"\"the\"\" Nguyen\",\" padded \",+49 3,\r\n"))
    }

    @Test func malformedFilesNameTheLine() throws {
        func error(_ text: String) -> String? {
            let csv = CSVDirectory(.contents(Data(text.utf8), label: "hr.csv"), what: "connection hr", missingIsEmpty: false)
            do { _ = try readAll(csv); return nil } catch { return "\(error)" }
        }
        #expect(error("a,b\n1,\"open\n2,3\n") == "connection hr: hr.csv: line 2: a quoted field is never closed")
        #expect(error("a,b\n1,2,3\n") == "connection hr: hr.csv: line 2: 3 fields, but the header has 2")
        #expect(error("a,b\n\"x\"y,2\n") == "connection hr: hr.csv: line 2: unexpected text after a closing quote")
        #expect(error("a,A\n1,2\n") == "connection hr: hr.csv: line 1: the header names the column 'A' twice")
    }

    @Test func aMissingSourceFailsAndAMissingDestinationIsEmpty() throws {
        let folder = try TemporaryFolder()
        let source = CSVDirectory(.path(folder.sub("none.csv")), what: "connection hr", missingIsEmpty: false)
        #expect(throws: DirectoryError.file(connection: "connection hr", path: folder.sub("none.csv"), problem: "cannot read \(folder.sub("none.csv")): the file does not exist")) {
            try readAll(source)
        }
        let destination = CSVDirectory(.path(folder.sub("none.csv")), what: "connection out", missingIsEmpty: true)
        #expect(try readAll(destination).isEmpty)
    }

    @Test func multipleValuesWithoutADelimiterFailThatRowOnly() throws {
        let folder = try TemporaryFolder()
        let csv = CSVDirectory(.path(folder.sub("o.csv")), what: "c", missingIsEmpty: true)
        #expect(throws: DirectoryError.self) { try csv.apply(.add(Entry(dn: "", attributes: [("phone", ["1", "2"])]))) }
        try csv.apply(.add(Entry(dn: "", attributes: [("phone", ["1"])])))
        try csv.commit()
        #expect(try String(contentsOfFile: folder.sub("o.csv"), encoding: .utf8) == "phone\n1\n")
    }

    @Test func aRepositoryFileCannotBeWritten() throws {
        let csv = CSVDirectory(.contents(Data("a\n1\n".utf8), label: "data/hr.csv"), what: "connection hr", missingIsEmpty: false)
        #expect(throws: DirectoryError.file(connection: "connection hr", path: "data/hr.csv", problem: "data/hr.csv is read from the config repository and cannot be written; use path for a destination")) {
            try csv.apply(.delete(dn: "#1"))
        }
    }
}

@Suite struct LDIFTests {
    let sample = """
        version: 1
        # a comment that is
         folded
        dn: uid=bsmith,ou=People,dc=corp,dc=example
        objectClass: inetOrgPerson
        cn: Bob
          Smith
        description:: RMO2cnRlIE3DvGxsZXI=
        mail: bob@corp.example

        dn:: Y249RMO2cnRlIE3DvGxsZXIsb3U9UGVvcGxlLGRjPWNvcnAsZGM9ZXhhbXBsZQ==
        cn: x
        """

    @Test func readsFoldedBase64AndComments() throws {
        let entries = try LDIFCodec.parse(Data(sample.utf8), what: "f")
        #expect(entries.count == 2)
        #expect(entries[0].dn == "uid=bsmith,ou=People,dc=corp,dc=example")
        #expect(entries[0]["cn"] == ["Bob Smith"])
        #expect(entries[0]["description"] == ["Dörte Müller"])
        #expect(entries[0]["objectclass"] == ["inetOrgPerson"])
        #expect(entries[1].dn == "cn=Dörte Müller,ou=People,dc=corp,dc=example")
    }

    @Test func roundTripsNastyValues() throws {
        let long = String(repeating: "x", count: 200)
        let entries = [
            Entry(dn: "cn=Smith\\, Bob,ou=People,dc=corp", attributes: [
                ("cn", ["Smith, Bob"]), ("description", [" leading space", "trailing ", ":colon", "<angle", "Müller"]),
                ("note", [Value(long)]), ("photo", [Value(Data([0, 1, 2, 255]))]), ("multi", ["a\nb", "c\r\nd"]),
                // Binary values of every length modulo 3, so each base64 padding case is written.
                ("blob", (1...7).map { length in Value(Data((0..<length).map { UInt8(250 - $0) })) }),
            ]),
            Entry(dn: "uid=ümlaut,dc=corp", attributes: [("uid", ["ümlaut"])]),
        ]
        let encoded = LDIFCodec.encode(entries)
        let text = String(decoding: encoded, as: UTF8.self)
        #expect(text.split(separator: "\n").allSatisfy { $0.utf8.count <= 76 })
        #expect(text.contains("description:: IGxlYWRpbmcgc3BhY2U="))
        #expect(text.contains("dn:: dWlkPcO8bWxhdXQsZGM9Y29ycA=="))
        for length in 1...7 {
            let value = Data((0..<length).map { UInt8(250 - $0) })
            #expect(text.contains("blob:: \(value.base64EncodedString())\n"))
        }
        #expect(try LDIFCodec.parse(encoded, what: "f") == entries)
        // No trailing newline after the last record is fine too.
        #expect(try LDIFCodec.parse(encoded.dropLast(), what: "f") == entries)
    }

    @Test func readsOnlyBelowTheBase() throws {
        let text = "dn: ou=People,dc=corp\nou: People\n\ndn: uid=a,ou=People,dc=corp\nuid: a\n\ndn: uid=b,ou=Other,dc=corp\nuid: b\n"
        let ldif = LDIFDirectory(.contents(Data(text.utf8), label: "x.ldif"), what: "c", missingIsEmpty: false)
        #expect(try readAll(ldif, base: "OU=People, DC=corp").map(\.dn) == ["ou=People,dc=corp", "uid=a,ou=People,dc=corp"])
    }

    @Test func changeRecordsAndBadBase64AreRefused() {
        #expect(throws: DirectoryError.malformed(connection: "f", line: 2, problem: "change records (changetype) are not supported; the file must hold entries")) {
            try LDIFCodec.parse(Data("dn: cn=x\nchangetype: add\n".utf8), what: "f")
        }
        #expect(throws: DirectoryError.malformed(connection: "f", line: 2, problem: "the base64 value of cn is not valid")) {
            try LDIFCodec.parse(Data("dn: cn=x\ncn:: !!!\n".utf8), what: "f")
        }
        #expect(throws: DirectoryError.malformed(connection: "f", line: 1, problem: "a record must start with dn:, found cn:")) {
            try LDIFCodec.parse(Data("cn: x\n".utf8), what: "f")
        }
    }

    @Test func renameModifyDeleteAndAtomicCommit() throws {
        let folder = try TemporaryFolder()
        let path = folder.sub("corp.ldif")
        let ldif = LDIFDirectory(.path(path), what: "connection corp", missingIsEmpty: true)
        try ldif.apply(.add(Entry(dn: "uid=a,ou=People,dc=corp", attributes: [("uid", ["a"]), ("sn", ["A"])])))
        try ldif.apply(.add(Entry(dn: "uid=b,ou=People,dc=corp", attributes: [("uid", ["b"])])))
        #expect(throws: DirectoryError.object(dn: "UID=a,ou=People,dc=corp", problem: "UID=a,ou=People,dc=corp is the same name as uid=a,ou=People,dc=corp, which already exists "
                                         + "(DNs compare without regard to escapes, runs of spaces and the case of attribute types)")) {
            try ldif.apply(.add(Entry(dn: "UID=a,ou=People,dc=corp")))
        }
        #expect(!FileManager.default.fileExists(atPath: path)) // nothing visible before commit
        try ldif.commit()
        let reopened = LDIFDirectory(.path(path), what: "c", missingIsEmpty: false)
        try reopened.apply(.rename(dn: "uid=a,ou=People,dc=corp", newRDN: "uid=a2", newSuperior: nil))
        try reopened.apply(.modify(dn: "uid=a2,ou=People,dc=corp", [Modification(.replace, "uid", ["a2"]),
                                                                     Modification(.delete, "sn", [])]))
        try reopened.apply(.delete(dn: "uid=b,ou=People,dc=corp"))
        try reopened.commit()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "version: 1\n\ndn: uid=a2,ou=People,dc=corp\nuid: a2\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["corp.ldif"]) // no temp files left
    }

    /// A destination file that fails to parse half way must never be written back with only the
    /// records before the fault: every change fails, each time, and the file stays as it was.
    @Test func aDestinationThatFailsToParseIsNeverWrittenBackHalfRead() throws {
        let folder = try TemporaryFolder()
        let cases: [(name: String, text: String, make: (String) -> any Directory, add: DirectoryChange, error: String)] = [
            ("corp.ldif", "dn: uid=a,dc=corp\nuid: a\n\ndn: uid=b,dc=corp\nuid:: !!!\n\ndn: uid=c,dc=corp\nuid: c\n",
             { LDIFDirectory(.path($0), what: "connection corp", missingIsEmpty: true) },
             .add(Entry(dn: "uid=new,dc=corp", attributes: [("uid", ["new"])])), "line 5: the base64 value of uid is not valid"),
            ("out.csv", "uid,sn\na,A\nb\nc,C\n",
             { CSVDirectory(.path($0), what: "connection out", missingIsEmpty: true) },
             .add(Entry(dn: "", attributes: [("uid", ["new"])])), "line 3: 1 fields, but the header has 2"),
        ]
        for item in cases {
            let path = folder.sub(item.name)
            try item.text.write(toFile: path, atomically: true, encoding: .utf8)
            let directory = item.make(path)
            for _ in 0..<2 {
                let error = #expect(throws: DirectoryError.self) { try directory.apply(item.add) }
                #expect(error?.description.hasSuffix(item.error) == true, "\(item.name): \(error?.description ?? "")")
            }
            #expect(throws: DirectoryError.self) { try readAll(directory, base: nil) }
            try directory.commit()
            #expect(try String(contentsOfFile: path, encoding: .utf8) == item.text, "\(item.name) was rewritten")
        }
    }
}

@Suite struct DistinguishedNameTests {
    @Test func escapesPerRFC4514() {
        #expect(DistinguishedName.escape("Smith, Bob") == "Smith\\, Bob")
        #expect(DistinguishedName.escape("a+b\"c\\d<e>f;g") == "a\\+b\\\"c\\\\d\\<e\\>f\\;g")
        #expect(DistinguishedName.escape("#1 ") == "\\#1\\ ")
        #expect(DistinguishedName.escape(" x") == "\\ x")
        #expect(DistinguishedName.escape("Dörte") == "Dörte")
        #expect(DistinguishedName.make(rdnAttribute: "cn", value: "Smith, Bob", container: "ou=People,dc=corp")
                == "cn=Smith\\, Bob,ou=People,dc=corp")
    }

    @Test func splitsAndNormalizes() {
        #expect(DistinguishedName.split("cn=Smith\\, Bob,ou=People,dc=corp") == ("cn=Smith\\, Bob", "ou=People,dc=corp"))
        #expect(DistinguishedName.normalize("UID=a, OU=People ,dc=corp") == "uid=a,ou=People,dc=corp")
        #expect(DistinguishedName.normalize("cn=Smith\\, Bob") == "cn=Smith\\, Bob")
        // Servers answer with hex escapes; both spellings are one name.
        #expect(DistinguishedName.normalize("cn=Smith\\2C \\22Jr\\22 \\2B M\\C3\\BCller\\5Cx,ou=People")
                == DistinguishedName.normalize(#"cn=Smith\, \"Jr\" \+ Müller\\x,ou=People"#))
        #expect(DistinguishedName.normalize("cn=a\\2cb") == "cn=a\\,b")
    }
}

@Suite struct LargeFileTests {
    /// Files over 1 MiB are parsed in parts on all cores; the result must match the sequential parse.
    @Test func aLargeLDIFParsesInPartsExactlyLikeTheSequentialParser() throws {
        var entries: [Entry] = []
        for i in 0..<25_000 {
            entries.append(Entry(dn: "uid=user\(i),ou=People,dc=corp", attributes: [
                ("uid", [Value("user\(i)")]), ("cn", [Value("Üser \(i)")]),
                ("description", [Value(String(repeating: "long text ", count: i % 12))]),
            ]))
        }
        let data = LDIFCodec.encode(entries)
        #expect(data.count > 2 << 20)
        let folder = try TemporaryFolder()
        try data.write(to: URL(fileURLWithPath: folder.sub("big.ldif")))
        let read = try readAll(LDIFDirectory(.path(folder.sub("big.ldif")), what: "c", missingIsEmpty: false))
        #expect(read.count == entries.count)
        #expect(read == (try LDIFCodec.parse(data, what: "c")))
        #expect(read == entries)

        // An error near the end names its line in the whole file.
        var text = String(decoding: data, as: UTF8.self)
        text += "\ndn: uid=bad,dc=corp\nchangetype: add\n"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
        try Data(text.utf8).write(to: URL(fileURLWithPath: folder.sub("bad.ldif")))
        #expect(throws: DirectoryError.malformed(connection: "c: \(folder.sub("bad.ldif"))", line: lines - 1, problem: "change records (changetype) are not supported; the file must hold entries")) {
            try readAll(LDIFDirectory(.path(folder.sub("bad.ldif")), what: "c", missingIsEmpty: false))
        }
    }
}

@Suite struct LargeCSVTests {
    /// A large file with quoted line breaks: every row read right, written back byte for byte,
    /// and an error near the end naming its line.
    @Test func aLargeCSVReadsAndRoundTripsExactly() throws {
        var text = "\n\u{FEFF}id,name,note,phones\r\n".replacingOccurrences(of: "\n\u{FEFF}", with: "\u{FEFF}")
        for i in 0..<40_000 {
            // Quoted commas, doubled quotes and line breaks inside quotes, some of which will straddle a part's end.
            let note = i % 7 == 0 ? "\"line one\nline \"\"two\"\", \(i)\"" : "plain \(i)"
            text += "\(i),Person \(i),\(note),+49 \(i);+49 \(i + 1)\r\n"
        }
        let data = Data(text.utf8)
        #expect(data.count > 2 << 20)
        let folder = try TemporaryFolder()
        try data.write(to: URL(fileURLWithPath: folder.sub("big.csv")))
        let read = try readAll(CSVDirectory(.path(folder.sub("big.csv")), what: "c", multiValueDelimiters: ["phones": ";"],
                                            missingIsEmpty: false))
        #expect(read.count == 40_000)
        #expect(read[7]["note"] == ["line one\nline \"two\", 7"])
        #expect(read[39_999].dn == "#40000" && read[39_999]["phones"] == ["+49 39999", "+49 40000"])
        for (index, entry) in read.enumerated() where index % 997 == 0 {
            #expect(entry.dn == "#\(index + 1)")
            #expect(entry["id"] == [Value("\(index)")])
        }
        // Round trip: writing it back gives the same bytes (BOM and CRLF kept).
        let copy = CSVDirectory(.path(folder.sub("big.csv")), what: "c", multiValueDelimiters: ["phones": ";"], missingIsEmpty: false)
        try copy.apply(.modify(dn: "#1", [Modification(.replace, "name", ["Person 0"])]))
        try copy.commit()
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder.sub("big.csv"))) == data)

        // An error near the end names its line in the whole file (one quoted note spans two lines).
        let bad = text + "40000,too,many,fields,here\r\n"
        try Data(bad.utf8).write(to: URL(fileURLWithPath: folder.sub("bad.csv")))
        let physicalLines = text.utf8.filter { $0 == 0x0A }.count + 1 // the line after every line feed of `text`
        #expect(throws: DirectoryError.malformed(connection: "c: \(folder.sub("bad.csv"))", line: physicalLines, problem: "5 fields, but the header has 4")) {
            try readAll(CSVDirectory(.path(folder.sub("bad.csv")), what: "c", missingIsEmpty: false))
        }
    }
}

@Suite struct CSVErrorPlaceTests {
    /// A stray quote opens a field that swallows lines: the error names where parsing gave up
    /// and where the quote was opened.
    @Test func aStrayQuoteIsNamedWhereItWasOpened() throws {
        let text = "id,name\n1,\"Smith\n2,Jones\n3,\"Lee\"\n"
        let csv = CSVDirectory(.contents(Data(text.utf8), label: "in.csv"), what: "connection src", missingIsEmpty: false)
        #expect { try csv.read(base: nil, pageSize: 10) { _ in } } throws: {
            "\($0)" == "connection src: in.csv: line 4: unexpected text after a closing quote; the quoted field opened on line 2 "
                + "runs to line 4: is a quote missing or stray on line 2?"
        }
        let wide = "id,name\n1,\"Smith\n2,Jones\",x\n"
        let other = CSVDirectory(.contents(Data(wide.utf8), label: "in.csv"), what: "connection src", missingIsEmpty: false)
        #expect { try other.read(base: nil, pageSize: 10) { _ in } } throws: {
            "\($0)".hasSuffix("line 2: 3 fields, but the header has 2; the quoted field opened on line 2 runs to line 3: "
                + "is a quote missing or stray on line 2?")
        }
    }
}
