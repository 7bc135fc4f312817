import Foundation

/// A throwaway fake LDAP server (`Tests/Fakes/ranged_ldap.py`, on ldaptor) that sends any
/// attribute with more than `cap` values in ranges, as Active Directory does above 1,500; slapd
/// never does. It serves `entries` read-only, to any bind, and logs each search it answers.
public final class RangedLDAP: @unchecked Sendable {
    public let url: String
    public let folder: TemporaryFolder
    private let server: FakeServer

    public init(entries: [String: [String: [String]]], cap: Int) throws {
        folder = try TemporaryFolder("syncwright-ranged")
        try JSONSerialization.data(withJSONObject: entries).write(to: URL(fileURLWithPath: folder.sub("entries.json")))
        // ldaptor is installed with pip, for the python3 on the PATH.
        server = try FakeServer(script: "ranged_ldap.py", arguments: ["--entries", folder.sub("entries.json"), "--cap", "\(cap)",
                                                                     "--log", folder.sub("searches.log")],
                                folder: folder, python: ["/usr/bin/env", "python3"])
        url = "ldap://127.0.0.1:\(server.port)"
    }

    /// The attribute lists of the searches answered so far, in order.
    public func searches() throws -> [[String]] {
        let text = (try? String(contentsOfFile: folder.sub("searches.log"), encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map {
            (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["attributes"] as? [String] ?? []
        }
    }

    public func stop() { server.stop() }
}
