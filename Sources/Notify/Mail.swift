import CCurl
import Foundation

/// How to reach a mail server.
public struct SMTPSettings: Sendable, Equatable {
    public enum Security: String, Sendable, CaseIterable {
        /// `smtp://`, then STARTTLS, required: a server that does not offer it is refused.
        case starttls
        /// `smtps://`: TLS from the first byte.
        case implicit
        /// No TLS: only for a relay on the same machine; no AUTH is sent over it.
        case none
    }
    public var host: String
    public var port: Int
    public var security: Security
    public var tls: TLSSettings
    public var username: String?
    public var password: String?
    public var timeoutSeconds: Int

    public init(host: String, port: Int, security: Security, tls: TLSSettings = TLSSettings(), username: String? = nil,
                password: String? = nil, timeoutSeconds: Int = 30) {
        self.host = host
        self.port = port
        self.security = security
        self.tls = tls
        self.username = username
        self.password = password
        self.timeoutSeconds = timeoutSeconds
    }
}

/// One email: plain text and HTML, as `multipart/alternative`.
public struct Mail: Sendable, Equatable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var text: String
    public var html: String
    /// Stable per run and recipient, so a receiver can drop a repeat (`<id@host>` without brackets).
    public var messageID: String
    public var date: Date

    public init(from: String, to: [String], subject: String, text: String, html: String, messageID: String, date: Date) {
        self.from = from
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.messageID = messageID
        self.date = date
    }

    /// The address inside `Name <address>`, or the text itself.
    static func address(_ text: String) -> String {
        if let open = text.lastIndex(of: "<"), let close = text.lastIndex(of: ">"), open < close {
            return String(text[text.index(after: open)..<close])
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// The message as RFC 5322 text with CRLF line ends: headers, then both parts in base64.
    public func rendered() -> String {
        let boundary = "syncwright-" + String(messageID.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }, radix: 36)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        func header(_ value: String) -> String {
            value.allSatisfy({ $0.isASCII && $0 != "\r" && $0 != "\n" }) ? value
                : "=?UTF-8?B?\(Data(value.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ").utf8).base64EncodedString())?="
        }
        func base64(_ text: String) -> String {
            let encoded = Data(text.utf8).base64EncodedString()
            return stride(from: 0, to: encoded.count, by: 76).map { start in
                let from = encoded.index(encoded.startIndex, offsetBy: start)
                return String(encoded[from..<(encoded.index(from, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex)])
            }.joined(separator: "\r\n")
        }
        var lines = [
            "From: \(header(from))",
            "To: \(to.map(header).joined(separator: ", "))",
            "Subject: \(header(subject))",
            "Date: \(formatter.string(from: date))",
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
            "Auto-Submitted: auto-generated",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
            "",
            "--\(boundary)",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
            base64(text),
            "--\(boundary)",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
            base64(html),
            "--\(boundary)--",
        ]
        lines.append("")
        return lines.joined(separator: "\r\n")
    }
}

public enum Mailer {
    /// Sends `mail` through the server, with libcurl. Throws the server's or libcurl's reason.
    public static func send(_ mail: Mail, via server: SMTPSettings) throws(DeliveryError) {
        let transfer = try CurlTransfer()
        let scheme = server.security == .implicit ? "smtps" : "smtp"
        let what = "mail server \(server.host):\(server.port)"
        transfer.set(CURLOPT_URL, "\(scheme)://\(server.host):\(server.port)")
        if server.security == .starttls { transfer.set(CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue)) }
        if server.security != .none { transfer.tls(server.tls) }
        if let username = server.username, let password = server.password {
            guard server.security != .none else {
                throw DeliveryError("\(what): a password is never sent without TLS; use starttls or implicit", permanent: true)
            }
            transfer.set(CURLOPT_USERNAME, username)
            transfer.set(CURLOPT_PASSWORD, password)
        }
        transfer.set(CURLOPT_MAIL_FROM, "<\(Mail.address(mail.from))>")
        transfer.set(CURLOPT_MAIL_RCPT, list: mail.to.map { "<\(Mail.address($0))>" })
        transfer.set(CURLOPT_UPLOAD, 1)
        transfer.set(CURLOPT_TIMEOUT, server.timeoutSeconds)
        transfer.set(CURLOPT_CONNECTTIMEOUT, min(server.timeoutSeconds, 15))
        transfer.uploading(Array(mail.rendered().utf8))
        _ = try transfer.perform(what: what)
    }
}

/// A webhook receiver.
public struct WebhookSettings: Sendable, Equatable {
    public var url: String
    public var tls: TLSSettings
    public var timeoutSeconds: Int
    public init(url: String, tls: TLSSettings = TLSSettings(), timeoutSeconds: Int = 30) {
        self.url = url
        self.tls = tls
        self.timeoutSeconds = timeoutSeconds
    }

    /// The URL without its path and query (which may hold a secret token), for messages.
    public var shown: String {
        guard let components = URLComponents(string: url), let host = components.host else { return "the webhook" }
        return "webhook \(components.scheme ?? "https")://\(host)\(components.port.map { ":\($0)" } ?? "")"
    }
}

public enum Webhook {
    /// POSTs `body` (JSON) with an `Idempotency-Key` header. A 2xx answer is delivery; any other
    /// is an error naming the status (4xx other than 408 and 429 are permanent).
    public static func post(_ body: Data, idempotencyKey: String, to receiver: WebhookSettings) throws(DeliveryError) {
        let transfer = try CurlTransfer()
        transfer.set(CURLOPT_URL, receiver.url)
        transfer.tls(receiver.tls)
        transfer.set(CURLOPT_POST, 1)
        transfer.set(CURLOPT_HTTPHEADER, list: ["Content-Type: application/json", "Idempotency-Key: \(idempotencyKey)",
                                               "User-Agent: syncwright", "Expect:"])
        transfer.set(CURLOPT_POSTFIELDSIZE, body.count)
        transfer.uploading(Array(body))
        transfer.set(CURLOPT_TIMEOUT, receiver.timeoutSeconds)
        transfer.set(CURLOPT_CONNECTTIMEOUT, min(receiver.timeoutSeconds, 15))
        let status = try transfer.perform(what: receiver.shown)
        guard (200..<300).contains(status) else {
            let answer = String(decoding: transfer.response.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw DeliveryError("\(receiver.shown) answered HTTP \(status)" + (answer.isEmpty ? "" : ": \(answer)"),
                                permanent: (400..<500).contains(status) && status != 408 && status != 429)
        }
    }
}
