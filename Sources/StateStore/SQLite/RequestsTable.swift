import Foundation
import GRDB
import Reports

/// A row of `requests`: one workflow request, its indexed columns and its document (JSON).
struct RequestRow: StoredRow {
    static let databaseTableName = "requests"
    var id: String
    var status: ApprovalRequest.Status
    var job: String
    var collection: String
    var requestedAt: Date
    var document: String

    init(_ request: ApprovalRequest) {
        id = request.id
        status = request.status
        job = request.job
        collection = request.collection
        requestedAt = request.requestedAt
        document = request.json()
    }
}

extension SQLiteStateStore {
    /// The requests' rows and pages, encoded before a transaction begins.
    static func encoded(_ requests: [Publishable<ApprovalRequest>]) -> [(row: RequestRow, page: String?)] {
        requests.map { (RequestRow($0.value), $0.page?.json()) }
    }

    static func save(_ db: Database, _ requests: [(row: RequestRow, page: String?)], at date: Date) throws {
        for (row, page) in requests {
            try row.upsert(db)
            if let page { try enqueue(db, json: page, kind: .request, subject: row.id, at: date) }
        }
    }

    public func save(requests: [Publishable<ApprovalRequest>], at date: Date, notifications: [QueuedNotification]) throws {
        guard !requests.isEmpty else { return }
        let encoded = Self.encoded(requests), rows = try notifications.map(NotificationRow.init)
        try write("saving workflow requests") { db in
            try Self.save(db, encoded, at: date)
            for row in rows { try row.insertCached(db) }
        }
    }

    public func requests(statuses: Set<ApprovalRequest.Status>? = nil) throws -> [ApprovalRequest] {
        let rows = try read("workflow requests") { db in
            var request = RequestRow.order(Column("requestedAt"), Column("id"))
            if let statuses { request = request.filter(statuses.map(\.rawValue).contains(Column("status"))) }
            return try request.fetchAll(db)
        }
        return try rows.map(decoded)
    }

    public func request(_ id: String) throws -> ApprovalRequest? {
        try read("request \(id)") { db in try RequestRow.fetchOne(db, key: id) }.map(decoded)
    }

    private func decoded(_ row: RequestRow) throws(StateError) -> ApprovalRequest {
        do { return try ApprovalRequest.decode(row.document) } catch {
            throw .unreadable(location: path, what: "request \(row.id)", reason: "\(error)")
        }
    }
}
