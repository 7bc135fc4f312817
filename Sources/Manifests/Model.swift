import Foundation

/// The API version every manifest must declare.
public let apiVersion = "syncwright.dev/v1"

/// What a manifest document is.
public enum Kind: String, CaseIterable, Codable, Sendable, Comparable {
    case connection = "Connection"
    /// Where notifications go: a mail server or a webhook.
    case notificationChannel = "NotificationChannel"
    case job = "Job"
    case jobCollectionTemplate = "JobCollectionTemplate"
    case jobCollection = "JobCollection"
    case schedule = "Schedule"
    case policy = "Policy"
    /// A decision on a workflow request (approve or deny), merged like any change.
    case approval = "Approval"

    /// Dependency order: what an object may reference comes first. Plans list objects in this order.
    public var order: Int { Kind.allCases.firstIndex(of: self) ?? 0 }

    public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.order < rhs.order }
}

/// A kind and a name: the identity of an object.
public struct ObjectKey: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let kind: Kind
    public let name: String

    public init(_ kind: Kind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.kind.order, lhs.name) < (rhs.kind.order, rhs.name)
    }

    public var description: String { "\(kind.rawValue) \(name)" }
}

/// `metadata` of every document.
public struct Metadata: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public init(name: String, description: String? = nil) {
        self.name = name
        self.description = description
    }
}

// MARK: Connection

public enum ConnectionType: String, Codable, Sendable, CaseIterable { case csv, ldif, ldap }

/// What kind of LDAP server a connection speaks to. `activeDirectory` wants transport
/// encryption (an ldaps:// URL or StartTLS), and reads 1,000 entries a page by default (AD's
/// MaxPageSize).
public enum LDAPFlavor: String, Codable, Sendable, CaseIterable { case generic, activeDirectory }

/// A secret named by reference, never written in a manifest.
public struct SecretReference: Codable, Sendable, Equatable {
    public var env: String?
    public var file: String?
    public init(env: String? = nil, file: String? = nil) {
        self.env = env
        self.file = file
    }
}

public struct ConnectionSpec: Codable, Sendable, Equatable {
    public var type: ConnectionType
    /// A file on the reconciler's machine; relative paths are relative to the home.
    public var path: String?
    /// A file in the config repository, read at the applied commit.
    public var repoPath: String?
    public var baseDN: String?
    public var url: String?
    public var bindDN: String?
    public var passwordFrom: SecretReference?
    /// csv: the field separator (one character; default `,`).
    public var delimiter: String?
    /// Attributes whose values are masked (`••••••`) in logs, reports and previews, on top of
    /// `userPassword` and `unicodePwd`.
    public var secretAttributes: [String]?
    /// ldap: upgrade an ldap:// connection with StartTLS.
    public var startTLS: Bool?
    /// ldap: the CA certificates (PEM) that verify the server; the system's when nil.
    public var caFile: String?
    /// ldap: accept any server certificate. Warned about in every run report.
    public var insecureSkipVerify: Bool?
    /// ldap: entries per page of a search (default 500; 1,000 for Active Directory).
    public var pageSize: Int?
    /// ldap: the kind of server (default generic).
    public var flavor: LDAPFlavor?
    /// ldap: write operations in flight at once (default 32).
    public var maxOutstanding: Int?
    /// ldap: how long to wait for the network or an answer, like `30s` (default 30s).
    public var timeout: String?
    /// The most attribute values one write request carries (default 1,000): a larger change to
    /// a group is sent in several requests.
    public var maxValuesPerRequest: Int?

    public init(type: ConnectionType, path: String? = nil, repoPath: String? = nil, baseDN: String? = nil, url: String? = nil, bindDN: String? = nil, passwordFrom: SecretReference? = nil, delimiter: String? = nil, secretAttributes: [String]? = nil, startTLS: Bool? = nil, caFile: String? = nil, insecureSkipVerify: Bool? = nil, pageSize: Int? = nil, maxOutstanding: Int? = nil, timeout: String? = nil, maxValuesPerRequest: Int? = nil, flavor: LDAPFlavor? = nil) {
        self.type = type
        self.flavor = flavor
        self.path = path
        self.repoPath = repoPath
        self.baseDN = baseDN
        self.url = url
        self.bindDN = bindDN
        self.passwordFrom = passwordFrom
        self.delimiter = delimiter
        self.secretAttributes = secretAttributes
        self.startTLS = startTLS
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
        self.pageSize = pageSize
        self.maxOutstanding = maxOutstanding
        self.timeout = timeout
        self.maxValuesPerRequest = maxValuesPerRequest
    }
}

// MARK: Job

public struct JobSource: Codable, Sendable, Equatable {
    public var connection: String
    public var filter: String?
    public var base: String?

    public init(connection: String, filter: String? = nil, base: String? = nil) {
        self.connection = connection
        self.filter = filter
        self.base = base
    }
}

public struct JobDestination: Codable, Sendable, Equatable {
    public var connection: String
    public var objectClass: [String]
    public var container: String?
    public var rdn: String?

    public init(connection: String, objectClass: [String] = [], container: String? = nil, rdn: String? = nil) {
        self.connection = connection
        self.objectClass = objectClass
        self.container = container
        self.rdn = rdn
    }
}

public struct FieldMapping: Codable, Sendable, Equatable {
    public var source: String?
    public var destination: String
    public var value: String?
    public var generate: String?
    public var key: Bool
    public var newOnly: Bool
    public var delimiter: String?
    /// Each value is a reference, turned into the DN of the object it names (see `ValueReference`).
    public var resolve: ValueReference?
    /// What a value that does not resolve does to its row; absent means `skipValue`.
    public var onUnresolved: OnUnresolved?
    /// Whether values not in the source are removed; absent means `authoritative`.
    public var membership: Membership?

    public init(source: String? = nil, destination: String, value: String? = nil, generate: String? = nil, key: Bool = false, newOnly: Bool = false, delimiter: String? = nil,
                resolve: ValueReference? = nil, onUnresolved: OnUnresolved? = nil, membership: Membership? = nil) {
        self.source = source
        self.destination = destination
        self.value = value
        self.generate = generate
        self.key = key
        self.newOnly = newOnly
        self.delimiter = delimiter
        self.resolve = resolve
        self.onUnresolved = onUnresolved
        self.membership = membership
    }
}

/// How a mapping's value names another object, whose DN is written instead.
///
/// - `job` (with neither `by` nor `from`): the value is a key of that job's source rows.
/// - `job` and `by`: the value is held by that source column of the job's rows (unique among them).
/// - `job` and `from: dn`: the value is the DN of one of the job's source objects.
///
/// Each gives the DN the job gives that object at its destination. `attribute` (with an
/// optional `base`) looks the value up in the destination directory itself instead.
public struct ValueReference: Codable, Sendable, Equatable, Hashable {
    public enum From: String, Codable, Sendable, CaseIterable { case dn }
    public var job: String?
    public var by: String?
    public var from: From?
    public var attribute: String?
    public var base: String?

    public init(job: String? = nil, by: String? = nil, from: From? = nil, attribute: String? = nil, base: String? = nil) {
        self.job = job
        self.by = by
        self.from = from
        self.attribute = attribute
        self.base = base
    }
}

/// What a value that does not resolve does: it is always left out; `failRow` also fails the row.
public enum OnUnresolved: String, Codable, Sendable, CaseIterable { case skipValue, failRow }

/// Whether a multi-valued attribute's values that the source does not hold are removed.
public enum Membership: String, Codable, Sendable, CaseIterable {
    /// The destination holds exactly the source's values.
    case authoritative
    /// Values are only ever added: none is removed.
    case additive
}

/// What scheduled runs do with a job under a workflow.
public enum OnScheduledRuns: String, Codable, Sendable, CaseIterable {
    /// Run it: the schedule itself was reviewed (the reference product's behaviour).
    case skip
    /// Raise a request, as a manual run does.
    case require
}

/// A job under approval: manual runs raise a request instead of running it.
public struct Workflow: Codable, Sendable, Equatable {
    /// Email addresses (or `Name <email>`) of the people whose decision counts.
    public var approvers: [String]
    /// How long a request stays open, like `7d`; absent means 7 days (kept absent so that jobs
    /// stored before this field existed keep their hash).
    public var expiresAfter: String?
    /// Absent means `skip`.
    public var onScheduledRuns: OnScheduledRuns?

    public init(approvers: [String], expiresAfter: String? = nil, onScheduledRuns: OnScheduledRuns? = nil) {
        self.approvers = approvers
        self.expiresAfter = expiresAfter
        self.onScheduledRuns = onScheduledRuns
    }

    /// How long a request stays open when `expiresAfter` is not given.
    public static let defaultExpiry = 7 * 86_400

    /// `expiresAfter` in seconds.
    public var expirySeconds: Int { expiresAfter.flatMap { DurationText($0)?.seconds } ?? Self.defaultExpiry }

    /// The approvers' email addresses, lowercased: `Bob <bob@corp.example>` gives `bob@corp.example`.
    public var approverEmails: [String] { approvers.map(Self.email(of:)) }

    /// The address in `Name <email>`, or the text itself, lowercased and trimmed.
    public static func email(of text: String) -> String {
        var address = Substring(text)
        if let open = text.lastIndex(of: "<"), let close = text.lastIndex(of: ">"), open < close {
            address = text[text.index(after: open)..<close]
        }
        return address.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// Whether `text` (`bob@corp.example` or `Bob <bob@corp.example>`) holds an email address:
    /// one `@` with something on each side, and no space.
    public static func isEmail(_ text: String) -> Bool {
        let address = email(of: text)
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && !address.contains(" ")
    }
}

public struct JobSpec: Codable, Sendable, Equatable {
    public var source: JobSource
    public var destination: JobDestination
    public var mappings: [FieldMapping]
    /// Create source objects missing at the destination (true), or skip them.
    public var create: Bool
    /// Delete destination objects missing from the source (true), or leave them.
    public var delete: Bool
    public var workflow: Workflow?
    /// A source with no entries fails the job (deleting nothing) unless this is true.
    public var allowEmptySource: Bool
    /// More deletes than this fails the job, which then writes nothing.
    public var deleteThreshold: DeleteThreshold
    /// Attributes whose values are masked in logs, reports and previews, on top of the
    /// connections' and the defaults (`userPassword`, `unicodePwd`, generated passwords).
    public var secretAttributes: [String]?

    public init(source: JobSource, destination: JobDestination, mappings: [FieldMapping], create: Bool = true, delete: Bool = false, workflow: Workflow? = nil, allowEmptySource: Bool = false, deleteThreshold: DeleteThreshold = .standard, secretAttributes: [String]? = nil) {
        self.source = source
        self.destination = destination
        self.mappings = mappings
        self.create = create
        self.delete = delete
        self.workflow = workflow
        self.allowEmptySource = allowEmptySource
        self.deleteThreshold = deleteThreshold
        self.secretAttributes = secretAttributes
    }
}

/// The accidental-delete guard: `count` and/or `percent` of the destination's matched objects.
public struct DeleteThreshold: Codable, Sendable, Equatable {
    public var count: Int?
    public var percent: Int?
    public init(count: Int? = nil, percent: Int? = nil) {
        self.count = count
        self.percent = percent
    }
    public static let standard = DeleteThreshold(count: 500)
}

// MARK: Collections and templates

public enum OnFailure: String, Codable, Sendable, CaseIterable { case abort, `continue` }

public struct CollectionEntry: Codable, Sendable, Equatable {
    public var job: String
    public var onFailure: OnFailure
    public init(job: String, onFailure: OnFailure = .abort) {
        self.job = job
        self.onFailure = onFailure
    }
}

public enum NotificationTrigger: String, Codable, Sendable, CaseIterable {
    case always, recordsUpdated, errors, jobFails, recovered
    /// On when `notifications` lists no `when`.
    public static let defaults: [NotificationTrigger] = [.jobFails, .recovered]
}

public struct Notifications: Codable, Sendable, Equatable {
    /// The triggers (`defaults` when none are written).
    public var when: [NotificationTrigger]
    /// Email addresses, mailed through the smtp channel listed in `channels`.
    public var recipients: [String]
    /// NotificationChannel names.
    public var channels: [String]?
    /// How long an identical notification is held back after one was sent (default 1h).
    public var repeatAfter: String?

    public init(when: [NotificationTrigger], recipients: [String], channels: [String]? = nil, repeatAfter: String? = nil) {
        self.when = when
        self.recipients = recipients
        self.channels = channels
        self.repeatAfter = repeatAfter
    }
}

public enum NotificationChannelType: String, Codable, Sendable, CaseIterable { case smtp, webhook }

/// How a mail server is reached: STARTTLS (required), TLS from the start, or none (a relay on
/// the same machine; then no password is sent).
public enum MailSecurity: String, Codable, Sendable, CaseIterable { case starttls, implicit, none }

/// What a webhook receives: Syncwright's JSON, or a Slack or Teams message.
public enum WebhookFormat: String, Codable, Sendable, CaseIterable { case json, slack, teams }

/// A place notifications are sent: a mail server, or a webhook whose URL is a secret.
public struct NotificationChannelSpec: Codable, Sendable, Equatable {
    public var type: NotificationChannelType
    public var host: String?
    public var port: Int?
    public var tls: MailSecurity?
    public var username: String?
    public var passwordFrom: SecretReference?
    public var from: String?
    public var urlFrom: SecretReference?
    public var format: WebhookFormat?
    public var caFile: String?
    public var insecureSkipVerify: Bool?
    public var timeout: String?

    public init(type: NotificationChannelType, host: String? = nil, port: Int? = nil, tls: MailSecurity? = nil,
                username: String? = nil, passwordFrom: SecretReference? = nil, from: String? = nil,
                urlFrom: SecretReference? = nil, format: WebhookFormat? = nil, caFile: String? = nil,
                insecureSkipVerify: Bool? = nil, timeout: String? = nil) {
        self.type = type
        self.host = host
        self.port = port
        self.tls = tls
        self.username = username
        self.passwordFrom = passwordFrom
        self.from = from
        self.urlFrom = urlFrom
        self.format = format
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
        self.timeout = timeout
    }

    /// The port, by default the one of its TLS mode (587, 465, 25).
    public var effectivePort: Int {
        port ?? [MailSecurity.starttls: 587, .implicit: 465, MailSecurity.none: 25][tls ?? .starttls] ?? 587
    }
}

public struct JobCollectionSpec: Codable, Sendable, Equatable {
    public var template: String?
    /// As written; after template expansion (`DesiredState`), the template's jobs come first.
    public var jobs: [CollectionEntry]
    public var notifications: Notifications?
}

public struct JobCollectionTemplateSpec: Codable, Sendable, Equatable {
    /// A template may build on another template; its jobs come first.
    public var template: String?
    public var jobs: [CollectionEntry]
}

// MARK: Schedule

public enum Trigger: Codable, Sendable, Equatable {
    case cron(String)
    case every(interval: String, from: String?, for: String?)
    case once(String)
    case atStartup
}

/// What a schedule does about fire times that passed while no reconciler was running.
public enum MissedRuns: String, Codable, Sendable, CaseIterable {
    /// Record that runs were missed, and run nothing until the next fire time.
    case skip
    /// Run once to catch up, however many fire times were missed.
    case runOnce
}

public struct ScheduleSpec: Codable, Sendable, Equatable {
    public var targets: [String]
    public var timezone: String
    public var triggers: [Trigger]
    public var timeout: String?
    public var expires: String?
    public var enabled: Bool
    /// Absent means `runOnce` (kept absent so that older stored schedules keep their hash).
    public var missedRuns: MissedRuns?
    /// A fire time older than this is never started.
    public var startingDeadline: String?

    public init(targets: [String], timezone: String = "UTC", triggers: [Trigger], timeout: String? = nil,
                expires: String? = nil, enabled: Bool = true, missedRuns: MissedRuns? = nil,
                startingDeadline: String? = nil) {
        self.targets = targets
        self.timezone = timezone
        self.triggers = triggers
        self.timeout = timeout
        self.expires = expires
        self.enabled = enabled
        self.missedRuns = missedRuns
        self.startingDeadline = startingDeadline
    }
}

// MARK: Policy

/// What a rule does when an object breaks it.
public enum PolicyEnforcement: String, Codable, Sendable, CaseIterable {
    /// The revision is refused: `validate`, `plan` and `apply` fail.
    case deny
    /// The plan and the apply page show it; the revision is applied.
    case warn
}

/// Which objects a rule checks: of these kinds, and (when given) named like `names` and using
/// `connection`.
public struct PolicyMatch: Codable, Sendable, Equatable {
    public var kinds: [Kind]
    /// A shell-style pattern (`*`, `?`, `[a-z]`) over `metadata.name`.
    public var names: String?
    /// A Connection of this name, or a Job whose source or destination it is.
    public var connection: String?

    public init(kinds: [Kind], names: String? = nil, connection: String? = nil) {
        self.kinds = kinds
        self.names = names
        self.connection = connection
    }
}

/// A rule over the manifests of a revision: every object it matches must satisfy `expression`.
public struct PolicyRule: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var match: PolicyMatch
    /// A filter expression over the object's fields (`spec.delete == false || exists(spec.workflow)`).
    public var expression: String
    /// What a violation says; the description, or the expression, when not given.
    public var message: String?
    public var enforcement: PolicyEnforcement

    public init(name: String, description: String? = nil, match: PolicyMatch, expression: String, message: String? = nil,
                enforcement: PolicyEnforcement = .deny) {
        self.name = name
        self.description = description
        self.match = match
        self.expression = expression
        self.message = message
        self.enforcement = enforcement
    }

    /// Rules stored before `match` and `enforcement` existed read as matching nothing, until a
    /// revision that says what they match is applied.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        match = try c.decodeIfPresent(PolicyMatch.self, forKey: .match) ?? PolicyMatch(kinds: [])
        expression = try c.decode(String.self, forKey: .expression)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        enforcement = try c.decodeIfPresent(PolicyEnforcement.self, forKey: .enforcement) ?? .deny
    }
}

/// Which jobs a run-time limit or protection applies to: those writing `connection`, named like
/// `jobs`; every job when neither is given.
public struct RunMatch: Codable, Sendable, Equatable {
    public var connection: String?
    /// A shell-style pattern over the job's name.
    public var jobs: String?
    public init(connection: String? = nil, jobs: String? = nil) {
        self.connection = connection
        self.jobs = jobs
    }
}

/// What a delete limit counts over.
public enum LimitScope: String, Codable, Sendable, CaseIterable {
    /// Each job on its own.
    case job
    /// Every job of one collection run that the limit applies to, together.
    case run
}

/// At most so many deletes (or so large a share of the objects managed) before a job writes.
public struct DeleteLimit: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var match: RunMatch?
    public var maxDeletes: Int?
    /// Of the destination objects the job (or the run's jobs) manage.
    public var maxDeletePercent: Int?
    public var per: LimitScope
    /// Who may let a stopped job through once (with the job's workflow approvers).
    public var approvers: [String]

    public init(name: String, description: String? = nil, match: RunMatch? = nil, maxDeletes: Int? = nil,
                maxDeletePercent: Int? = nil, per: LimitScope = .job, approvers: [String] = []) {
        self.approvers = approvers
        self.name = name
        self.description = description
        self.match = match
        self.maxDeletes = maxDeletes
        self.maxDeletePercent = maxDeletePercent
        self.per = per
    }
}

/// What no job may do to a destination: write these attributes, or delete under these DNs.
public struct Protection: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var match: RunMatch?
    /// Attributes never set, changed or removed (compared without case).
    public var neverWrite: [String]
    /// Containers (DNs) under which nothing is deleted; the container itself included.
    public var neverDeleteUnder: [String]
    /// Who may let a stopped job through once (with the job's workflow approvers).
    public var approvers: [String]

    public init(name: String, description: String? = nil, match: RunMatch? = nil, neverWrite: [String] = [],
                neverDeleteUnder: [String] = [], approvers: [String] = []) {
        self.approvers = approvers
        self.name = name
        self.description = description
        self.match = match
        self.neverWrite = neverWrite
        self.neverDeleteUnder = neverDeleteUnder
    }
}

public enum Weekday: String, Codable, Sendable, CaseIterable {
    case sun = "Sun", mon = "Mon", tue = "Tue", wed = "Wed", thu = "Thu", fri = "Fri", sat = "Sat"
    /// 0 for Sunday, as `CivilDate` counts.
    public var number: Int { Weekday.allCases.firstIndex(of: self) ?? 0 }
}

/// Hours on some days of the week, in a window's time zone: `from` up to `to` (`HH:MM`; `24:00`
/// ends the day; a `to` at or before `from` runs past midnight into the next day).
public struct WindowSpan: Codable, Sendable, Equatable {
    public var days: [Weekday]
    public var from: String
    public var to: String
    public init(days: [Weekday], from: String, to: String) {
        self.days = days
        self.from = from
        self.to = to
    }

    /// Minutes since midnight of `HH:MM` (0–1440), nil when it is not such a time.
    public static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
              (0...24).contains(h), (0...59).contains(m), h * 60 + m <= 1_440 else { return nil }
        return h * 60 + m
    }
}

/// When jobs may write: only inside `allow`, or never inside `deny` (one of the two).
public struct SyncWindow: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var match: RunMatch?
    public var timeZone: String
    public var allow: [WindowSpan]
    public var deny: [WindowSpan]
    public init(name: String, description: String? = nil, match: RunMatch? = nil, timeZone: String,
                allow: [WindowSpan] = [], deny: [WindowSpan] = []) {
        self.name = name
        self.description = description
        self.match = match
        self.timeZone = timeZone
        self.allow = allow
        self.deny = deny
    }
}

public struct PolicySpec: Codable, Sendable, Equatable {
    /// Checked over the manifests of each revision.
    public var rules: [PolicyRule]
    /// Checked over what each run is about to write, before it writes.
    public var limits: [DeleteLimit]
    public var protect: [Protection]
    /// Checked when a run starts.
    public var windows: [SyncWindow]

    public init(rules: [PolicyRule] = [], limits: [DeleteLimit] = [], protect: [Protection] = [], windows: [SyncWindow] = []) {
        self.rules = rules
        self.limits = limits
        self.protect = protect
        self.windows = windows
    }

    /// Policies stored before limits, protections and windows existed read with none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rules = try c.decodeIfPresent([PolicyRule].self, forKey: .rules) ?? []
        limits = try c.decodeIfPresent([DeleteLimit].self, forKey: .limits) ?? []
        protect = try c.decodeIfPresent([Protection].self, forKey: .protect) ?? []
        windows = try c.decodeIfPresent([SyncWindow].self, forKey: .windows) ?? []
    }
}

// MARK: Approval

public enum ApprovalDecision: String, Codable, Sendable, CaseIterable { case approve, deny }

/// A decision on a workflow request. It counts only when the author of the commit that wrote it
/// is one of the job's approvers.
public struct ApprovalSpec: Codable, Sendable, Equatable {
    /// The request's id, as `syncwright requests` lists it.
    public var request: String
    public var decision: ApprovalDecision
    /// Required for `deny`.
    public var reason: String?

    public init(request: String, decision: ApprovalDecision, reason: String? = nil) {
        self.request = request
        self.decision = decision
        self.reason = reason
    }
}

// MARK: Documents

/// The spec of any kind.
public enum Spec: Sendable, Equatable {
    case connection(ConnectionSpec)
    case notificationChannel(NotificationChannelSpec)
    case job(JobSpec)
    case jobCollectionTemplate(JobCollectionTemplateSpec)
    case jobCollection(JobCollectionSpec)
    case schedule(ScheduleSpec)
    case policy(PolicySpec)
    case approval(ApprovalSpec)

    public var kind: Kind {
        switch self {
        case .connection: .connection
        case .notificationChannel: .notificationChannel
        case .job: .job
        case .jobCollectionTemplate: .jobCollectionTemplate
        case .jobCollection: .jobCollection
        case .schedule: .schedule
        case .policy: .policy
        case .approval: .approval
        }
    }
}

/// A place in a file of the config repository.
public struct SourceLocation: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// One decoded document.
public struct Manifest: Sendable, Equatable {
    public var metadata: Metadata
    public var spec: Spec
    /// The file the document came from (repository-relative).
    public var file: String
    /// Where the document starts, and where the fields that other documents' checks point at were
    /// written (names and references, by field path).
    public var location: SourceLocation
    public var fieldLocations: [String: SourceLocation]
    /// Canonical JSON of `{metadata, spec}` as written, and its SHA-256, computed once when parsed
    /// (on the parsing thread, so large repositories hash on every core).
    public let canonical: (json: String, hash: String)

    public var kind: Kind { spec.kind }
    public var key: ObjectKey { ObjectKey(spec.kind, metadata.name) }

    public init(metadata: Metadata, spec: Spec, file: String, location: SourceLocation,
                fieldLocations: [String: SourceLocation] = [:]) {
        self.metadata = metadata
        self.spec = spec
        self.file = file
        self.location = location
        self.fieldLocations = fieldLocations
        let json = Canonical.json(metadata: metadata, spec: spec)
        self.canonical = (json, Canonical.hash(json))
    }

    public static func == (lhs: Manifest, rhs: Manifest) -> Bool {
        lhs.metadata == rhs.metadata && lhs.spec == rhs.spec && lhs.file == rhs.file && lhs.location == rhs.location
            && lhs.fieldLocations == rhs.fieldLocations
    }

    /// Where `fieldPath` was written, or the document's start when it is not known.
    public func location(of fieldPath: String) -> SourceLocation {
        fieldLocations[fieldPath] ?? location
    }
}

/// A name this object refers to, and the field that holds it.
public struct Reference: Sendable, Equatable, Hashable {
    /// `.object` for a manifest, `.file` for a repository path (a connection's `repoPath`).
    public enum Target: Sendable, Equatable, Hashable {
        case object(ObjectKey)
        case file(String)
    }
    public let field: String
    public let target: Target
}

extension Manifest {
    /// Every reference the spec makes, with the field path that holds it.
    public var references: [Reference] { spec.references }
}

extension Spec {
    public var references: [Reference] {
        func jobRefs(_ jobs: [CollectionEntry]) -> [Reference] {
            jobs.enumerated().map { index, entry in
                Reference(field: "spec.jobs[\(index)].job", target: .object(ObjectKey(.job, entry.job)))
            }
        }
        switch self {
        case .connection(let c):
            return c.repoPath.map { [Reference(field: "spec.repoPath", target: .file($0))] } ?? []
        case .job(let j):
            return [
                Reference(field: "spec.source.connection", target: .object(ObjectKey(.connection, j.source.connection))),
                Reference(field: "spec.destination.connection",
                          target: .object(ObjectKey(.connection, j.destination.connection))),
            ] + j.mappings.enumerated().compactMap { index, mapping in
                mapping.resolve?.job.map { Reference(field: "spec.mappings[\(index)].resolve.job", target: .object(ObjectKey(.job, $0))) }
            }
        case .jobCollectionTemplate(let t):
            let base = t.template.map { [Reference(field: "spec.template",
                                                  target: .object(ObjectKey(.jobCollectionTemplate, $0)))] } ?? []
            return base + jobRefs(t.jobs)
        case .jobCollection(let c):
            let base = c.template.map { [Reference(field: "spec.template",
                                                  target: .object(ObjectKey(.jobCollectionTemplate, $0)))] } ?? []
            let channels = (c.notifications?.channels ?? []).enumerated().map { index, name in
                Reference(field: "spec.notifications.channels[\(index)]", target: .object(ObjectKey(.notificationChannel, name)))
            }
            return base + jobRefs(c.jobs) + channels
        case .schedule(let s):
            return s.targets.enumerated().map { index, name in
                Reference(field: "spec.targets[\(index)]", target: .object(ObjectKey(.jobCollection, name)))
            }
        case .policy(let p):
            let rules = p.rules.enumerated().compactMap { index, rule in
                rule.match.connection.map { Reference(field: "spec.rules[\(index)].match.connection", target: .object(ObjectKey(.connection, $0))) }
            }
            let limits = p.limits.enumerated().compactMap { index, limit in
                limit.match?.connection.map { Reference(field: "spec.limits[\(index)].match.connection", target: .object(ObjectKey(.connection, $0))) }
            }
            let protect = p.protect.enumerated().compactMap { index, protection in
                protection.match?.connection.map { Reference(field: "spec.protect[\(index)].match.connection", target: .object(ObjectKey(.connection, $0))) }
            }
            let windows = p.windows.enumerated().compactMap { index, window in
                window.match?.connection.map { Reference(field: "spec.windows[\(index)].match.connection", target: .object(ObjectKey(.connection, $0))) }
            }
            return rules + limits + protect + windows
        case .approval, .notificationChannel:
            return []
        }
    }
}
