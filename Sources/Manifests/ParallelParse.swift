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
        let results = ParseResults(count: files.count)
        DispatchQueue.concurrentPerform(iterations: files.count) { index in
            let file = files[index]
            results.set(index, parse(file: file.path, contents: file.contents))
        }
        return results.merged()
    }
}

/// Per-file results written from `concurrentPerform`.
///
/// `@unchecked Sendable`: each slot is written by exactly one iteration, under `lock`, and read
/// only after `concurrentPerform` has returned.
private final class ParseResults: @unchecked Sendable {
    private var slots: [(manifests: [Manifest], problems: [ManifestProblem])]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: ([], []), count: count) }

    func set(_ index: Int, _ value: (manifests: [Manifest], problems: [ManifestProblem])) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    func merged() -> (manifests: [Manifest], problems: [ManifestProblem]) {
        (slots.flatMap(\.manifests), slots.flatMap(\.problems))
    }
}
