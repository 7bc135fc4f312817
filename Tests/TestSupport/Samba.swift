import Foundation

/// A throwaway Samba Active Directory domain controller: provisioned into a temporary folder
/// (`samba-tool domain provision`), serving LDAP on a loopback address of its own (127.0.0.N)
/// with a certificate for that address from a CA of its own, and stopped by its pid.
///
/// Provisioning takes seconds, so each test process shares one DC per domain (`corp`), and a
/// watchdog shell stops it once the test process has ended, however it ended.
public final class SambaDC: @unchecked Sendable {
    public let folder: TemporaryFolder
    public let address: String
    /// Like `DC=corp,DC=test`.
    public let baseDN: String
    public let realm: String
    public let tls: Slapd.TLSFiles
    private let daemon: Daemon

    public static let adminPassword = "Adm1n-Passw0rd!"
    public var ldapURL: String { "ldap://\(address)" }
    public var ldapsURL: String { "ldaps://\(address)" }
    public var adminDN: String { "CN=Administrator,CN=Users,\(baseDN)" }

    /// Domain CORP.TEST on 127.0.0.2, for the whole test process.
    public static let corp = Result { () throws -> SambaDC in
        let dc = try SambaDC(address: "127.0.0.2", realm: "CORP.TEST", domain: "CORP")
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; kill -TERM \(dc.daemon.pid) 2>/dev/null; "
            + "sleep 3; kill -KILL \(dc.daemon.pid) 2>/dev/null; rm -rf '\(dc.folder.path)'"
        sambaWatchdog = try Daemon("/bin/sh", ["-c", script], log: "/dev/null")
        return dc
    }

    public init(address: String, realm: String, domain: String) throws {
        folder = try TemporaryFolder("syncwright-samba")
        self.address = address
        self.realm = realm
        baseDN = realm.split(separator: ".").map { "DC=\($0.lowercased())" }.joined(separator: ",")
        let certificates = folder.sub("tls")
        try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
        tls = try Slapd.makeCertificates(in: certificates, name: "\(realm) test CA", address: address)
        for sub in ["pid", "log"] {  // (samba makes its socket folders itself, with the modes it wants)
            try FileManager.default.createDirectory(atPath: folder.sub(sub), withIntermediateDirectories: true)
        }
        // Samba reads its key only when the key is private.
        chmod(tls.keyFile, 0o600)
        let options = [
            "interfaces=\(address)/8", "bind interfaces only=yes", "pid directory=\(folder.sub("pid"))",
            "winbindd socket directory=\(folder.sub("sockets"))", "ntp signd socket directory=\(folder.sub("ntp"))",
            "log file=\(folder.sub("log/log.%m"))", "ldb:nosync=true", "tls enabled=yes", "tls keyfile=\(tls.keyFile)",
            "tls certfile=\(tls.certificateFile)", "tls cafile=\(tls.caFile)",
        ]
        let provision = try runProcess("/usr/bin/samba-tool", [
            "domain", "provision", "--targetdir=\(folder.path)", "--realm=\(realm)", "--domain=\(domain)", "--server-role=dc",
            "--dns-backend=NONE", "--use-rfc2307", "--adminpass=\(Self.adminPassword)",
        ] + options.map { "--option=\($0)" })
        guard provision.status == 0 else {
            throw ProcessFailure(description: "samba-tool domain provision failed: \(provision.stderr.suffix(2_000))")
        }
        daemon = try Daemon("/usr/sbin/samba", ["-s", folder.sub("etc/smb.conf"), "--foreground", "--no-process-group", "-M", "single"],
                            log: folder.sub("samba.log"))
        guard waitForPort(636, host: address, daemon: daemon, seconds: 60) else {
            let log = (try? String(contentsOfFile: folder.sub("samba.log"), encoding: .utf8)) ?? ""
            daemon.stop()
            throw ProcessFailure(description: "samba did not serve ldaps on \(address):636: \(log.suffix(2_000))")
        }
    }

    deinit { stop() }

    /// Stops the DC by its pid: SIGTERM (which ends its children too), then SIGKILL.
    public func stop() { daemon.stop(signal: SIGTERM, grace: 10) }

    /// `ldapsearch` over ldaps as the domain's Administrator, verifying the DC's certificate:
    /// LDIF without wrapping or comments.
    public func search(_ base: String? = nil, _ filter: String = "(objectClass=*)", _ attributes: [String] = [],
                       scope: String = "sub") throws -> String {
        let result = try runProcess("/usr/bin/ldapsearch", [
            "-x", "-H", ldapsURL, "-D", adminDN, "-w", Self.adminPassword, "-LLL", "-o", "ldif-wrap=no", "-s", scope,
            "-b", base ?? baseDN, filter,
        ] + attributes, environment: ["LDAPTLS_CACERT": tls.caFile, "LDAPTLS_REQCERT": "demand"])
        guard result.status == 0 || result.status == 32 else { throw ProcessFailure(description: "ldapsearch failed: \(result.stderr)") }
        return result.stdout
    }

    /// `ldapadd` over ldaps as the domain's Administrator.
    public func add(_ ldif: String) throws {
        let file = folder.sub("add-\(UUID().uuidString.prefix(8)).ldif")
        try ldif.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try runProcess("/usr/bin/ldapadd", ["-x", "-H", ldapsURL, "-D", adminDN, "-w", Self.adminPassword, "-f", file],
                                    environment: ["LDAPTLS_CACERT": tls.caFile, "LDAPTLS_REQCERT": "demand"])
        guard result.status == 0 else { throw ProcessFailure(description: "ldapadd failed: \(result.stderr)") }
    }
}

/// Kept so that it is never stopped (nor reaped) while the tests run.
nonisolated(unsafe) private var sambaWatchdog: Daemon?
