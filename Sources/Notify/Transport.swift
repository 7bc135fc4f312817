import CCurl
import Foundation

/// Why a message was not delivered: one sentence naming the server and the reason.
public struct DeliveryError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    /// True when sending again cannot help (the receiver refused the message itself).
    public let permanent: Bool
    public init(_ description: String, permanent: Bool = false) {
        self.description = description
        self.permanent = permanent
    }
}

/// TLS for a connection to a mail server or webhook receiver.
public struct TLSSettings: Sendable, Equatable {
    /// PEM file of the CAs to trust (else the system's).
    public var caFile: String?
    /// Trust any certificate: only when written out in the channel, and warned about.
    public var insecureSkipVerify: Bool
    public init(caFile: String? = nil, insecureSkipVerify: Bool = false) {
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
    }
}

/// One libcurl transfer: sets the options, uploads `body`, collects the answer. libcurl speaks
/// SMTP (with STARTTLS and AUTH) and HTTP; nothing here speaks a protocol itself.
final class CurlTransfer {
    private static let initialized: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    private let handle: UnsafeMutableRawPointer
    private var lists: [UnsafeMutablePointer<curl_slist>?] = []
    private var upload: [UInt8] = []
    private var offset = 0
    private(set) var response = Data()
    /// The last line the server sent (an SMTP reply such as `535 5.7.8 …`), for errors.
    private var lastReply = ""
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    private var strings: [UnsafeMutablePointer<CChar>] = []

    init() throws(DeliveryError) {
        guard Self.initialized, let handle = curl_easy_init() else { throw DeliveryError("libcurl could not be initialised") }
        self.handle = handle
        errorBuffer.initialize(to: 0)
        sw_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
        sw_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
    }

    deinit {
        curl_easy_cleanup(handle)
        for list in lists { curl_slist_free_all(list) }
        for string in strings { free(string) }
        errorBuffer.deallocate()
    }

    func set(_ option: CURLoption, _ value: Int) { sw_curl_set_long(handle, option, value) }

    /// libcurl copies most strings, but not all (CURLOPT_POSTFIELDS): kept alive to be safe.
    func set(_ option: CURLoption, _ value: String) {
        let copy = strdup(value)!
        strings.append(copy)
        sw_curl_set_string(handle, option, copy)
    }

    func set(_ option: CURLoption, list: [String]) {
        var head: UnsafeMutablePointer<curl_slist>?
        for item in list { head = curl_slist_append(head, item) }
        lists.append(head)
        sw_curl_set_list(handle, option, head)
    }

    func tls(_ settings: TLSSettings) {
        if settings.insecureSkipVerify {
            set(CURLOPT_SSL_VERIFYPEER, 0)
            set(CURLOPT_SSL_VERIFYHOST, 0)
        } else {
            set(CURLOPT_SSL_VERIFYPEER, 1)
            set(CURLOPT_SSL_VERIFYHOST, 2)
            if let caFile = settings.caFile { set(CURLOPT_CAINFO, caFile) }
        }
    }

    /// Sends `body` as the upload (the mail, or the POST body).
    func uploading(_ body: [UInt8]) {
        upload = body
        offset = 0
        let context = Unmanaged.passUnretained(self).toOpaque()
        sw_curl_set_function(handle, CURLOPT_READFUNCTION) { buffer, size, count, context in
            guard let buffer, let context else { return 0 }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            let n = min(size * count, transfer.upload.count - transfer.offset)
            transfer.upload.withUnsafeBytes { bytes in
                UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + transfer.offset, byteCount: n)
            }
            transfer.offset += n
            return n
        }
        sw_curl_set_pointer(handle, CURLOPT_READDATA, context)
    }

    /// Performs the transfer; the answer's body is in `response`. Throws libcurl's reason.
    func perform(what: String) throws(DeliveryError) -> Int {
        let context = Unmanaged.passUnretained(self).toOpaque()
        sw_curl_set_function(handle, CURLOPT_WRITEFUNCTION) { buffer, size, count, context in
            guard let buffer, let context else { return 0 }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            transfer.response.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: size * count)
            return size * count
        }
        sw_curl_set_pointer(handle, CURLOPT_WRITEDATA, context)
        // The server's replies, to name its reason in an error (libcurl's own can be "Weird
        // server reply"). Only what the server sends is kept: never what is sent to it.
        sw_curl_set_debug(handle) { _, type, data, size, context in
            guard type == CURLINFO_HEADER_IN, let data, let context else { return 0 }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if !line.isEmpty { transfer.lastReply = line }
            return 0
        }
        sw_curl_set_pointer(handle, CURLOPT_DEBUGDATA, context)
        set(CURLOPT_VERBOSE, 1)
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            var reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            if let first = lastReply.first, first == "4" || first == "5" { reason += " (the server said: \(lastReply))" }
            throw DeliveryError("\(what): \(reason)", permanent: Self.isPermanent(code))
        }
        var status = 0
        sw_curl_response_code(handle, &status)
        return status
    }

    /// Failures that sending again will not change.
    static func isPermanent(_ code: CURLcode) -> Bool {
        [CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL].contains(code)
    }
}
