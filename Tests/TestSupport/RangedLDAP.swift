import Foundation

/// A throwaway fake LDAP server (`Tests/Fakes/ranged_ldap.py`, on ldaptor) that sends any
/// attribute with more than `cap` values in ranges, as Active Directory does above 1,500; slapd
/// never does. It serves `entries` read-only, to any bind, and logs each search it answers.
public final class RangedLDAP: @unchecked Sendable {
    public let url: String
    public let folder: TemporaryFolder
    private let process: Process

    public init(entries: [String: [String: [String]]], cap: Int) throws {
        folder = try TemporaryFolder("syncwright-ranged")
        try JSONSerialization.data(withJSONObject: entries).write(to: URL(fileURLWithPath: folder.sub("entries.json")))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", (packageRoot as NSString).appendingPathComponent("Tests/Fakes/ranged_ldap.py"),
                             "--entries", folder.sub("entries.json"), "--cap", "\(cap)",
                             "--port-file", folder.sub("port"), "--log", folder.sub("searches.log")]
        process.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: folder.sub("stderr"), contents: nil)
        process.standardError = FileHandle(forWritingAtPath: folder.sub("stderr"))
        try process.run()
        self.process = process
        // The fake binds port 0 and writes the port it got: no race for a free port.
        let deadline = Date().addingTimeInterval(20)
        var port: String?
        while Date() < deadline, process.isRunning {
            port = try? String(contentsOfFile: folder.sub("port"), encoding: .utf8)
            if port != nil { break }
            usleep(50_000)
        }
        guard let port else {
            let said = (try? String(contentsOfFile: folder.sub("stderr"), encoding: .utf8)) ?? ""
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            throw ProcessFailure(description: "the ranged LDAP fake did not start: \(said.suffix(1_000))")
        }
        url = "ldap://127.0.0.1:\(port)"
    }

    /// The attribute lists of the searches answered so far, in order.
    public func searches() throws -> [[String]] {
        let text = (try? String(contentsOfFile: folder.sub("searches.log"), encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map {
            (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["attributes"] as? [String] ?? []
        }
    }

    deinit { stop() }

    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
