import Foundation
import NIOSSL
import Resources
import TLSSupport
import Yams

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - Errors

/// An error reading, writing or resolving a kubeconfig file, or building client TLS from it.
///
/// The message names the file and what is wrong or missing. Tokens and keys never appear in it.
public struct KubeconfigError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable category. New categories are added as static members.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The category's name.
        public var rawValue: String

        /// Creates a category with the given name.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// The category's name.
        public var description: String { rawValue }

        /// The kubeconfig file does not exist.
        public static let notFound = Code(rawValue: "notFound")
        /// A file could not be read or written.
        public static let fileSystem = Code(rawValue: "fileSystem")
        /// The file is not YAML, or a field has the wrong type.
        public static let invalidFormat = Code(rawValue: "invalidFormat")
        /// Something the current context needs is missing (context, cluster, user, server, ...).
        public static let missing = Code(rawValue: "missing")
        /// A CA certificate is not valid PEM, or does not match a pinned hash.
        public static let invalidCertificate = Code(rawValue: "invalidCertificate")
        /// The configuration asks for something this client refuses, such as skipping TLS verification.
        public static let unsupported = Code(rawValue: "unsupported")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What was wrong and where; never contains a token or key.
    public var message: String
    /// The file involved, when there is one.
    public var path: String?
    /// The error that caused this one, when there is one (sanitised so it holds no file contents).
    public var underlying: (any Error)?

    /// Creates an error.
    public init(code: Code, message: String, path: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.underlying = underlying
    }

    /// The message, followed by the underlying error when there is one.
    public var description: String {
        guard let underlying else { return message }
        return "\(message): \(underlying)"
    }
}

// MARK: - Model

/// A kubeconfig file as kubectl reads it (`apiVersion: v1`, `kind: Config`): clusters, users, contexts and the
/// current context.
///
/// Decoding is lenient: unknown fields (kubectl writes many: `preferences`, `extensions`, `exec`, ...) are ignored,
/// and missing lists count as empty. Only the fields below are kept, so rewriting a foreign kubeconfig drops the
/// rest; write only files this program owns.
public struct Kubeconfig: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Always `v1`.
    public var apiVersion: String
    /// Always `Config`.
    public var kind: String
    /// Named clusters.
    public var clusters: [NamedCluster]
    /// Named users (kubectl's "auth infos").
    public var users: [NamedUser]
    /// Named contexts, each a cluster and a user.
    public var contexts: [NamedContext]
    /// The name of the context used by default.
    public var currentContext: String
    /// The file this configuration was loaded from; relative paths inside it are resolved against its directory.
    /// Not part of the YAML.
    public var source: URL?

    /// A cluster entry.
    public struct NamedCluster: Codable, Sendable, Equatable {
        /// The cluster's name.
        public var name: String
        /// How to reach and trust it.
        public var cluster: Cluster

        /// Creates a cluster entry.
        public init(name: String, cluster: Cluster) {
            self.name = name
            self.cluster = cluster
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
            self.cluster = try container.decodeIfPresent(Cluster.self, forKey: .cluster) ?? Cluster(server: "")
        }
    }

    /// How to reach a cluster's API server and which CA to trust.
    public struct Cluster: Codable, Sendable, Equatable {
        /// The API server URL, e.g. `https://127.0.0.1:6443`.
        public var server: String
        /// Base64 of the CA certificate(s) in PEM form (`certificate-authority-data`).
        public var certificateAuthorityData: String?
        /// Path of a PEM file with the CA certificate(s) (`certificate-authority`).
        public var certificateAuthority: String?
        /// `insecure-skip-tls-verify`; this client refuses it.
        public var insecureSkipTLSVerify: Bool?
        /// `tls-server-name`: the name to verify the server certificate against instead of the URL's host.
        public var tlsServerName: String?

        /// Creates a cluster.
        public init(
            server: String,
            certificateAuthorityData: String? = nil,
            certificateAuthority: String? = nil,
            insecureSkipTLSVerify: Bool? = nil,
            tlsServerName: String? = nil
        ) {
            self.server = server
            self.certificateAuthorityData = certificateAuthorityData
            self.certificateAuthority = certificateAuthority
            self.insecureSkipTLSVerify = insecureSkipTLSVerify
            self.tlsServerName = tlsServerName
        }

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthorityData = "certificate-authority-data"
            case certificateAuthority = "certificate-authority"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.server = try container.decodeIfPresent(String.self, forKey: .server) ?? ""
            self.certificateAuthorityData = try container.decodeIfPresent(
                String.self,
                forKey: .certificateAuthorityData
            )
            self.certificateAuthority = try container.decodeIfPresent(String.self, forKey: .certificateAuthority)
            self.insecureSkipTLSVerify = try container.decodeIfPresent(Bool.self, forKey: .insecureSkipTLSVerify)
            self.tlsServerName = try container.decodeIfPresent(String.self, forKey: .tlsServerName)
        }
    }

    /// A user entry.
    public struct NamedUser: Codable, Sendable, Equatable {
        /// The user's name.
        public var name: String
        /// Its credentials.
        public var user: User

        /// Creates a user entry.
        public init(name: String, user: User) {
            self.name = name
            self.user = user
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
            self.user = try container.decodeIfPresent(User.self, forKey: .user) ?? User()
        }
    }

    /// A user's credentials: a bearer token, inline or in a file. Other kinds (client certificates, exec plugins)
    /// are ignored.
    public struct User: Codable, Sendable, Equatable, CustomStringConvertible {
        /// The bearer token. Secret.
        public var token: String?
        /// Path of a file holding the bearer token (`tokenFile`, as kubectl spells it; `token-file` is also read).
        /// When both are set, ``token`` wins, as in kubectl.
        public var tokenFile: String?

        /// Creates credentials.
        public init(token: String? = nil, tokenFile: String? = nil) {
            self.token = token
            self.tokenFile = tokenFile
        }

        enum CodingKeys: String, CodingKey {
            case token
            case tokenFile
            case tokenFileDashed = "token-file"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.token = try container.decodeIfPresent(String.self, forKey: .token)
            self.tokenFile =
                try container.decodeIfPresent(String.self, forKey: .tokenFile)
                ?? container.decodeIfPresent(String.self, forKey: .tokenFileDashed)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(token, forKey: .token)
            try container.encodeIfPresent(tokenFile, forKey: .tokenFile)
        }

        /// Which kinds of credentials are set; never the token itself.
        public var description: String {
            "User(token: \(token == nil ? "none" : "<redacted>"), tokenFile: \(tokenFile ?? "none"))"
        }
    }

    /// A context entry.
    public struct NamedContext: Codable, Sendable, Equatable {
        /// The context's name.
        public var name: String
        /// The cluster and user it pairs.
        public var context: Context

        /// Creates a context entry.
        public init(name: String, context: Context) {
            self.name = name
            self.context = context
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
            self.context =
                try container.decodeIfPresent(Context.self, forKey: .context) ?? Context(cluster: "", user: "")
        }
    }

    /// A pairing of a cluster and a user (and optionally a namespace).
    public struct Context: Codable, Sendable, Equatable {
        /// The cluster's name.
        public var cluster: String
        /// The user's name.
        public var user: String
        /// The default namespace, when set.
        public var namespace: String?

        /// Creates a context.
        public init(cluster: String, user: String, namespace: String? = nil) {
            self.cluster = cluster
            self.user = user
            self.namespace = namespace
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.cluster = try container.decodeIfPresent(String.self, forKey: .cluster) ?? ""
            self.user = try container.decodeIfPresent(String.self, forKey: .user) ?? ""
            self.namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
        }
    }

    enum CodingKeys: String, CodingKey {
        case apiVersion
        case kind
        case clusters
        case contexts
        case currentContext = "current-context"
        case users
    }

    /// Creates a configuration.
    public init(
        clusters: [NamedCluster] = [],
        users: [NamedUser] = [],
        contexts: [NamedContext] = [],
        currentContext: String = "",
        source: URL? = nil
    ) {
        self.apiVersion = "v1"
        self.kind = "Config"
        self.clusters = clusters
        self.users = users
        self.contexts = contexts
        self.currentContext = currentContext
        self.source = source
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion) ?? "v1"
        self.kind = try container.decodeIfPresent(String.self, forKey: .kind) ?? "Config"
        self.clusters = try container.decodeIfPresent([NamedCluster].self, forKey: .clusters) ?? []
        self.users = try container.decodeIfPresent([NamedUser].self, forKey: .users) ?? []
        self.contexts = try container.decodeIfPresent([NamedContext].self, forKey: .contexts) ?? []
        self.currentContext = try container.decodeIfPresent(String.self, forKey: .currentContext) ?? ""
        self.source = nil
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(apiVersion, forKey: .apiVersion)
        try container.encode(kind, forKey: .kind)
        try container.encode(clusters, forKey: .clusters)
        try container.encode(contexts, forKey: .contexts)
        try container.encode(currentContext, forKey: .currentContext)
        try container.encode(users, forKey: .users)
    }

    /// The contexts and clusters; never tokens.
    public var description: String {
        let names = contexts.map { "\($0.name)=\($0.context.cluster)/\($0.context.user)" }.joined(separator: ", ")
        return
            "Kubeconfig(source: \(source?.path ?? "memory"), current-context: \(currentContext), contexts: [\(names)])"
    }
}

// MARK: - Making, writing, loading

extension Kubeconfig {
    /// A kubeconfig with one cluster, one user and one context, as the controller hands its administrator:
    /// cluster `name` at `server` trusting `caPEM` (embedded as `certificate-authority-data`), user `name-admin`
    /// with bearer `token`, and context `name`, which is current.
    public static func make(server: String, caPEM: String, token: String, name: String = "steady") -> Kubeconfig {
        let user = "\(name)-admin"
        return Kubeconfig(
            clusters: [
                NamedCluster(
                    name: name,
                    cluster: Cluster(server: server, certificateAuthorityData: Data(caPEM.utf8).base64EncodedString())
                )
            ],
            users: [NamedUser(name: user, user: User(token: token))],
            contexts: [NamedContext(name: name, context: Context(cluster: name, user: user))],
            currentContext: name
        )
    }

    /// The configuration as kubeconfig YAML.
    public func yaml() throws -> String {
        do {
            return try YAMLEncoder().encode(self)
        } catch {
            throw KubeconfigError(
                code: .invalidFormat,
                message: "cannot encode the kubeconfig as YAML",
                underlying: error
            )
        }
    }

    /// Writes the configuration to `url` with mode 0600, atomically: a temporary file in the same directory is
    /// written, flushed and renamed over `url`. A missing parent directory is created with mode 0700.
    public func write(to url: URL) throws {
        let contents = try yaml()
        try KubeconfigFile.write(contents, to: url)
    }

    /// Loads a kubeconfig file.
    ///
    /// - Throws: ``KubeconfigError``: ``KubeconfigError/Code/notFound`` when the file does not exist,
    ///   ``KubeconfigError/Code/invalidFormat`` when it is empty, not YAML, or has a field of the wrong type (the
    ///   message names the file and the field).
    public static func load(from url: URL) throws -> Kubeconfig {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw KubeconfigError(code: .notFound, message: "kubeconfig \(path) does not exist", path: path)
        }
        let text: String
        do {
            text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        } catch {
            throw KubeconfigError(
                code: .fileSystem,
                message: "cannot read kubeconfig \(path)",
                path: path,
                underlying: error
            )
        }
        var config = try parse(text, path: path)
        config.source = url
        return config
    }

    /// Parses kubeconfig YAML. `path` only names the source in error messages.
    public static func parse(_ yaml: String, path: String = "<memory>") throws -> Kubeconfig {
        if yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw KubeconfigError(code: .invalidFormat, message: "kubeconfig \(path) is empty", path: path)
        }
        do {
            return try YAMLDecoder().decode(Kubeconfig.self, from: yaml)
        } catch let error as DecodingError {
            throw KubeconfigError(
                code: .invalidFormat,
                message: "kubeconfig \(path) is not valid: \(describe(error))",
                path: path,
                underlying: sanitised(error)
            )
        } catch {
            throw KubeconfigError(
                code: .invalidFormat,
                message: "kubeconfig \(path) is not valid YAML: \(describeYAML(error))",
                path: path
            )
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let keys = path + (last.map { [$0] } ?? [])
            if keys.isEmpty { return "the document" }
            var text = ""
            for key in keys {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(field(context.codingPath, key)) is missing"
        case .valueNotFound(_, let context):
            return "\(field(context.codingPath)) is null"
        case .typeMismatch(let type, let context):
            return "\(field(context.codingPath)) should be \(kindName(type))"
        case .dataCorrupted(let context):
            if let underlying = context.underlyingError {
                return "YAML syntax: \(describeYAML(underlying))"
            }
            return "\(field(context.codingPath)) is malformed"
        @unknown default:
            return "it cannot be decoded"
        }
    }

    private static func kindName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default: "a \(String(describing: type).lowercased()), not this kind of value"
        }
    }

    /// Where the YAML is broken and why, without the text around it (it may hold a token).
    private static func describeYAML(_ error: any Error) -> String {
        guard let yamlError = error as? YamlError else { return "it cannot be parsed" }
        switch yamlError {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return "\(problem) at line \(mark.line), column \(mark.column)"
        case .reader(let problem, let offset, _, _):
            return "\(problem)\(offset.map { " at byte \($0)" } ?? "")"
        case .duplicatedKeysInMapping(let duplicates, let context):
            return "duplicated keys \(duplicates.joined(separator: ", ")) at line \(context.mark.line)"
        default:
            return "it cannot be parsed"
        }
    }

    /// The decoding error without anything copied from the file.
    private static func sanitised(_ error: DecodingError) -> (any Error)? {
        if case .dataCorrupted = error { return nil }
        return error
    }
}

// MARK: - Resolving the current context

/// What a client needs to talk to the cluster of a kubeconfig's current context.
public struct ResolvedCluster: Sendable, Equatable, CustomStringConvertible {
    /// The context used.
    public var contextName: String
    /// The cluster's name.
    public var clusterName: String
    /// The user's name (empty when the context names none).
    public var userName: String
    /// The API server URL.
    public var server: String
    /// The CA certificate(s) to trust, in PEM form; nil means the system's trust store.
    public var caPEM: String?
    /// The bearer token, from `token` or the file named by `tokenFile`. Secret.
    public var token: String?
    /// The context's default namespace, when set.
    public var namespace: String?
    /// The name to verify the server certificate against, when it differs from the URL's host.
    public var tlsServerName: String?
    /// Whether the kubeconfig asks to skip TLS verification (which ``makeTLSConfiguration()`` refuses).
    public var insecureSkipTLSVerify: Bool
    /// The kubeconfig this came from, when loaded from a file.
    public var source: URL?

    /// Client TLS trusting ``caPEM`` (or the system store when nil), with full verification.
    /// - Throws: ``KubeconfigError`` with code ``KubeconfigError/Code/unsupported`` when the kubeconfig sets
    ///   `insecure-skip-tls-verify: true`.
    public func makeTLSConfiguration() throws -> TLSConfiguration {
        if insecureSkipTLSVerify {
            let place = source.map { " in \($0.path)" } ?? ""
            throw KubeconfigError(
                code: .unsupported,
                message: "cluster \"\(clusterName)\"\(place) sets insecure-skip-tls-verify, which this client does "
                    + "not support; set certificate-authority-data to the cluster's CA instead",
                path: source?.path
            )
        }
        return try makeClientTLSConfiguration(caPEM: caPEM)
    }

    /// The context, cluster and server; never the token.
    public var description: String {
        "ResolvedCluster(context: \(contextName), cluster: \(clusterName), server: \(server), "
            + "ca: \(caPEM == nil ? "system" : "custom"), token: \(token == nil ? "none" : "<redacted>"))"
    }
}

extension Kubeconfig {
    /// The cluster, CA and token of the current context.
    ///
    /// When `current-context` is empty and there is exactly one context, that context is used. Relative
    /// `certificate-authority` and `tokenFile` paths are resolved against the kubeconfig's directory, as kubectl
    /// does. `certificate-authority-data` wins over `certificate-authority`, and `token` over `tokenFile`.
    /// - Throws: ``KubeconfigError`` naming the file and what is missing (context, cluster, user, server) or
    ///   unreadable (CA or token file).
    public var currentCluster: ResolvedCluster {
        get throws {
            try resolve(context: currentContext.isEmpty ? nil : currentContext)
        }
    }

    /// The cluster, CA and token of the named context, or of the current context when `context` is nil.
    public func resolve(context requested: String? = nil) throws -> ResolvedCluster {
        let file = source?.path ?? "<memory>"
        let contextName: String
        if let requested {
            contextName = requested
        } else if !currentContext.isEmpty {
            contextName = currentContext
        } else if contexts.count == 1 {
            contextName = contexts[0].name
        } else {
            throw missing("current-context is not set in kubeconfig \(file) (it has \(contexts.count) contexts)")
        }
        guard let context = contexts.first(where: { $0.name == contextName })?.context else {
            throw missing("context \"\(contextName)\" is not in kubeconfig \(file)")
        }
        guard !context.cluster.isEmpty else {
            throw missing("context \"\(contextName)\" in kubeconfig \(file) names no cluster")
        }
        guard let cluster = clusters.first(where: { $0.name == context.cluster })?.cluster else {
            throw missing("cluster \"\(context.cluster)\" of context \"\(contextName)\" is not in kubeconfig \(file)")
        }
        guard !cluster.server.isEmpty else {
            throw missing("cluster \"\(context.cluster)\" in kubeconfig \(file) has no server")
        }
        var user = User()
        if !context.user.isEmpty {
            guard let found = users.first(where: { $0.name == context.user })?.user else {
                throw missing("user \"\(context.user)\" of context \"\(contextName)\" is not in kubeconfig \(file)")
            }
            user = found
        }
        return ResolvedCluster(
            contextName: contextName,
            clusterName: context.cluster,
            userName: context.user,
            server: cluster.server,
            caPEM: try caPEM(of: cluster, named: context.cluster, file: file),
            token: try token(of: user, named: context.user, file: file),
            namespace: context.namespace,
            tlsServerName: cluster.tlsServerName,
            insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false,
            source: source
        )
    }

    private func missing(_ message: String) -> KubeconfigError {
        KubeconfigError(code: .missing, message: message, path: source?.path)
    }

    private func caPEM(of cluster: Cluster, named name: String, file: String) throws -> String? {
        if let data = cluster.certificateAuthorityData, !data.isEmpty {
            guard let decoded = Data(base64Encoded: data, options: .ignoreUnknownCharacters),
                let pem = String(data: decoded, encoding: .utf8), pem.contains("-----BEGIN CERTIFICATE-----")
            else {
                throw KubeconfigError(
                    code: .invalidCertificate,
                    message: "certificate-authority-data of cluster \"\(name)\" in kubeconfig \(file) is not base64 "
                        + "of a PEM certificate",
                    path: source?.path
                )
            }
            return pem
        }
        if let path = cluster.certificateAuthority, !path.isEmpty {
            let url = resolvePath(path)
            do {
                let pem = String(decoding: try Data(contentsOf: url), as: UTF8.self)
                guard pem.contains("-----BEGIN CERTIFICATE-----") else {
                    throw KubeconfigError(
                        code: .invalidCertificate,
                        message: "certificate-authority \(url.path) of cluster \"\(name)\" in kubeconfig \(file) "
                            + "holds no PEM certificate",
                        path: url.path
                    )
                }
                return pem
            } catch let error as KubeconfigError {
                throw error
            } catch {
                throw KubeconfigError(
                    code: .fileSystem,
                    message:
                        "cannot read certificate-authority \(url.path) of cluster \"\(name)\" in kubeconfig \(file)",
                    path: url.path,
                    underlying: error
                )
            }
        }
        return nil
    }

    private func token(of user: User, named name: String, file: String) throws -> String? {
        if let token = user.token, !token.isEmpty { return token }
        guard let path = user.tokenFile, !path.isEmpty else { return nil }
        let url = resolvePath(path)
        let contents: Data
        do {
            contents = try Data(contentsOf: url)
        } catch {
            throw KubeconfigError(
                code: .fileSystem,
                message: "cannot read tokenFile \(url.path) of user \"\(name)\" in kubeconfig \(file)",
                path: url.path,
                underlying: error
            )
        }
        let token = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw missing("tokenFile \(url.path) of user \"\(name)\" in kubeconfig \(file) is empty")
        }
        return token
    }

    /// A path from the file, made absolute against the kubeconfig's directory (or the current directory).
    private func resolvePath(_ path: String) -> URL {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path) }
        let base =
            source?.deletingLastPathComponent()
            ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        return base.appendingPathComponent(path).standardizedFileURL
    }
}

// MARK: - Locating

extension Kubeconfig {
    /// The default kubeconfig written next to a locally started controller, relative to the current directory.
    public static let localPath = ".steady/admin.kubeconfig"

    /// Which kubeconfig to use, by precedence:
    ///
    /// 1. `explicit` (the `--kubeconfig` flag), even when the file does not exist, so the error names it;
    /// 2. `STEADY_KUBECONFIG`, likewise;
    /// 3. `KUBECONFIG`: its first colon-separated entry that exists, else its first non-empty entry;
    /// 4. `.steady/admin.kubeconfig` in the current directory, when it exists;
    /// 5. `~/.kube/config` (home from `HOME`), when it exists.
    ///
    /// Relative paths are taken against `currentDirectory` and a leading `~/` against the home directory.
    /// Returns nil when no step applies.
    public static func locate(
        explicit: String?,
        environment: [String: String],
        currentDirectory: URL? = nil,
        fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
    ) -> URL? {
        let cwd =
            currentDirectory
            ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        let home: URL
        if let value = environment["HOME"], !value.isEmpty {
            home = URL(fileURLWithPath: value, isDirectory: true)
        } else {
            home = FileManager.default.homeDirectoryForCurrentUser
        }
        func url(_ path: String) -> URL {
            if path == "~" { return home }
            if path.hasPrefix("~/") {
                return home.appendingPathComponent(String(path.dropFirst(2))).standardizedFileURL
            }
            if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardizedFileURL }
            return cwd.appendingPathComponent(path).standardizedFileURL
        }
        if let explicit, !explicit.isEmpty { return url(explicit) }
        if let value = environment["STEADY_KUBECONFIG"], !value.isEmpty { return url(value) }
        if let value = environment["KUBECONFIG"] {
            let entries = value.split(separator: ":").map(String.init).filter { !$0.isEmpty }.map(url)
            if let existing = entries.first(where: { fileExists($0.path) }) { return existing }
            if let first = entries.first { return first }
        }
        let local = url(localPath)
        if fileExists(local.path) { return local }
        let kube = home.appendingPathComponent(".kube/config")
        if fileExists(kube.path) { return kube }
        return nil
    }
}

// MARK: - Files

/// Atomic writes of private files.
enum KubeconfigFile {
    /// Writes `contents` to a temporary file beside `url` with mode 0600, flushes it and renames it over `url`.
    static func write(_ contents: String, to url: URL) throws {
        let path = url.path
        let directory = url.deletingLastPathComponent()
        if !FileManager.default.fileExists(atPath: directory.path) {
            do {
                try FileManager.default.createDirectory(
                    at: directory,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
            } catch {
                throw KubeconfigError(
                    code: .fileSystem,
                    message: "cannot create the directory of kubeconfig \(path)",
                    path: path,
                    underlying: error
                )
            }
        }
        do {
            try AtomicFile.write(Array(contents.utf8), to: path, mode: 0o600)
        } catch {
            throw KubeconfigError(
                code: .fileSystem, message: "cannot \(error.action) kubeconfig \(path)", path: path,
                underlying: error.underlying)
        }
    }
}

