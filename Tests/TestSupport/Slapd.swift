import Foundation

/// A throwaway OpenLDAP server for tests: `slapd` with `back_mdb` and the core, cosine,
/// inetorgperson and nis schemas, one database per suffix, on a free port of 127.0.0.1.
///
/// Each suffix gets its root entry, `ou=People`, and a service account
/// `cn=sync,<suffix>` (password `sync-secret`) that may write everything. The server's
/// `sizelimit` applies to that account (not to the root DN), as Active Directory's does.
/// Ready once `ldapwhoami` answers; stopped by its pid when released.
public final class Slapd: @unchecked Sendable {
    public struct TLSFiles: Sendable {
        public let caFile: String
        public let certificateFile: String
        public let keyFile: String
    }

    public let folder: TemporaryFolder
    public let port: Int
    /// The ldaps:// port, when the server has TLS files.
    public let tlsPort: Int?
    public let suffixes: [String]
    private let process: Process

    public static let rootPassword = "root-secret"
    public static let syncPassword = "sync-secret"

    public var url: String { "ldap://127.0.0.1:\(port)" }
    public var ldapsURL: String? { tlsPort.map { "ldaps://127.0.0.1:\($0)" } }
    public static func rootDN(_ suffix: String) -> String { "cn=admin,\(suffix)" }
    public static func syncDN(_ suffix: String) -> String { "cn=sync,\(suffix)" }

    public init(suffixes: [String] = ["dc=corp,dc=example", "dc=partner,dc=example"], sizeLimit: Int? = nil,
                tls: TLSFiles? = nil, maxSize: Int = 256 << 20) throws {
        folder = try TemporaryFolder("syncwright-slapd")
        self.suffixes = suffixes
        let schema = "/etc/ldap/schema"
        let writers = suffixes.map { "by dn.exact=\"\(Self.syncDN($0))\" write" }.joined(separator: " ")
        var conf = """
            include \(schema)/core.schema
            include \(schema)/cosine.schema
            include \(schema)/inetorgperson.schema
            include \(schema)/nis.schema
            modulepath /usr/lib/ldap
            moduleload back_mdb
            pidfile \(folder.sub("slapd.pid"))
            argsfile \(folder.sub("slapd.args"))
            access to attrs=userPassword by self write \(writers) by anonymous auth by * none
            access to * \(writers) by * read

            """
        if let sizeLimit {
            // Paged searches may go on past the limit, as with Active Directory's MaxPageSize.
            conf += "sizelimit size.soft=\(sizeLimit) size.hard=\(sizeLimit) size.prtotal=unlimited\n"
        }
        if let tls {
            conf += "TLSCACertificateFile \(tls.caFile)\nTLSCertificateFile \(tls.certificateFile)\nTLSCertificateKeyFile \(tls.keyFile)\n"
        }
        for (index, suffix) in suffixes.enumerated() {
            let directory = folder.sub("db\(index)")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            conf += """

                database mdb
                maxsize \(maxSize)
                suffix "\(suffix)"
                rootdn "\(Self.rootDN(suffix))"
                rootpw \(Self.rootPassword)
                directory \(directory)
                index objectClass eq
                index uid,employeeNumber eq

                """
        }
        try conf.write(toFile: folder.sub("slapd.conf"), atomically: true, encoding: .utf8)
        // A free port may be taken by another process between finding it and slapd binding it
        // (tests run in parallel): then slapd exits at once, and it is started again on others.
        var attempt = 0
        while true {
            attempt += 1
            let port = try Self.freePort()
            let tlsPort = tls == nil ? nil : try Self.freePort()
            var listeners = "ldap://127.0.0.1:\(port)/"
            if let tlsPort { listeners += " ldaps://127.0.0.1:\(tlsPort)/" }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/slapd")
            // -d 0: stay in the foreground (so this object owns the pid); errors still go to stderr.
            process.arguments = ["-f", folder.sub("slapd.conf"), "-h", listeners, "-d", "0"]
            process.standardOutput = FileHandle.nullDevice
            let logPath = folder.sub("slapd-\(attempt).log")
            FileManager.default.createFile(atPath: logPath, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: logPath)
            try process.run()
            do {
                try Self.waitUntilReady(process, url: "ldap://127.0.0.1:\(port)", rootDN: Self.rootDN(suffixes[0]))
                self.port = port
                self.tlsPort = tlsPort
                self.process = process
                break
            } catch let failure as ProcessFailure {
                if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
                let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                FileHandle.standardError.write(Data("slapd attempt \(attempt) on port \(port) failed (\(failure.description)): \(output.suffix(500))\n".utf8))
                guard attempt < 5 else {
                    throw ProcessFailure(description: "\(failure.description) after \(attempt) attempts; config: "
                                         + "\(folder.sub("slapd.conf")); slapd said: \(output.suffix(2_000))")
                }
            }
        }
        for suffix in suffixes {
            let rdn = suffix.split(separator: ",")[0].split(separator: "=")[1]
            try add("""
                dn: \(suffix)
                objectClass: dcObject
                objectClass: organization
                dc: \(rdn)
                o: \(rdn)

                dn: ou=People,\(suffix)
                objectClass: organizationalUnit
                ou: People

                dn: \(Self.syncDN(suffix))
                objectClass: organizationalRole
                objectClass: simpleSecurityObject
                cn: sync
                userPassword: \(Self.syncPassword)

                """, suffix: suffix)
        }
    }

    deinit { stop() }

    /// Stops the server by its pid. SIGKILL, because the child inherits the test runner's thread
    /// signal mask, in which SIGTERM is blocked; the data is thrown away anyway.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    private static func waitUntilReady(_ process: Process, url: String, rootDN: String) throws {
        let deadline = Date().addingTimeInterval(15)
        var last = ""
        while Date() < deadline {
            guard process.isRunning else {
                throw ProcessFailure(description: "slapd exited at start (\(process.terminationStatus))")
            }
            let result = try runProcess("/usr/bin/ldapwhoami", ["-x", "-H", url, "-D", rootDN, "-w", Self.rootPassword])
            if result.status == 0 { return }
            last = result.stderr
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ProcessFailure(description: "slapd did not answer on \(url) within 15 s: \(last)")
    }

    /// `ldapadd` as the suffix's root DN.
    public func add(_ ldif: String, suffix: String? = nil) throws {
        let file = folder.sub("add-\(UUID().uuidString.prefix(8)).ldif")
        try ldif.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try runProcess("/usr/bin/ldapadd", ["-x", "-H", url, "-D", Self.rootDN(suffix ?? suffixes[0]),
                                                          "-w", Self.rootPassword, "-f", file])
        guard result.status == 0 else { throw ProcessFailure(description: "ldapadd failed: \(result.stderr)") }
    }

    /// `ldapsearch` as the root DN (no size limit): LDIF without wrapping or comments.
    public func search(_ base: String, _ filter: String = "(objectClass=*)", _ attributes: [String] = [],
                       scope: String = "sub") throws -> String {
        let suffix = suffixes.first { base.lowercased().hasSuffix($0.lowercased()) } ?? suffixes[0]
        let result = try runProcess("/usr/bin/ldapsearch", ["-x", "-H", url, "-D", Self.rootDN(suffix), "-w", Self.rootPassword,
                                                             "-LLL", "-o", "ldif-wrap=no", "-s", scope, "-b", base, filter] + attributes)
        guard result.status == 0 || result.status == 32 else { throw ProcessFailure(description: "ldapsearch failed: \(result.stderr)") }
        return result.stdout
    }

    /// The DNs below `base`, sorted, as ldapsearch prints them.
    public func dns(_ base: String) throws -> [String] {
        try search(base, "(objectClass=*)", ["1.1"], scope: "one").split(separator: "\n")
            .filter { $0.hasPrefix("dn: ") || $0.hasPrefix("dn:: ") }
            .map { line in
                line.hasPrefix("dn:: ")
                    ? String(decoding: Data(base64Encoded: String(line.dropFirst(5))) ?? Data(), as: UTF8.self)
                    : String(line.dropFirst(4))
            }
            .sorted()
    }

    /// A free TCP port on 127.0.0.1 (bound, read, closed: the OS does not hand it out again at once).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProcessFailure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ProcessFailure(description: "cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A CA and a server certificate for `address` (127.0.0.1) and localhost, made with openssl
    /// now. The address is a DNS name too: mbedTLS (libgit2's TLS here) matches DNS names only.
    public static func makeCertificates(in folder: String, name: String = "Test CA", address: String = "127.0.0.1") throws
        -> TLSFiles {
        func openssl(_ arguments: [String]) throws {
            let result = try runProcess("/usr/bin/openssl", arguments, in: folder)
            guard result.status == 0 else { throw ProcessFailure(description: "openssl \(arguments[0]) failed: \(result.stderr)") }
        }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                     "-subj", "/CN=\(name)"])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=\(address)"])
        try "subjectAltName=IP:\(address),DNS:localhost,DNS:\(address)\n".write(toFile: (folder as NSString).appendingPathComponent("san.ext"),
                                                              atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "server.pem", "-days", "2", "-extfile", "san.ext"])
        let path = { (name: String) in (folder as NSString).appendingPathComponent(name) }
        return TLSFiles(caFile: path("ca.pem"), certificateFile: path("server.pem"), keyFile: path("server.key"))
    }
}
