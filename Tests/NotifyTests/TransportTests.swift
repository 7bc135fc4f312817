import Foundation
import Notify
import TestSupport
import Testing

/// Mail and webhooks through libcurl, against real servers started here: aiosmtpd with STARTTLS
/// (or implicit TLS) and AUTH required, and an HTTP(S) receiver. Python's `email` package reads
/// what arrived (an independent MIME parser).
@Suite struct TransportTests {
    static func mail(to: [String] = ["Directory Team <team@corp.example>"]) -> Mail {
        Mail(from: "Syncwright <syncwright@corp.example>", to: to, subject: "[Syncwright] nightly: failed, 1 job failed — Dörte",
             text: "hr-users-to-corp failed: connection corp: refused\n", html: "<p><b>hr-users-to-corp</b> failed</p>\n",
             messageID: "run-20261130-020000-ab12.team@syncwright", date: Date(timeIntervalSince1970: 1_796_000_000))
    }

    /// Python's email package on a message: its headers and each part's type and decoded text.
    static func parse(_ raw: String) throws -> [String: Any] {
        let folder = try TemporaryFolder()
        try raw.write(toFile: folder.sub("m.eml"), atomically: true, encoding: .utf8)
        let result = try runProcess("/usr/bin/python3", ["-c", """
            import email, email.policy, json, sys
            m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
            parts = [{"type": p.get_content_type(), "text": p.get_content()} for p in m.walk() if not p.is_multipart()]
            print(json.dumps({"subject": str(m["subject"]), "to": str(m["to"]), "from": str(m["from"]),
                              "messageId": str(m["message-id"]), "type": m.get_content_type(), "parts": parts}))
            """, folder.sub("m.eml")])
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? ["error": result.stderr]
    }

    @Test(arguments: [false, true]) func aMailArrivesOverTLSWithAuthAsMultipartAlternative(implicit: Bool) throws {
        let server = try MailServer(implicitTLS: implicit)
        try Mailer.send(Self.mail(), via: SMTPSettings(host: "127.0.0.1", port: server.port, security: implicit ? .implicit : .starttls,
                                                       tls: TLSSettings(caFile: server.tls.caFile),
                                                       username: MailServer.user, password: MailServer.password))
        let received = try server.messages()
        try #require(received.count == 1)
        #expect(received[0].envelope["from"] as? String == "syncwright@corp.example")
        #expect(received[0].envelope["to"] as? [String] == ["team@corp.example"])
        #expect(received[0].envelope["login"] as? String == MailServer.user)
        let parsed = try Self.parse(received[0].raw)
        #expect(parsed["subject"] as? String == "[Syncwright] nightly: failed, 1 job failed — Dörte")
        #expect(parsed["type"] as? String == "multipart/alternative")
        #expect(parsed["messageId"] as? String == "<run-20261130-020000-ab12.team@syncwright>")
        let parts = parsed["parts"] as? [[String: String]] ?? []
        #expect(parts.map { $0["type"] ?? "" } == ["text/plain", "text/html"])
        #expect(parts.first?["text"] == "hr-users-to-corp failed: connection corp: refused\n")
        #expect(parts.last?["text"] == "<p><b>hr-users-to-corp</b> failed</p>\n")
    }

    @Test func aWrongPasswordAnUntrustedCertificateAndAnOutageAreErrorsThatSayWhy() throws {
        let server = try MailServer()
        func send(password: String = MailServer.password, caFile: String?) -> DeliveryError? {
            do {
                try Mailer.send(Self.mail(), via: SMTPSettings(host: "127.0.0.1", port: server.port, security: .starttls,
                                                               tls: TLSSettings(caFile: caFile), username: MailServer.user,
                                                               password: password, timeoutSeconds: 10))
                return nil
            } catch { return error }
        }
        let wrong = try #require(send(password: "wrong", caFile: server.tls.caFile))
        #expect(wrong.description.hasPrefix("mail server 127.0.0.1:\(server.port): "), "\(wrong)")
        #expect(wrong.description.contains("(the server said: 535 5.7.8 Authentication credentials invalid)"), "\(wrong)")
        #expect(!wrong.description.contains("wrong"), "the password must not be in the error")
        let untrusted = try #require(send(caFile: nil))
        #expect(untrusted.description.lowercased().contains("certificate"), "\(untrusted)")
        server.down(true)
        let outage = try #require(send(caFile: server.tls.caFile))
        #expect(outage.description.contains("(the server said: 421 4.3.0 service not available (a test outage))"), "\(outage)")
        #expect(try server.messages().isEmpty)
        server.down(false)
        #expect(send(caFile: server.tls.caFile) == nil)
        #expect(try server.messages().count == 1)
    }

    @Test func aWebhookPostsJSONWithItsIdempotencyKeyAndRefusesAnUntrustedCertificate() throws {
        let receiver = try WebhookReceiver(tls: true)
        let body = Data(#"{"collection":"nightly","status":"failed"}"#.utf8)
        try Webhook.post(body, idempotencyKey: "run-1.teams", to: WebhookSettings(url: receiver.url, tls: TLSSettings(caFile: receiver.tls?.caFile)))
        let posts = try receiver.posts()
        try #require(posts.count == 1)
        #expect(posts[0]["body"] as? String == #"{"collection":"nightly","status":"failed"}"#)
        #expect((posts[0]["headers"] as? [String: String])?["Idempotency-Key"] == "run-1.teams")
        #expect((posts[0]["headers"] as? [String: String])?["Content-Type"] == "application/json")

        #expect(throws: DeliveryError.self) { try Webhook.post(body, idempotencyKey: "k", to: WebhookSettings(url: receiver.url)) }
        try receiver.answer(503)
        do {
            try Webhook.post(body, idempotencyKey: "k", to: WebhookSettings(url: receiver.url, tls: TLSSettings(caFile: receiver.tls?.caFile)))
            Issue.record("a 503 was taken for delivery")
        } catch {
            #expect(error.description == "webhook https://127.0.0.1:\(receiver.server.port) answered HTTP 503: ok")
            #expect(!error.permanent)
            #expect(!error.description.contains("T0KEN"), "the URL's path may be a secret")
        }
        try receiver.answer(404)
        #expect(throws: DeliveryError("webhook https://127.0.0.1:\(receiver.server.port) answered HTTP 404: ok", permanent: true)) {
            try Webhook.post(body, idempotencyKey: "k", to: WebhookSettings(url: receiver.url, tls: TLSSettings(caFile: receiver.tls?.caFile)))
        }
        #expect(try receiver.posts().count == 1)
    }
}
