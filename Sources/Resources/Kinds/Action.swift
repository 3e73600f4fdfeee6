/// Something done with a routed event: an HTTP call, a chat message, a local command, a file line.
public struct ActionSpec: ResourceSpec, FieldDocumented {
    public enum ActionType: String, SchemaEnum {
        case http, webhook, slack, teams, exec, stdout, file, email, pagerduty
    }

    /// A header or environment variable, written inline or taken from a Secret.
    public struct NamedValue: Codable, Sendable, Equatable {
        public var name: String
        public var value: String?
        public var valueFrom: ValueSource?

        public init(name: String, value: String? = nil, valueFrom: ValueSource? = nil) {
            self.name = name
            self.value = value
            self.valueFrom = valueFrom
        }
    }

    public struct HTTP: Codable, Sendable, Equatable {
        public var url: String?
        public var urlFrom: ValueSource?
        public var method: String?
        public var headers: [NamedValue]?
        public var body: String?
    }

    /// Webhook, Slack and Teams: a URL, often secret.
    public struct Hook: Codable, Sendable, Equatable {
        public var url: String?
        public var urlFrom: ValueSource?
        public var headers: [NamedValue]?
    }

    public struct Exec: Codable, Sendable, Equatable {
        public var command: [String]
        public var env: [NamedValue]?
        public var workingDirectory: String?
    }

    public struct File: Codable, Sendable, Equatable {
        public var path: String
    }

    public struct Stdout: Codable, Sendable, Equatable {}

    /// How an email action uses STARTTLS.
    public enum StartTLSPolicy: String, SchemaEnum {
        /// Upgrade with STARTTLS, and fail when the server does not offer it (the default).
        case required
        /// Upgrade when the server offers STARTTLS, otherwise send in clear text; credentials are refused then.
        case opportunistic
        /// Never upgrade: for servers on loopback only, and never with credentials.
        case disabled
    }

    /// Mail through an SMTP server, with STARTTLS and optional authentication (PLAIN or LOGIN).
    public struct Email: Codable, Sendable, Equatable, FieldDocumented {
        public var host: String
        public var port: Int?
        public var from: String
        public var to: [String]
        public var subject: String?
        public var username: String?
        public var usernameFrom: ValueSource?
        public var passwordFrom: ValueSource?
        public var startTLS: StartTLSPolicy?

        public init(host: String, port: Int? = nil, from: String, to: [String]) {
            self.host = host
            self.port = port
            self.from = from
            self.to = to
        }

        /// The port used when none is given: submission with STARTTLS.
        public static let defaultPort = 587
        /// The most recipients one action sends to.
        public static let maximumRecipients = 100

        public static let fieldDescriptions = [
            "host": "The SMTP server's host name or IP address.",
            "port": "The SMTP server's port; 587 (submission) when empty.",
            "from": "The sender address, e.g. alerts@example.com.",
            "to": "The recipient addresses (at most 100).",
            "subject": "Mustache template of the subject, rendered over the event; the template's title when empty.",
            "username": "The user name to authenticate with (AUTH PLAIN or LOGIN); or usernameFrom.",
            "usernameFrom": "The user name, taken from a Secret.",
            "passwordFrom": "The password, taken from a Secret; requires a user name and TLS.",
            "startTLS": "required (the default: fail without STARTTLS), opportunistic, or disabled (loopback only).",
        ]
    }

    /// PagerDuty incidents through the Events API v2 (`trigger` events).
    public struct PagerDuty: Codable, Sendable, Equatable, FieldDocumented {
        public enum Severity: String, SchemaEnum {
            case critical, error, warning, info
        }

        public var routingKeyFrom: ValueSource
        public var severity: Severity?
        public var source: String?
        public var url: String?

        public init(routingKeyFrom: ValueSource, severity: Severity? = nil, source: String? = nil, url: String? = nil) {
            self.routingKeyFrom = routingKeyFrom
            self.severity = severity
            self.source = source
            self.url = url
        }

        /// The Events API v2 endpoint used when `url` is empty.
        public static let defaultURL = "https://events.pagerduty.com/v2/enqueue"

        public static let fieldDescriptions = [
            "routingKeyFrom": "The integration's routing key, taken from a Secret.",
            "severity": "critical, error (the default), warning or info.",
            "source": "Where the problem is, e.g. a host name; the runner or controller delivering it when empty.",
            "url": "Overrides the Events API endpoint (https://events.pagerduty.com/v2/enqueue), e.g. for tests.",
        ]
    }

    public struct Retry: Codable, Sendable, Equatable {
        public var attempts: Int
        public var backoff: DurationString?
        public var maxBackoff: DurationString?
    }

    public struct Placement: Codable, Sendable, Equatable {
        public var controller: Bool?
        public var runners: [String]?
        /// How many runners the action is placed on; `runners` lists at most the first 100 of them.
        public var runnerCount: Int?
        public var syncedRunners: Int?
        public init() {}
    }

    public struct Execution: Codable, Sendable, Equatable {
        public var time: String?
        public var runner: String?
        public var succeeded: Bool?
        public var message: String?
    }

    public struct Status: ResourceStatus {
        public var observedGeneration: Int64?
        public var conditions: [Condition]?
        public var placement: Placement?
        public var lastExecution: Execution?
        /// Deliveries that reached the receiver, were given up, and are still due.
        public var delivered: Int64?
        public var failed: Int64?
        public var pending: Int64?
        /// With several controllers: each replica's pending deliveries (and failures in a row), by replica.
        public var replicas: [String: ReplicaDeliveries]?
        public init() {}
    }

    public static let kind = "Action"
    public static let plural = "actions"
    public static let shortNames = ["act"]

    public var type: ActionType
    public var http: HTTP?
    public var webhook: Hook?
    public var slack: Hook?
    public var teams: Hook?
    public var exec: Exec?
    public var stdout: Stdout?
    public var file: File?
    public var email: Email?
    public var pagerduty: PagerDuty?
    public var timeout: DurationString?
    public var retry: Retry?

    public init(type: ActionType) { self.type = type }

    /// The Secrets this action reads, so that only the runners running it receive them.
    public var secretReferences: [SecretKeySelector] {
        var references: [SecretKeySelector] = []
        func add(_ values: [NamedValue]?) { references += (values ?? []).compactMap { $0.valueFrom?.secretKeyRef } }
        if let http {
            add(http.headers)
            if let ref = http.urlFrom { references.append(ref.secretKeyRef) }
        }
        for hook in [webhook, slack, teams].compactMap({ $0 }) {
            add(hook.headers)
            if let ref = hook.urlFrom { references.append(ref.secretKeyRef) }
        }
        add(exec?.env)
        if let email {
            references += [email.usernameFrom, email.passwordFrom].compactMap { $0?.secretKeyRef }
        }
        if let pagerduty { references.append(pagerduty.routingKeyFrom.secretKeyRef) }
        return references
    }

    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        let blocks: [(ActionType, Bool)] = [
            (.http, http != nil), (.webhook, webhook != nil), (.slack, slack != nil), (.teams, teams != nil),
            (.exec, exec != nil), (.stdout, stdout != nil), (.file, file != nil), (.email, email != nil),
            (.pagerduty, pagerduty != nil),
        ]
        for (blockType, isPresent) in blocks {
            if blockType == type && !isPresent && blockType != .stdout {
                errors.append(
                    FieldError(
                        path: blockType.rawValue, reason: .required,
                        message: "required when type is \(type.rawValue)"))
            }
            if blockType != type && isPresent {
                errors.append(
                    FieldError(
                        path: blockType.rawValue, reason: .forbidden,
                        message: "must not be set when type is \(type.rawValue)"))
            }
        }
        if let http {
            errors += validateURL(http.url, from: http.urlFrom, at: "http")
            errors += validateValues(http.headers, at: "http.headers")
            if let method = http.method,
                !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(method.uppercased())
            {
                errors.append(FieldError(path: "http.method", reason: .notSupported, message: "unsupported method \"\(method)\""))
            }
        }
        for (name, hook) in [("webhook", webhook), ("slack", slack), ("teams", teams)] {
            guard let hook else { continue }
            errors += validateURL(hook.url, from: hook.urlFrom, at: name)
            errors += validateValues(hook.headers, at: "\(name).headers")
        }
        if let exec {
            if exec.command.isEmpty || exec.command[0].isEmpty {
                errors.append(FieldError(path: "exec.command", reason: .required, message: "the program to run is required"))
            }
            errors += validateValues(exec.env, at: "exec.env")
        }
        if let file, !file.path.hasPrefix("/") {
            errors.append(FieldError(path: "file.path", message: "must be an absolute path"))
        }
        if let email { errors += validateEmail(email) }
        if let pagerduty {
            errors += validateReference(
                pagerduty.routingKeyFrom.secretKeyRef, at: "pagerduty.routingKeyFrom.secretKeyRef")
            if let url = pagerduty.url, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
                errors.append(FieldError(path: "pagerduty.url", message: "must be an http:// or https:// URL"))
            }
            if let source = pagerduty.source, source.isEmpty || source.utf8.count > 255 {
                errors.append(FieldError(path: "pagerduty.source", message: "must be 1 to 255 bytes long"))
            }
        }
        if let retry, retry.attempts < 1 || retry.attempts > 100 {
            errors.append(FieldError(path: "retry.attempts", message: "must be between 1 and 100"))
        }
        return errors
    }

    private func validateURL(_ url: String?, from source: ValueSource?, at path: String) -> [FieldError] {
        switch (url, source) {
        case (nil, nil):
            return [FieldError(path: "\(path).url", reason: .required, message: "set url or urlFrom")]
        case (.some, .some):
            return [FieldError(path: "\(path).urlFrom", reason: .forbidden, message: "set url or urlFrom, not both")]
        case (.some(let url), nil):
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                return [FieldError(path: "\(path).url", message: "must be an http:// or https:// URL")]
            }
            return []
        case (nil, .some(let source)):
            return validateReference(source.secretKeyRef, at: "\(path).urlFrom.secretKeyRef")
        }
    }

    private func validateEmail(_ email: Email) -> [FieldError] {
        var errors: [FieldError] = []
        if email.host.isEmpty || email.host.contains(where: { $0.isWhitespace || $0 == "/" }) {
            errors.append(
                FieldError(path: "email.host", message: "must be a host name or IP address, like smtp.example.com"))
        }
        if let port = email.port, !(1...65535).contains(port) {
            errors.append(FieldError(path: "email.port", message: "must be between 1 and 65535"))
        }
        if !Self.isMailAddress(email.from) {
            errors.append(FieldError(path: "email.from", message: "must be one address like alerts@example.com"))
        }
        if email.to.isEmpty {
            errors.append(
                FieldError(path: "email.to", reason: .required, message: "at least one recipient is required"))
        } else if email.to.count > Email.maximumRecipients {
            errors.append(
                FieldError(
                    path: "email.to", reason: .tooLong, message: "at most \(Email.maximumRecipients) recipients"))
        }
        for (index, address) in email.to.enumerated() where !Self.isMailAddress(address) {
            errors.append(FieldError(path: "email.to[\(index)]", message: "must be one address like ops@example.com"))
        }
        if email.username != nil && email.usernameFrom != nil {
            errors.append(
                FieldError(
                    path: "email.usernameFrom", reason: .forbidden, message: "set username or usernameFrom, not both"))
        }
        if let reference = email.usernameFrom?.secretKeyRef {
            errors += validateReference(reference, at: "email.usernameFrom.secretKeyRef")
        }
        let hasUser = email.username != nil || email.usernameFrom != nil
        if let reference = email.passwordFrom?.secretKeyRef {
            errors += validateReference(reference, at: "email.passwordFrom.secretKeyRef")
            if !hasUser {
                errors.append(
                    FieldError(path: "email.username", reason: .required, message: "required with passwordFrom"))
            }
            if (email.startTLS ?? .required) != .required {
                errors.append(
                    FieldError(
                        path: "email.startTLS", reason: .forbidden,
                        message: "must be required when a password is sent, so that it never crosses in clear text"))
            }
        } else if hasUser {
            errors.append(
                FieldError(path: "email.passwordFrom", reason: .required, message: "required with a user name"))
        }
        return errors
    }

    /// A bare address `local@domain`, without display name, spaces, angle brackets or line breaks.
    static func isMailAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, text.utf8.count <= 254 else { return false }
        return !text.unicodeScalars.contains { scalar in
            scalar.value < 0x21 || scalar.value == 0x7F || scalar.properties.isWhitespace
                || "<>(),;:\\\"[]".unicodeScalars.contains(scalar)
        }
    }

    private func validateValues(_ values: [NamedValue]?, at path: String) -> [FieldError] {
        var errors: [FieldError] = []
        for (index, entry) in (values ?? []).enumerated() {
            let here = "\(path)[\(index)]"
            if entry.name.isEmpty {
                errors.append(FieldError(path: "\(here).name", reason: .required, message: "name is required"))
            }
            switch (entry.value, entry.valueFrom) {
            case (nil, nil):
                errors.append(FieldError(path: here, reason: .required, message: "set value or valueFrom"))
            case (.some, .some):
                errors.append(FieldError(path: "\(here).valueFrom", reason: .forbidden, message: "set value or valueFrom, not both"))
            case (nil, .some(let source)):
                errors += validateReference(source.secretKeyRef, at: "\(here).valueFrom.secretKeyRef")
            case (.some, nil):
                break
            }
        }
        return errors
    }

    private func validateReference(_ reference: SecretKeySelector, at path: String) -> [FieldError] {
        var errors = Names.validateObjectName(reference.name, at: "\(path).name")
        if reference.key.isEmpty {
            errors.append(FieldError(path: "\(path).key", reason: .required, message: "key is required"))
        }
        return errors
    }

    public static let fieldDescriptions = [
        "type": "What the action does: http, webhook, slack, teams, exec, stdout, file, email or pagerduty.",
        "http": "For type http: url (or urlFrom), method, headers and an optional body template.",
        "exec": "For type exec: the command and environment; runs only on agents started with --allow-exec.",
        "file": "For type file: the absolute path that rendered events are appended to.",
        "email": "For type email: the SMTP server, sender, recipients, subject, credentials and STARTTLS policy.",
        "pagerduty": "For type pagerduty: the routing key (from a Secret), severity, source and an optional URL.",
        "timeout": "How long one delivery may take.",
        "retry": "How many attempts a delivery gets, and the backoff between them.",
    ]
}
