import GitKit
import Testing

/// Which host and port a remote's host key is looked up under, for each URL form git accepts.
@Suite struct RemoteAddressTests {
    @Test(arguments: [
        ("ssh://git@git.corp.example:2222/config.git", "ssh", "git", "git.corp.example", 2222),
        ("ssh://git.corp.example/config.git", "ssh", nil, "git.corp.example", 22),
        ("git@git.corp.example:team/config.git", "ssh", "git", "git.corp.example", 22),
        ("git.corp.example:config.git", "ssh", nil, "git.corp.example", 22),
        ("https://git.corp.example/team/config.git", "https", nil, "git.corp.example", 443),
        ("https://git.corp.example:8443/config.git", "https", nil, "git.corp.example", 8443),
    ] as [(String, String, String?, String, Int)])
    func readsTheHostAndPort(url: String, scheme: String, user: String?, host: String, port: Int) throws {
        let address = try #require(RemoteAddress(url))
        #expect(address.scheme == scheme && address.user == user && address.host == host && address.port == port)
        #expect(!address.hasPassword)
        #expect(KnownHosts.entryName(host: host, port: port) == (port == 22 ? host : "[\(host)]:\(port)"))
    }

    @Test func localPathsAreNoNetworkRemotesAndPasswordsAreSeen() {
        #expect(RemoteAddress("/srv/git/config.git") == nil)
        #expect(RemoteAddress("file:///srv/git/config.git")?.isSSH == false)
        #expect(RemoteAddress("https://ada:secret@git.corp.example/config.git")?.hasPassword == true)
    }
}
