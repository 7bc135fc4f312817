import Concurrency
import Foundation

/// A file's path and bytes, from a git tree or a folder.
public struct ManifestFile: Sendable {
    public let path: String
    public let contents: Data
    public init(path: String, contents: Data) {
        self.path = path
        self.contents = contents
    }
}

extension ManifestParser {
    /// Parses many files on all cores. Results keep the input order.
    public static func parse(files: [ManifestFile]) -> (manifests: [Manifest], problems: [ManifestProblem]) {
        let results = ParallelParts.map(files, grain: 1) { parse(file: $0.path, contents: $0.contents) }
        return (results.flatMap(\.manifests), results.flatMap(\.problems))
    }
}
