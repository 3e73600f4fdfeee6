import Foundation
import Resources
import NIOSSL
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Everything the controller needs to serve HTTPS and authenticate its administrator, kept in its data directory:
///
/// | file | contents | mode |
/// | --- | --- | --- |
/// | `ca.crt` | the CA certificate (PEM) | 0644 |
/// | `ca.key` | the CA private key (PKCS#8 PEM) | 0600 |
/// | `server.crt` | the API server's serving certificate (PEM) | 0644 |
/// | `server.key` | its private key (PKCS#8 PEM) | 0600 |
/// | `admin.token` | the admin bearer token (64 hex characters and a newline) | 0600 |
///
/// ``loadOrCreate(dataDirectory:serverName:listenHost:now:hostname:)`` creates what is missing on first start and
/// loads the same files on every later start: a restart never rotates the CA or the admin token. Only the serving
/// certificate is reissued, when it lacks a name it now needs, is about to expire, or does not match its key or CA.
public struct ControllerIdentity: Sendable, CustomStringConvertible {
    /// File names inside the data directory.
    public enum FileName {
        /// The CA certificate.
        public static let caCertificate = "ca.crt"
        /// The CA private key.
        public static let caKey = "ca.key"
        /// The serving certificate.
        public static let servingCertificate = "server.crt"
        /// The serving private key.
        public static let servingKey = "server.key"
        /// The admin bearer token.
        public static let adminToken = "admin.token"
    }

    /// A serving certificate that expires sooner than this is reissued at start.
    public static let servingRenewalMargin: TimeInterval = 30 * 24 * 60 * 60

    /// The directory the files live in.
    public let dataDirectory: URL
    /// The certificate authority.
    public let certificateAuthority: CertificateAuthority
    /// The API server's serving certificate.
    public let servingCertificate: ServingCertificate
    /// The admin bearer token. Secret: never log it.
    public let adminToken: String
    /// Server-side TLS: TLS 1.2 or later, the serving certificate as the chain and its key; no client certificates.
    public let tlsConfiguration: TLSConfiguration
    /// What this call created or replaced, as sentences fit for an info log (never containing secrets); empty when
    /// everything was loaded unchanged.
    public let changes: [String]

    /// The CA certificate in PEM form, to hand to clients (kubeconfig `certificate-authority-data`).
    public var caCertificatePEM: String { certificateAuthority.caCertificatePEM }
    /// `sha256:<hex>` of the CA certificate's DER, for pinning in join tokens.
    public var caHash: String { certificateAuthority.caHash }
    /// The digest of the admin token, for a bearer-token authenticator.
    public var adminTokenDigest: TokenDigest { TokenDigest(token: adminToken) }

    /// The path of a file in the data directory.
    public func url(for fileName: String) -> URL {
        dataDirectory.appendingPathComponent(fileName, isDirectory: false)
    }

    /// Loads the controller's CA, serving certificate and admin token from `dataDirectory`, creating whatever is
    /// missing.
    ///
    /// - On first start the directory is created with mode 0700 and all five files are written (keys and token
    ///   0600, certificates 0644), each atomically.
    /// - Later starts load them unchanged. Key and token files readable by group or others are tightened to 0600.
    /// - The serving certificate is reissued (new key, same CA) when it lacks one of the required names, expires
    ///   within ``servingRenewalMargin``, was not issued by this CA, does not match its key, or cannot be read.
    /// - A CA certificate without its key, or an expired CA, is an error: replacing the CA silently would break
    ///   every client that trusts it.
    ///
    /// The serving certificate's names are `localhost`, `127.0.0.1`, `::1`, the host name, every entry of `extras`
    /// and `listenHost`. When `listenHost` is a wildcard (`0.0.0.0`, `::`, `*` or empty) the addresses of the
    /// machine's up, non-loopback interfaces are added instead (IPv6 link-local addresses excepted).
    ///
    /// - Parameters:
    ///   - dataDirectory: The controller's data directory.
    ///   - extras: Extra DNS names or IP addresses clients use to reach the API server.
    ///   - listenHost: The address or host name the API server listens on.
    ///   - now: The current time (for tests).
    ///   - hostname: The machine's host name; defaults to `gethostname(2)`.
    public static func loadOrCreate(
        dataDirectory: URL,
        serverName extras: [String] = [],
        listenHost: String = "127.0.0.1",
        now: Date = Date(),
        hostname: String? = ServingNames.systemHostname()
    ) throws -> ControllerIdentity {
        var changes: [String] = []
        let directory = dataDirectory.standardizedFileURL
        try SecureFile.ensureDirectory(directory)
        func file(_ name: String) -> URL { directory.appendingPathComponent(name, isDirectory: false) }

        let authority = try loadOrCreateAuthority(
            certificate: file(FileName.caCertificate),
            key: file(FileName.caKey),
            now: now,
            changes: &changes
        )
        let token = try loadOrCreateToken(at: file(FileName.adminToken), changes: &changes)
        let required = try requiredNames(extras: extras, listenHost: listenHost, hostname: hostname)
        let serving = try loadOrIssueServing(
            certificate: file(FileName.servingCertificate),
            key: file(FileName.servingKey),
            authority: authority,
            names: required,
            now: now,
            changes: &changes
        )
        return ControllerIdentity(
            dataDirectory: directory,
            certificateAuthority: authority,
            servingCertificate: serving,
            adminToken: token,
            tlsConfiguration: try makeServerTLSConfiguration(serving, path: file(FileName.servingCertificate).path),
            changes: changes
        )
    }

    /// The names the serving certificate must carry for the given configuration.
    public static func requiredNames(
        extras: [String],
        listenHost: String,
        hostname: String? = ServingNames.systemHostname()
    ) throws -> ServingNames {
        var names = try ServingNames.standard(extras: extras, hostname: hostname)
        let host = listenHost.trimmingCharacters(in: .whitespaces)
        if host.isEmpty || host == "*" || IPAddress.isUnspecified(host) {
            names.formUnion(try ServingNames(interfaceAddresses()))
        } else {
            names.formUnion(try ServingNames([host]))
        }
        return names
    }

    /// A server TLS configuration for a serving certificate: TLS 1.2 or later, the certificate as the whole chain.
    public static func makeServerTLSConfiguration(
        _ serving: ServingCertificate,
        path: String? = nil
    ) throws -> TLSConfiguration {
        do {
            let certificate = try NIOSSLCertificate(bytes: Array(serving.certificatePEM.utf8), format: .pem)
            let key = try NIOSSLPrivateKey(bytes: Array(serving.privateKeyPEM.utf8), format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: [.certificate(certificate)],
                privateKey: .privateKey(key)
            )
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch {
            throw SecurityError(
                code: .tlsConfiguration,
                message: "the serving certificate\(path.map { " \($0)" } ?? "") or its key was rejected by NIOSSL",
                path: path,
                underlying: error
            )
        }
    }

    /// The data directory and CA fingerprint; never keys or the token.
    public var description: String {
        "ControllerIdentity(dataDirectory: \(dataDirectory.path), ca: \(caHash), serving: \(servingCertificate.names))"
    }

    // MARK: Steps

    private static func loadOrCreateAuthority(
        certificate: URL,
        key: URL,
        now: Date,
        changes: inout [String]
    ) throws -> CertificateAuthority {
        if let certificatePEM = try SecureFile.read(certificate) {
            try SecureFile.restrictPermissions(key)
            guard let keyPEM = try SecureFile.read(key) else {
                throw SecurityError(
                    code: .missingFile,
                    message: "the CA certificate \(certificate.path) exists but its key \(key.path) does not; "
                        + "restore the key, or remove the CA certificate to create a new CA "
                        + "(clients will have to trust it again)",
                    path: key.path
                )
            }
            let authority = try CertificateAuthority(
                certificatePEM: certificatePEM,
                privateKeyPEM: keyPEM,
                source: certificate.deletingLastPathComponent().path
            )
            if now > authority.certificate.notValidAfter {
                throw SecurityError(
                    code: .expired,
                    message:
                        "the CA certificate \(certificate.path) expired at \(authority.certificate.notValidAfter); "
                        + "remove ca.crt and ca.key to create a new CA (clients will have to trust it again)",
                    path: certificate.path
                )
            }
            return authority
        }
        // No CA certificate: nobody can trust this CA yet, so a stray key left by an interrupted start is replaced.
        let authority = try CertificateAuthority.create(now: now)
        try SecureFile.write(authority.privateKeyPEM, to: key, mode: 0o600)
        try SecureFile.write(authority.caCertificatePEM, to: certificate, mode: 0o644)
        changes.append("created a new CA \(authority.caHash) in \(certificate.path)")
        return authority
    }

    private static func loadOrCreateToken(at url: URL, changes: inout [String]) throws -> String {
        try SecureFile.restrictPermissions(url)
        if let stored = try SecureFile.read(url) {
            let token = stored.trimmingCharacters(in: .whitespacesAndNewlines)
            guard token.utf8.count >= 16, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw SecurityError(
                    code: .invalidToken,
                    message: "the admin token file \(url.path) must hold one token of at least 16 printable ASCII "
                        + "characters without spaces; remove it to create a new token",
                    path: url.path
                )
            }
            return token
        }
        let token = Credentials.makeToken(bytes: 32)
        try SecureFile.write(token + "\n", to: url, mode: 0o600)
        changes.append("created a new admin token in \(url.path)")
        return token
    }

    private static func loadOrIssueServing(
        certificate: URL,
        key: URL,
        authority: CertificateAuthority,
        names: ServingNames,
        now: Date,
        changes: inout [String]
    ) throws -> ServingCertificate {
        try SecureFile.restrictPermissions(key)
        let reason: String
        if let certificatePEM = try SecureFile.read(certificate), let keyPEM = try SecureFile.read(key) {
            do {
                let existing = try ServingCertificate(
                    certificatePEM: certificatePEM,
                    privateKeyPEM: keyPEM,
                    source: certificate.deletingLastPathComponent().path
                )
                if let problem = servingProblem(existing, authority: authority, names: names, now: now) {
                    reason = problem
                } else {
                    return existing
                }
            } catch let error as SecurityError {
                reason = error.message
            }
        } else {
            reason = "there was none"
        }
        let serving = try authority.issueServingCertificate(names: names, now: now)
        try SecureFile.write(serving.privateKeyPEM, to: key, mode: 0o600)
        try SecureFile.write(serving.certificatePEM, to: certificate, mode: 0o644)
        changes.append("issued a serving certificate for \(names) in \(certificate.path) (\(reason))")
        return serving
    }

    private static func servingProblem(
        _ serving: ServingCertificate,
        authority: CertificateAuthority,
        names: ServingNames,
        now: Date
    ) -> String? {
        if !authority.hasIssued(serving.certificate) {
            return "the previous one was not issued by the current CA"
        }
        if serving.certificate.notValidAfter < now + servingRenewalMargin {
            return "the previous one expires at \(serving.certificate.notValidAfter)"
        }
        if serving.certificate.notValidBefore > now {
            return "the previous one is not valid before \(serving.certificate.notValidBefore)"
        }
        if !serving.names.isSuperset(of: names) {
            let missingDNS = Set(names.dnsNames).subtracting(serving.names.dnsNames).sorted().map { "DNS:\($0)" }
            let missingIP = Set(names.ipAddresses).subtracting(serving.names.ipAddresses).sorted().map { "IP:\($0)" }
            return "the previous one lacked \((missingDNS + missingIP).joined(separator: ", "))"
        }
        return nil
    }

    /// The addresses of up, non-loopback interfaces, without IPv6 link-local (`fe80::/10`) and IPv4 link-local
    /// (`169.254.0.0/16`) addresses, which clients cannot use without a zone. Canonical text form, in interface order.
    public static func interfaceAddresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var result: [String] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            let flags = Int32(bitPattern: UInt32(entry.pointee.ifa_flags))
            guard flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0,
                let address = entry.pointee.ifa_addr
            else { continue }
            var bytes: [UInt8]
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                bytes = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    var value = pointer.pointee.sin_addr
                    return withUnsafeBytes(of: &value) { Array($0) }
                }
                if bytes[0] == 169 && bytes[1] == 254 { continue }
            case AF_INET6:
                bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var value = pointer.pointee.sin6_addr
                    return withUnsafeBytes(of: &value) { Array($0) }
                }
                if bytes[0] == 0xFE && (bytes[1] & 0xC0) == 0x80 { continue }
            default:
                continue
            }
            if let text = IPAddress.text(bytes) { result.append(text) }
        }
        return result
    }
}

/// File operations for secrets: atomic writes with an exact mode, and reads that tell "missing" from "unreadable".
enum SecureFile {
    /// The file's contents as UTF-8, or nil when it does not exist.
    static func read(_ url: URL) throws -> String? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            let data = try Data(contentsOf: url)
            return String(decoding: data, as: UTF8.self)
        } catch {
            throw SecurityError(
                code: .fileSystem,
                message: "cannot read \(url.path)",
                path: url.path,
                underlying: error
            )
        }
    }

    /// Writes `contents` to a temporary file in the same directory with exactly `mode`, flushes it, and renames it
    /// over `url`, so readers see either the old file or the whole new one.
    static func write(_ contents: String, to url: URL, mode: mode_t) throws {
        do {
            try AtomicFile.write(Array(contents.utf8), to: url.path, mode: mode)
        } catch {
            throw SecurityError(
                code: .fileSystem, message: "cannot \(error.action) \(url.path)", path: url.path,
                underlying: error.underlying)
        }
    }

    /// Creates `url` as a directory with mode 0700 (and missing parents with default modes) when it does not exist.
    static func ensureDirectory(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw SecurityError(
                    code: .fileSystem,
                    message: "the data directory \(url.path) exists but is not a directory",
                    path: url.path
                )
            }
            return
        }
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
        } catch {
            throw SecurityError(
                code: .fileSystem,
                message: "cannot create the parent directory of \(url.path)",
                path: url.path,
                underlying: error
            )
        }
        if mkdir(url.path, 0o700) != 0 && errno != EEXIST {
            let code = errno
            throw SecurityError(
                code: .fileSystem,
                message: "cannot create the data directory \(url.path)",
                path: url.path,
                underlying: POSIXErrorCode(rawValue: code).map { POSIXError($0) }
            )
        }
        _ = chmod(url.path, 0o700)
    }

    /// Sets a secret file's mode to 0600 when group or others have any access; does nothing when it is missing.
    static func restrictPermissions(_ url: URL) throws {
        var info = stat()
        guard stat(url.path, &info) == 0 else { return }
        guard info.st_mode & 0o077 != 0 else { return }
        if chmod(url.path, 0o600) != 0 {
            let code = errno
            throw SecurityError(
                code: .fileSystem,
                message: "\(url.path) is readable by other users and its permissions cannot be set to 0600",
                path: url.path,
                underlying: POSIXErrorCode(rawValue: code).map { POSIXError($0) }
            )
        }
    }
}

