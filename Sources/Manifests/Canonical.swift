import Crypto
import Foundation

extension Trigger {
    private enum Keys: String, CodingKey { case cron, every, from, `for`, once, atStartup }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        if let cron = try c.decodeIfPresent(String.self, forKey: .cron) {
            self = .cron(cron)
        } else if let every = try c.decodeIfPresent(String.self, forKey: .every) {
            self = .every(interval: every, from: try c.decodeIfPresent(String.self, forKey: .from),
                          for: try c.decodeIfPresent(String.self, forKey: .for))
        } else if let once = try c.decodeIfPresent(String.self, forKey: .once) {
            self = .once(once)
        } else {
            self = .atStartup
        }
    }

    /// The same shape users write: `{cron: …}`, `{every: …, from: …, for: …}`, `{once: …}`, `{atStartup: true}`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .cron(let text): try c.encode(text, forKey: .cron)
        case .every(let interval, let from, let duration):
            try c.encode(interval, forKey: .every)
            try c.encodeIfPresent(from, forKey: .from)
            try c.encodeIfPresent(duration, forKey: .for)
        case .once(let text): try c.encode(text, forKey: .once)
        case .atStartup: try c.encode(true, forKey: .atStartup)
        }
    }
}

/// `{metadata, spec}` as stored and compared.
struct Document<S: Codable>: Codable {
    var metadata: Metadata
    var spec: S
}

/// Deterministic JSON for comparing, hashing and storing specs.
public enum Canonical {
    /// Sorted keys, no insignificant whitespace, absent optionals omitted.
    public static func json(metadata: Metadata, spec: Spec) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data: Data?
        switch spec {
        case .connection(let s): data = try? encoder.encode(Document(metadata: metadata, spec: s))
        case .notificationChannel(let s): data = try? encoder.encode(Document(metadata: metadata, spec: s))
        case .job(let s): data = try? encoder.encode(Document(metadata: metadata, spec: s))
        case .jobCollectionTemplate(let s): data = try? encoder.encode(Document(metadata: metadata, spec: s))
        case .jobCollection(let s): data = try? encoder.encode(Document(metadata: metadata, spec: s))
        case .schedule(let s): data = try? encoder.encode(Document(metadata: metadata, spec: s))
        case .policy(let s): data = try? encoder.encode(Document(metadata: metadata, spec: s))
        case .approval(let s): data = try? encoder.encode(Document(metadata: metadata, spec: s))
        }
        // Encoding plain value types to JSON cannot fail; an empty object keeps the contract total.
        return data.flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }

    /// Reads back what `json(metadata:spec:)` wrote for an object of `kind`.
    public static func decode(kind: Kind, json: String) throws -> (Metadata, Spec) {
        let decoder = JSONDecoder()
        let data = Data(json.utf8)
        switch kind {
        case .connection:
            let d = try decoder.decode(Document<ConnectionSpec>.self, from: data)
            return (d.metadata, .connection(d.spec))
        case .notificationChannel:
            let d = try decoder.decode(Document<NotificationChannelSpec>.self, from: data)
            return (d.metadata, .notificationChannel(d.spec))
        case .job:
            let d = try decoder.decode(Document<JobSpec>.self, from: data)
            return (d.metadata, .job(d.spec))
        case .jobCollectionTemplate:
            let d = try decoder.decode(Document<JobCollectionTemplateSpec>.self, from: data)
            return (d.metadata, .jobCollectionTemplate(d.spec))
        case .jobCollection:
            let d = try decoder.decode(Document<JobCollectionSpec>.self, from: data)
            return (d.metadata, .jobCollection(d.spec))
        case .schedule:
            let d = try decoder.decode(Document<ScheduleSpec>.self, from: data)
            return (d.metadata, .schedule(d.spec))
        case .policy:
            let d = try decoder.decode(Document<PolicySpec>.self, from: data)
            return (d.metadata, .policy(d.spec))
        case .approval:
            let d = try decoder.decode(Document<ApprovalSpec>.self, from: data)
            return (d.metadata, .approval(d.spec))
        }
    }

    /// Lowercase hex SHA-256 of `text`'s UTF-8 bytes.
    public static func hash(_ text: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: Data(text.utf8)) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
