import Foundation
import TestSupport
import Testing

/// A collection that notifies through a real mail server (aiosmtpd: STARTTLS and AUTH required)
/// and a real webhook receiver (HTTPS), both with throwaway CAs.
struct NotifyingWorld {
    static let smtpPassword = "s3cret"
    let mail: MailServer
    let hook: WebhookReceiver
    let home: Home
    let folder: TemporaryFolder
    var env: [String: String] { ["SMTP_PASSWORD": MailServer.password, "HOOK_URL": hook.url] }

    static let good = "id,login,pin\n1,ajohnson,1234\n2,bsmith,5678\n"
    /// No `login` column: the job fails as a whole before it writes anything.
    static let broken = "id,name,pin\n1,ajohnson,1234\n"

    init(when: String = "[jobFails, errors, recovered]", repeatAfter: String = "1h", workflow: Bool = false) throws {
        mail = try MailServer()
        hook = try WebhookReceiver(tls: true)
        folder = try TemporaryFolder()
        let fixture = try Fixtures.csvToLDIF(csv: Self.good, out: folder.sub("out.ldif"), job: "users",
                                             extraMappings: [#"{ destination: userPassword, value: "pw-{{pin}}" }"#])
        if workflow {
            try fixture.write(["job.yaml": try String(contentsOfFile: fixture.workTree + "/job.yaml", encoding: .utf8)
                + "  workflow: { approvers: [ops@corp.example, \"Second Line <second@corp.example>\"], expiresAfter: 7d }\n"])
        }
        try fixture.write([
            "channels.yaml": """
                apiVersion: syncwright.dev/v1
                kind: NotificationChannel
                metadata: { name: mail }
                spec:
                  type: smtp
                  host: 127.0.0.1
                  port: \(mail.port)
                  tls: starttls
                  caFile: \(mail.tls.caFile)
                  username: \(MailServer.user)
                  passwordFrom: { env: SMTP_PASSWORD }
                  from: Syncwright <syncwright@corp.example>
                ---
                apiVersion: syncwright.dev/v1
                kind: NotificationChannel
                metadata: { name: hook }
                spec: { type: webhook, urlFrom: { env: HOOK_URL }, format: json, caFile: \(hook.tls!.caFile) }

                """,
            "collection.yaml": Fixtures.collection("c", jobs: ["users"]) + """
                  notifications:
                    when: \(when)
                    recipients: [ops@corp.example, "Second Line <second@corp.example>"]
                    channels: [mail, hook]
                    repeatAfter: \(repeatAfter)

                """,
        ])
        try fixture.commit("notifications")
        home = try Home(fixture)
        let applied = try syncwright(["apply"] + home.args)
        #expect(applied.status == 0, "\(applied.stderr)")
    }

    func run() throws -> (ProcessResult, [String: Any]) {
        let result = try syncwright(["run", "c", "--format", "json"] + home.args, env: env)
        let report = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? [:]
        return (result, report)
    }

    func data(_ csv: String) throws {
        try home.fixture.write(["data/in.csv": csv])
        try home.fixture.commit("data")
        #expect(try syncwright(["apply"] + home.args).status == 0)
    }

    /// Every message and webhook body received so far, as text (for a search over all of them).
    func everything() throws -> String {
        // A webhook's body and headers; its path is where it was sent, not what it said.
        try mail.messages().map(\.raw).joined(separator: "\n")
            + (try hook.posts().map { "\($0["body"] ?? "") \($0["headers"] ?? "")" }.joined(separator: "\n"))
    }
}

/// Python's email package on a raw message: subject, Message-ID, and each part's type and text.
func parsedMail(_ raw: String) throws -> [String: Any] {
    let folder = try TemporaryFolder()
    try raw.write(toFile: folder.sub("m.eml"), atomically: true, encoding: .utf8)
    let result = try runProcess("/usr/bin/python3", ["-c", """
        import email, email.policy, json, sys
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
        parts = [{"type": p.get_content_type(), "text": p.get_content()} for p in m.walk() if not p.is_multipart()]
        print(json.dumps({"subject": str(m["subject"]), "to": str(m["to"]), "messageId": str(m["message-id"]),
                          "type": m.get_content_type(), "parts": parts}))
        """, folder.sub("m.eml")])
    return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? ["error": result.stderr]
}

@Suite struct NotificationTests {
    @Test func aFailureIsToldOnceThroughEachChannelRepeatsAreHeldBackAndTheRecoveryCountsThem() throws {
        let world = try NotifyingWorld()
        let config = world.home.home.file("config.yaml")
        try (try String(contentsOfFile: config, encoding: .utf8) + "reportLinks: https://git.example/config/src/branch/reports/{path}\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        // A good first run: nothing to tell (jobFails, errors and recovered do not hold).
        var (result, report) = try world.run()
        #expect(result.status == 0, "\(result.stderr)")
        #expect((report["notifications"] as? [String: Any])?["reason"] as? String == "no trigger held (when: jobFails, errors, recovered)")
        #expect(try world.mail.messages().isEmpty && world.hook.posts().isEmpty)

        // A failure: one mail per recipient and one webhook, each multipart / JSON.
        try world.data(NotifyingWorld.broken)
        (result, report) = try world.run()
        #expect(result.status == 1)
        let runId = try #require(report["runId"] as? String)
        let notified = try #require(report["notifications"] as? [String: Any])
        #expect(notified["triggers"] as? [String] == ["jobFails"])
        #expect(notified["queued"] as? [String] == ["mail to ops@corp.example through mail",
                                                     "mail to Second Line <second@corp.example> through mail", "webhook hook"])
        let mails = try world.mail.messages()
        try #require(mails.count == 2)
        #expect(mails.map { $0.envelope["to"] as? [String] ?? [] } == [["ops@corp.example"], ["second@corp.example"]])
        let first = try parsedMail(mails[0].raw)
        #expect(first["subject"] as? String == "[Syncwright] c: aborted, 1 job failed")
        #expect(first["type"] as? String == "multipart/alternative")
        #expect((first["messageId"] as? String)?.hasPrefix("<\(runId).") == true)
        let parts = first["parts"] as? [[String: String]] ?? []
        #expect(parts.map { $0["type"] ?? "" } == ["text/plain", "text/html"])
        #expect(parts.first?["text"]?.contains("users: failed, 0 / 0 / 0 / 0 / 0 / 0") == true, "\(parts)")
        #expect(parts.first?["text"]?.contains("Errors:\n  users: ") == true, "\(parts)")
        #expect(parts.last?["text"]?.contains("<td>users</td><td>failed</td>") == true)
        #expect(parts.first?["text"]?.contains("Report: https://git.example/config/src/branch/reports/runs/c/\(runId)/summary.md") == true)
        let posts = try world.hook.posts()
        try #require(posts.count == 1)
        let body = try #require(try JSONSerialization.jsonObject(with: Data((posts[0]["body"] as? String ?? "").utf8)) as? [String: Any])
        #expect(body["status"] as? String == "aborted" && body["runId"] as? String == runId && body["triggers"] as? [String] == ["jobFails"])
        #expect(((posts[0]["headers"] as? [String: String])?["Idempotency-Key"])?.hasPrefix("\(runId).") == true)

        // The same failure again within repeatAfter: held back, and the report says so.
        (result, report) = try world.run()
        #expect(result.status == 1)
        #expect((report["notifications"] as? [String: Any])?["queued"] as? [String] == [])
        #expect(((report["notifications"] as? [String: Any])?["reason"] as? String)?.hasPrefix("held back") == true)
        #expect(try world.mail.messages().count == 2 && world.hook.posts().count == 1)

        // Fixed: recovered, never held back, and it counts the repeat held back.
        try world.data(NotifyingWorld.good)
        (result, report) = try world.run()
        #expect(result.status == 0)
        #expect((report["notifications"] as? [String: Any])?["triggers"] as? [String] == ["recovered"])
        let after = try world.mail.messages()
        try #require(after.count == 4)
        let recovered = try parsedMail(after[2].raw)
        #expect(recovered["subject"] as? String == "[Syncwright] c: succeeded, recovered, 0 objects changed")
        #expect(((recovered["parts"] as? [[String: String]])?.first?["text"])?
            .contains("1 earlier notification was held back as repeats since the last one sent.") == true)
        #expect(try world.hook.posts().count == 2)

        // Nothing secret anywhere: not the SMTP password, not the webhook URL's token, not a
        // value written to userPassword.
        let all = try world.everything()
        for secret in [MailServer.password, "T0KEN", "pw-1234", "pw-5678"] {
            #expect(!all.contains(secret), "\(secret) reached a message")
        }
    }

    @Test func anOutageQueuesTheMessageUntilALaterProcessDeliversItOnce() throws {
        let world = try NotifyingWorld()
        try world.data(NotifyingWorld.broken)
        world.mail.down(true)
        let (result, report) = try world.run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("warning: notification not delivered: mail to ops@corp.example through mail"), "\(result.stderr)")
        #expect(result.stderr.contains("421 4.3.0 service not available"), "\(result.stderr)")
        #expect(try world.hook.posts().count == 1, "the webhook is not held up by the mail server")
        let status = try syncwright(["status"] + world.home.args, env: world.env)
        #expect(status.stdout.contains("Notification of run \(report["runId"] as? String ?? "") (mail to ops@corp.example through mail) not delivered yet after 1 attempt"),
                "\(status.stdout)")
        let json = try syncwright(["status", "--format", "json"] + world.home.args)
        let troubled = ((try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["notifications"] as? [[String: Any]]) ?? []
        #expect(troubled.count == 2 && troubled.allSatisfy { $0["status"] as? String == "pending" })

        // Back up; the retry is due (its time is brought forward: the backoff is 30 s); a new
        // process delivers each message once.
        world.mail.down(false)
        let due = try runProcess("/usr/bin/sqlite3", [world.home.home.file("state.sqlite"),
                                                      "UPDATE notifications SET nextAttemptAt = 0 WHERE status = 'pending'"])
        #expect(due.status == 0, "\(due.stderr)")
        let reconcile = try syncwright(["reconcile", "--once"] + world.home.args, env: world.env)
        #expect(reconcile.status == 0, "\(reconcile.stderr)")
        let ids = try world.mail.messages().compactMap { try parsedMail($0.raw)["messageId"] as? String }
        #expect(ids.count == 2 && Set(ids).count == 2, "\(ids)")
        let again = try syncwright(["reconcile", "--once"] + world.home.args, env: world.env)
        #expect(again.status == 0)
        #expect(try world.mail.messages().count == 2, "delivered once, not again")
        #expect(!(try syncwright(["status"] + world.home.args).stdout.contains("not delivered")))
    }

    @Test func aWrongPasswordIsShownInStatusAndLeavesRunsAlone() throws {
        let world = try NotifyingWorld(when: "[always]")
        var env = world.env
        env["SMTP_PASSWORD"] = "wrong"
        let result = try syncwright(["run", "c"] + world.home.args, env: env)
        #expect(result.status == 0, "the run succeeded; only its mail failed: \(result.stderr)")
        #expect(result.stderr.contains("535 5.7.8 Authentication credentials invalid"), "\(result.stderr)")
        #expect(!result.stderr.contains("wrong"))
        #expect(try world.mail.messages().isEmpty)
        #expect(try world.hook.posts().count == 1)
        let status = try syncwright(["status"] + world.home.args)
        #expect(status.stdout.contains("(mail to ops@corp.example through mail) not delivered yet after 1 attempt: mail server 127.0.0.1:\(world.mail.port): "),
                "\(status.stdout)")
        // A second run works as well, and adds its own messages to the queue.
        #expect(try syncwright(["run", "c"] + world.home.args, env: env).status == 0)
    }
}

@Suite struct NotificationTriggerTests {
    /// `recordsUpdated` holds when objects were written, `errors` when objects failed, `always`
    /// every time; a channel that skips certificate checks is warned about in the report.
    @Test func eachTriggerHoldsWhenTheReportSays() throws {
        let world = try NotifyingWorld(when: "[recordsUpdated, errors]", repeatAfter: "1s")
        var (result, report) = try world.run()
        #expect(result.status == 0)
        #expect((report["notifications"] as? [String: Any])?["triggers"] as? [String] == ["recordsUpdated"])
        (result, report) = try world.run()
        #expect((report["notifications"] as? [String: Any])?["triggers"] as? [String] == [], "nothing written, nothing failed")
        // Two rows for one login: the second object cannot be created (its DN is taken).
        try world.data(NotifyingWorld.good + "3,ajohnson,9999\n")
        (result, report) = try world.run()
        #expect(result.status == 3, "partial: \(result.stderr)")
        #expect((report["notifications"] as? [String: Any])?["triggers"] as? [String] == ["errors"])
        let subjects = try world.mail.messages().compactMap { try parsedMail($0.raw)["subject"] as? String }
        #expect(subjects == ["[Syncwright] c: succeeded, 2 objects changed", "[Syncwright] c: succeeded, 2 objects changed",
                             "[Syncwright] c: partial, 1 object failed", "[Syncwright] c: partial, 1 object failed"], "\(subjects)")
        let text = try world.mail.messages().last.map { try parsedMail($0.raw) }?["parts"] as? [[String: String]]
        #expect(text?.first?["text"]?.contains("Errors:\n  users: uid=ajohnson,ou=People,dc=corp: ") == true, "\(text ?? [])")
    }

    @Test func aChannelThatSkipsCertificateChecksIsWarnedAboutInEveryReport() throws {
        let world = try NotifyingWorld(when: "[always]")
        try world.home.fixture.write(["channels.yaml": try String(contentsOfFile: world.home.fixture.workTree + "/channels.yaml", encoding: .utf8)
            .replacingOccurrences(of: "format: json, caFile: \(world.hook.tls!.caFile)", with: "format: json, insecureSkipVerify: true")])
        try world.home.fixture.commit("skip checks")
        #expect(try syncwright(["apply"] + world.home.args).status == 0)
        let (result, report) = try world.run()
        #expect(result.status == 0)
        #expect(report["warnings"] as? [String] == ["notification channel hook: TLS certificate verification is off (insecureSkipVerify), so the server's identity is not checked"])
        #expect(try world.hook.posts().count == 1)
    }
}

@Suite struct NotifyTestCommandTests {
    @Test func notifyTestSaysPerDestinationWhatHappened() throws {
        let world = try NotifyingWorld()
        let ok = try syncwright(["notify", "test", "c"] + world.home.args, env: world.env)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout == "delivered: mail to ops@corp.example through mail\ndelivered: mail to Second Line <second@corp.example> through mail\n"
                + "delivered: webhook hook\n")
        #expect(try parsedMail(try world.mail.messages()[0].raw)["subject"] as? String == "[Syncwright] c: test message")
        #expect(try world.hook.posts().count == 1)
        // Without the webhook's URL in the environment: that one says why, and the command fails.
        let missing = try syncwright(["notify", "test", "c"] + world.home.args, env: ["SMTP_PASSWORD": MailServer.password])
        #expect(missing.status == 1)
        #expect(missing.stdout.contains("not delivered: webhook hook: the URL of channel hook is read from the environment variable HOOK_URL, which is not set"),
                "\(missing.stdout)")
        let unknown = try syncwright(["notify", "test", "nope"] + world.home.args)
        #expect(unknown.status == 1 && unknown.stderr.contains("no collection named 'nope' is applied"))
        // No row is queued and no run recorded by a test.
        #expect(try syncwright(["history"] + world.home.args).stdout.contains("No runs"))
    }
}

@Suite struct WorkflowNotificationTests {
    /// Raised: the approvers are told what the job would do and how to approve. Approved: the
    /// other approver is told (not the one who decided). Executed: both are.
    @Test func approversAreToldOfARequestAndEveryoneOfItsOutcome() throws {
        let world = try NotifyingWorld(when: "[jobFails]", workflow: true)
        let (result, report) = try world.run()
        #expect(result.status == 0, "\(result.stderr)")
        let request = try #require((report["jobs"] as? [[String: Any]])?.first?["request"] as? String)
        var mails = try world.mail.messages()
        try #require(mails.count == 2, "one per approver")
        #expect(mails.map { $0.envelope["to"] as? [String] ?? [] } == [["ops@corp.example"], ["second@corp.example"]])
        let raised = try parsedMail(mails[0].raw)
        #expect(raised["subject"] as? String == "[Syncwright] approval needed: job users of c (request \(request))")
        let text = ((raised["parts"] as? [[String: String]])?.first?["text"]) ?? ""
        #expect(text.contains("read 2; 2 to create, 0 to update, 0 to rename, 0 to delete"), "\(text)")
        #expect(text.contains("  syncwright approve \(request) --reason"), "\(text)")
        #expect(text.contains("  spec: { request: \(request), decision: approve, reason: \"…\" }"), "\(text)")
        let events = try world.hook.posts().compactMap { try JSONSerialization.jsonObject(with: Data(($0["body"] as? String ?? "").utf8)) as? [String: Any] }
        #expect(events.map { $0["event"] as? String } == ["request.pending"])

        // Ops approves (a commit by Ops, pushed); the apply that takes it tells the other approver.
        let approve = try syncwright(["approve", request, "--author", "Ops <ops@corp.example>", "--reason", "checked"] + world.home.args,
                                     env: world.env)
        #expect(approve.status == 0, "\(approve.stderr)")
        let applied = try syncwright(["apply"] + world.home.args, env: world.env)
        #expect(applied.status == 0, "\(applied.stderr)")
        let reconcile = try syncwright(["reconcile", "--once"] + world.home.args, env: world.env)
        #expect(reconcile.status == 0, "\(reconcile.stderr)")
        mails = try world.mail.messages()
        let subjects = try mails.dropFirst(2).map { (try parsedMail($0.raw)["subject"] as? String ?? "", $0.envelope["to"] as? [String] ?? []) }
        // The requester (the identity `run` recorded, when it is an address) and the other
        // approver; not Ops, who decided.
        let requester = try #require(text.split(separator: "\n").first { $0.hasPrefix("Raised by run ") }
            .flatMap { line in line.range(of: ", by ").map { String(line[$0.upperBound...].prefix { $0 != ")" }) } })
        let told = NotificationContentAddress.of(requester).map { [[$0], ["second@corp.example"]] } ?? [["second@corp.example"]]
        let approved = subjects.filter { $0.0 == "[Syncwright] request \(request) approved: job users runs at the reconciler's next pass" }
        let executed = subjects.filter { $0.0.hasPrefix("[Syncwright] request \(request) executed: job users ran in run ") }
        #expect(approved.map(\.1) == told, "\(subjects)")
        #expect(executed.map(\.1) == told, "\(subjects)")
        #expect(approved.count + executed.count == subjects.count)
        let allEvents = try world.hook.posts().compactMap { try JSONSerialization.jsonObject(with: Data(($0["body"] as? String ?? "").utf8)) as? [String: Any] }
        #expect(allEvents.map { $0["event"] as? String } == ["request.pending", "request.approved", "request.executed"])
    }
}

/// The address in `Name <a@b>` or `a@b`, if the text is one.
enum NotificationContentAddress {
    static func of(_ text: String) -> String? {
        var address = text
        if let open = text.lastIndex(of: "<"), let close = text.lastIndex(of: ">"), open < close {
            address = String(text[text.index(after: open)..<close])
        }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && !address.contains(" ") ? address : nil
    }
}
