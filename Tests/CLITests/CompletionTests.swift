import Foundation
import TestSupport
import Testing

/// Shell completion offers the names the home knows: collections for `run` and `history`,
/// run ids for `logs`, open request ids for `approve` and `deny`.
@Suite struct CompletionTests {
    @Test func completionOffersTheHomesNames() throws {
        let w = try WorkflowHome(try workflowFixture())
        let id = try w.runRaisingRequest()
        let home = w.folder.sub("home")
        func complete(_ command: String, typed: String = "") throws -> [String] {
            // What the generated bash script runs for `syncwright <command> --home H <TAB>`.
            let words = ["syncwright", command, "--home", home, typed]
            let result = try syncwright(["---completion", command, "--", "positional@0", "4", "\(typed.count)"] + words)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.split(separator: "\n").map(String.init)
        }
        #expect(try complete("run") == ["c"])
        #expect(try complete("history") == ["c"])
        #expect(try complete("approve") == [id])
        #expect(try complete("deny", typed: "req-") == [id])
        #expect(try complete("approve", typed: "nope").isEmpty)
        #expect(try complete("logs").count == 1)
        // The script that scripts/install.sh installs asks the binary for these.
        let script = try syncwright(["--generate-completion-script", "bash"])
        #expect(script.stdout.contains("---completion run -- positional@0"))
    }
}
