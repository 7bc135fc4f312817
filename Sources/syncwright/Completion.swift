import ArgumentParser
import Foundation
import Logging
import Reconciler

/// Shell completion of names a home knows: collection names, request ids and run ids. Read from
/// the home named on the command line being completed (`--home DIR`), else `$SYNCWRIGHT_HOME` or
/// `./.syncwright`. Completion never fails: without a home it offers nothing.
enum CompletionNames {
    static func home(in words: [String]) -> String {
        if let index = words.firstIndex(of: "--home"), index + 1 < words.count { return Home.resolvePath(words[index + 1]) }
        if let word = words.first(where: { $0.hasPrefix("--home=") }) { return Home.resolvePath(String(word.dropFirst(7))) }
        return Home.resolvePath(nil)
    }

    static func workspace(_ words: [String]) -> Workspace? {
        guard let home = try? Home.open(home(in: words)) else { return nil }
        var logger = Logger(label: "syncwright-completion") { _ in SwiftLogNoOpLogHandler() }
        logger.logLevel = .critical
        return try? Workspace(home: home, logger: logger)
    }

    static let collections = CompletionKind.custom { words, _, prefix in
        ((try? workspace(words)?.collections().map(\.name)) ?? nil ?? []).filter { $0.hasPrefix(prefix) }
    }

    static let requests = CompletionKind.custom { words, _, prefix in
        ((try? workspace(words)?.requests(statuses: [.pending, .approved]).map(\.id)) ?? nil ?? []).filter { $0.hasPrefix(prefix) }
    }

    static let runs = CompletionKind.custom { words, _, prefix in
        ((try? workspace(words)?.history(collection: nil, limit: 50).map(\.runId)) ?? nil ?? []).filter { $0.hasPrefix(prefix) }
    }
}
