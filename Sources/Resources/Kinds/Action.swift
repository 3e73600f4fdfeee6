/// Something done with a routed event: an HTTP call, a chat message, a local command, a file line.
public struct ActionSpec: ResourceSpec, FieldDocumented {
    public enum ActionType: String, SchemaEnum {
        case http, webhook, slack, teams, exec, stdout, file
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
        return references
    }

    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        let blocks: [(ActionType, Bool)] = [
            (.http, http != nil), (.webhook, webhook != nil), (.slack, slack != nil), (.teams, teams != nil),
            (.exec, exec != nil), (.stdout, stdout != nil), (.file, file != nil),
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
        "type": "What the action does: http, webhook, slack, teams, exec, stdout or file.",
        "http": "For type http: url (or urlFrom), method, headers and an optional body template.",
        "exec": "For type exec: the command and environment; runs only on agents started with --allow-exec.",
        "file": "For type file: the absolute path that rendered events are appended to.",
        "timeout": "How long one delivery may take.",
        "retry": "How many attempts a delivery gets, and the backoff between them.",
    ]
}
