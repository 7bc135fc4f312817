import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Reconciler

/// The reconciler's HTTP endpoints, served by Hummingbird:
/// - `GET /metrics`: Prometheus's text format (`DaemonMetrics.scrape`);
/// - `GET /healthz`: 200 while the loop turns, else 503, with a JSON body that says why;
/// - `GET /readyz`: 200 while the last fetch and apply succeeded recently, else 503;
/// - `POST /hooks/git`: a push webhook (`WebhookCheck`); a push to the config branch makes the
///   loop fetch and pass at once. Served only when a webhook secret is configured.
public enum OperationsServer {
    /// A push body larger than this is refused (GitHub's own limit is 25 MB).
    static let maxBody = 25 << 20

    /// Serves until the task is cancelled. `listening` is called with the bound address (the
    /// port the system chose, for port 0). Throws when the address cannot be bound.
    public static func run(host: String, port: Int, metrics: DaemonMetrics, loop: ReconcileLoop, webhook: WebhookCheck?,
                           logger: Logger, listening: @escaping @Sendable (String) -> Void) async throws {
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            let text = metrics.scrape()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        router.get("healthz") { _, _ -> Response in json(metrics.liveness()) }
        router.get("readyz") { _, _ -> Response in json(metrics.readiness()) }
        router.post("hooks/git") { request, _ -> Response in
            guard let webhook else {
                return json(status: .notFound, ["status": "refused", "reason": "no webhook is configured (webhook.secretFrom in config.yaml)"])
            }
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: maxBody)
            } catch {
                metrics.webhook("bad_request")
                logger.warning("webhook refused: the body is larger than 25 MB")
                return json(status: .contentTooLarge, ["status": "refused", "reason": "the body is larger than 25 MB"])
            }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let verdict = webhook.check(headers: headers, body: Array(buffer: body))
            metrics.webhook(verdict.result)
            switch verdict {
            case .push(let ref, let provider):
                logger.info("webhook: push, fetching now", metadata: ["provider": "\(provider)", "ref": "\(ref)"])
                loop.fetchNow()
                return json(status: .accepted, ["status": "accepted", "reason": "a push to \(ref): a pass starts now"])
            case .ignored(let reason):
                logger.info("webhook ignored", metadata: ["reason": "\(reason)"])
                return json(status: .ok, ["status": "ignored", "reason": reason])
            case .unauthorized(let reason):
                logger.warning("webhook refused", metadata: ["reason": "\(reason)"])
                return json(status: .unauthorized, ["status": "refused", "reason": reason])
            case .badRequest(let reason):
                logger.warning("webhook refused", metadata: ["reason": "\(reason)"])
                return json(status: .badRequest, ["status": "refused", "reason": reason])
            }
        }
        // Hummingbird's own lines say nothing a user acts on (a failure to bind is thrown), and it
        // logs a cancelled child channel as an error at every stop.
        var quiet = logger
        quiet.logLevel = .critical
        // One event-loop thread: a few requests a minute need no more, and NIO's shared group
        // would start one per core, each with its own stack and allocator arena.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "syncwright"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                listening(host.contains(":") ? "[\(host)]:\(bound)" : "\(host):\(bound)")
            },
            eventLoopGroupProvider: .shared(group),
            logger: quiet)
        do {
            try await app.run()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
    }

    static func json(_ verdict: DaemonMetrics.Verdict) -> Response {
        json(status: verdict.ok ? .ok : .serviceUnavailable, verdict.body)
    }

    static func json(status: HTTPResponse.Status, _ body: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
