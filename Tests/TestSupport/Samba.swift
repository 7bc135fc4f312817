import Foundation
import Synchronization

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
    public static let corp = Result { try shared(address: "127.0.0.2", realm: "CORP.TEST", domain: "CORP") }
    /// Domain PARTNER.TEST on 127.0.0.3, for the whole test process: the second domain.
    public static let partner = Result { try shared(address: "127.0.0.3", realm: "PARTNER.TEST", domain: "PARTNER") }

    /// A DC for the rest of the test process, with a watchdog shell that stops it (and removes
    /// its folder) once the process has ended, however it ended.
    private static func shared(address: String, realm: String, domain: String) throws -> SambaDC {
        let dc = try SambaDC(address: address, realm: realm, domain: domain)
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; kill -TERM \(dc.daemon.pid) 2>/dev/null; "
            + "sleep 3; kill -KILL \(dc.daemon.pid) 2>/dev/null; rm -rf '\(dc.folder.path)'"
        let watchdog = try Daemon("/bin/sh", ["-c", script], log: "/dev/null")
        sambaWatchdogs.withLock { $0.append(watchdog) }
        return dc
    }

    /// `domain` is the NetBIOS domain name; the DC's own NetBIOS name is `DC-<domain>`, so
    /// that two DCs on one machine do not share one.
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
            "interfaces=\(address)/8", "bind interfaces only=yes", "netbios name=DC-\(domain)", "pid directory=\(folder.sub("pid"))",
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

    /// `search`, parsed: DN → attribute (lowercased) → values, a base64 (`::`) value kept as
    /// `base64:…`.
    public func entries(_ base: String? = nil, _ filter: String = "(objectClass=*)", _ attributes: [String] = [],
                        scope: String = "sub") throws -> [String: [String: [String]]] {
        var out: [String: [String: [String]]] = [:]
        for record in try search(base, filter, attributes, scope: scope).components(separatedBy: "\n\n") {
            var dn: String?
            var values: [String: [String]] = [:]
            for line in record.split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                var rest = line[line.index(after: colon)...]
                var value: String
                if rest.hasPrefix(":") {
                    rest = rest.dropFirst()
                    let text = rest.trimmingCharacters(in: .whitespaces)
                    value = "base64:" + text
                    if name == "dn", let data = Data(base64Encoded: text) { value = String(decoding: data, as: UTF8.self) }
                } else {
                    value = rest.trimmingCharacters(in: .whitespaces)
                }
                if name == "dn" { dn = value } else { values[name, default: []].append(value) }
            }
            if let dn { out[dn] = values }
        }
        return out
    }

    /// `ldapadd` over ldaps as the domain's Administrator.
    public func add(_ ldif: String) throws { try modify(ldif, adding: true) }

    /// `ldapmodify` over ldaps as the domain's Administrator: change records (or, with
    /// `adding`, entries to add).
    public func modify(_ ldif: String, adding: Bool = false) throws {
        let file = folder.sub("change-\(UUID().uuidString.prefix(8)).ldif")
        try ldif.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try runProcess("/usr/bin/ldapmodify", ["-x", "-H", ldapsURL, "-D", adminDN, "-w", Self.adminPassword, "-f", file]
                                    + (adding ? ["-a"] : []),
                                    environment: ["LDAPTLS_CACERT": tls.caFile, "LDAPTLS_REQCERT": "demand"])
        guard result.status == 0 else { throw ProcessFailure(description: "ldapmodify failed: \(result.stderr)") }
    }

    /// Whether `dn` can bind with `password` over ldaps (checked with `ldapsearch` of the root DSE).
    public func canBind(_ dn: String, password: String) throws -> Bool {
        let result = try runProcess("/usr/bin/ldapsearch", ["-x", "-H", ldapsURL, "-D", dn, "-w", password, "-LLL", "-s", "base",
                                                            "-b", "", "(objectClass=*)", "dnsHostName"],
                                    environment: ["LDAPTLS_CACERT": tls.caFile, "LDAPTLS_REQCERT": "demand"])
        return result.status == 0
    }
}

/// Kept so that they are never stopped (nor reaped) while the tests run.
private let sambaWatchdogs = Mutex<[Daemon]>([])
