import Crypto
import Foundation
import TLSSupport
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - Errors

/// An error from the controller's PKI and credential handling.
///
/// The message says what was wrong and, where a file is involved, which one. Secrets (private keys, tokens) never
/// appear in a message.
public struct SecurityError: Error, Sendable, CustomStringConvertible {
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

        /// A DNS name or IP address for the serving certificate is not valid.
        public static let invalidName = Code(rawValue: "invalidName")
        /// A certificate could not be parsed or does not have the expected shape.
        public static let invalidCertificate = Code(rawValue: "invalidCertificate")
        /// A private key could not be parsed or is of an unsupported type.
        public static let invalidPrivateKey = Code(rawValue: "invalidPrivateKey")
        /// A private key does not belong to the certificate it was stored with.
        public static let keyMismatch = Code(rawValue: "keyMismatch")
        /// A certificate is outside its validity period.
        public static let expired = Code(rawValue: "expired")
        /// Signing a new certificate failed.
        public static let signingFailed = Code(rawValue: "signingFailed")
        /// A file that must exist alongside others is missing.
        public static let missingFile = Code(rawValue: "missingFile")
        /// Reading, writing or creating a file or directory failed.
        public static let fileSystem = Code(rawValue: "fileSystem")
        /// A stored token is not usable.
        public static let invalidToken = Code(rawValue: "invalidToken")
        /// The TLS configuration could not be built from the certificate and key.
        public static let tlsConfiguration = Code(rawValue: "tlsConfiguration")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What was wrong and where; never contains secret material.
    public var message: String
    /// The file or directory involved, when there is one.
    public var path: String?
    /// The error that caused this one, when there is one.
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

// MARK: - Serving names

/// The subject alternative names a serving certificate is issued for: DNS names and IP addresses, normalised
/// (DNS names lowercased without a trailing dot, IP addresses in their canonical text form) and sorted.
public struct ServingNames: Hashable, Sendable, CustomStringConvertible {
    /// DNS names, lowercased, sorted, without duplicates.
    public private(set) var dnsNames: [String]
    /// IP addresses in canonical text form (`127.0.0.1`, `::1`), sorted, without duplicates.
    public private(set) var ipAddresses: [String]

    /// Names every serving certificate carries: `localhost`, `127.0.0.1` and `::1`.
    public static let loopback = ServingNames(validatedDNSNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"])

    /// Creates a set of names from DNS names and IP addresses written as text.
    ///
    /// Each entry that parses as an IPv4 or IPv6 address (optionally in brackets, `[::1]`) becomes an IP address;
    /// every other entry must be a valid DNS name (letters, digits and hyphens in dot-separated labels, with an
    /// optional leading `*.` wildcard label). Empty entries are ignored.
    /// - Throws: ``SecurityError`` with code ``SecurityError/Code/invalidName`` naming the first bad entry.
    public init(_ names: [String]) throws {
        var dns: Set<String> = []
        var ips: Set<String> = []
        for raw in names {
            let name = raw.trimmingCharacters(in: .whitespaces)
            if name.isEmpty { continue }
            if let ip = IPAddress.canonical(name) {
                ips.insert(ip)
            } else if let dnsName = Self.normalisedDNSName(name) {
                dns.insert(dnsName)
            } else {
                throw SecurityError(
                    code: .invalidName,
                    message: "'\(name)' is neither an IP address nor a valid DNS name for a serving certificate"
                )
            }
        }
        self.dnsNames = dns.sorted()
        self.ipAddresses = ips.sorted()
    }

    private init(validatedDNSNames: [String], ipAddresses: [String]) {
        self.dnsNames = Array(Set(validatedDNSNames)).sorted()
        self.ipAddresses = Array(Set(ipAddresses)).sorted()
    }

    /// The names a controller's serving certificate needs: ``loopback``, the machine's host name (when it is a
    /// valid DNS name) and the given extra DNS names and IP addresses.
    /// - Parameters:
    ///   - extras: Extra DNS names or IP addresses, as accepted by ``init(_:)``.
    ///   - hostname: The machine's host name; defaults to `gethostname(2)`. An invalid host name is left out.
    public static func standard(extras: [String], hostname: String? = ServingNames.systemHostname()) throws -> Self {
        var names = loopback
        if let hostname, let dnsName = normalisedDNSName(hostname) {
            names.formUnion(ServingNames(validatedDNSNames: [dnsName], ipAddresses: []))
        }
        names.formUnion(try ServingNames(extras))
        return names
    }

    /// The machine's host name from `gethostname(2)`, or nil when it cannot be read.
    public static func systemHostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? nil : name
    }

    /// Whether every name in `other` is also in this set.
    public func isSuperset(of other: ServingNames) -> Bool {
        Set(dnsNames).isSuperset(of: other.dnsNames) && Set(ipAddresses).isSuperset(of: other.ipAddresses)
    }

    /// Adds every name in `other`.
    public mutating func formUnion(_ other: ServingNames) {
        dnsNames = Array(Set(dnsNames).union(other.dnsNames)).sorted()
        ipAddresses = Array(Set(ipAddresses).union(other.ipAddresses)).sorted()
    }

    /// The names in the form `DNS:localhost, IP:127.0.0.1`.
    public var description: String {
        (dnsNames.map { "DNS:\($0)" } + ipAddresses.map { "IP:\($0)" }).joined(separator: ", ")
    }

    /// The names as X.509 general names, DNS names first.
    var generalNames: [GeneralName] {
        var result = dnsNames.map { GeneralName.dnsName($0) }
        for ip in ipAddresses {
            if let bytes = IPAddress.bytes(ip) {
                result.append(.ipAddress(.init(contentBytes: bytes[...])))
            }
        }
        return result
    }

    /// Reads the DNS and IP names out of a certificate's subject alternative names extension.
    init(certificate: Certificate) throws {
        var dns: [String] = []
        var ips: [String] = []
        for name in try certificate.extensions.subjectAlternativeNames ?? SubjectAlternativeNames() {
            switch name {
            case .dnsName(let value):
                dns.append(value.lowercased())
            case .ipAddress(let octets):
                if let text = IPAddress.text(Array(octets.bytes)) { ips.append(text) }
            default:
                continue
            }
        }
        self.init(validatedDNSNames: dns, ipAddresses: ips)
    }

    /// A lowercased DNS name without a trailing dot, or nil when `name` is not a valid DNS name.
    static func normalisedDNSName(_ name: String) -> String? {
        var candidate = name.lowercased()
        if candidate.hasSuffix(".") { candidate.removeLast() }
        guard !candidate.isEmpty, candidate.utf8.count <= 253 else { return nil }
        let labels = candidate.split(separator: ".", omittingEmptySubsequences: false)
        for (index, label) in labels.enumerated() {
            if index == 0, label == "*", labels.count > 2 { continue }
            guard (1...63).contains(label.utf8.count),
                label.first != "-", label.last != "-",
                label.utf8.allSatisfy({ byte in
                    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
                })
            else { return nil }
        }
        return candidate
    }
}

/// Conversions between IP address text and bytes, using the C library's parser.
enum IPAddress {
    /// The 4 or 16 bytes of an IPv4 or IPv6 address written as text (brackets around IPv6 allowed).
    static func bytes(_ text: String) -> [UInt8]? {
        var address = text
        if address.hasPrefix("["), address.hasSuffix("]") {
            address = String(address.dropFirst().dropLast())
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// The canonical text form of 4 or 16 address bytes.
    static func text(_ bytes: [UInt8]) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The canonical text form of an address written as text, or nil when it is not an IP address.
    static func canonical(_ text: String) -> String? {
        bytes(text).flatMap { Self.text($0) }
    }

    /// Whether the text is an unspecified (wildcard) address such as `0.0.0.0` or `::`.
    static func isUnspecified(_ text: String) -> Bool {
        guard let bytes = bytes(text) else { return false }
        return bytes.allSatisfy { $0 == 0 }
    }
}

// MARK: - Certificate authority

/// The controller's certificate authority: a self-signed ECDSA P-256 CA that issues the API server's serving
/// certificate.
///
/// The CA certificate is what clients (kubectl, the CLI, agents) trust; ``caHash`` pins it in join tokens the way
/// kubeadm's `--discovery-token-ca-cert-hash` does.
public struct CertificateAuthority: Sendable, CustomStringConvertible {
    /// The common name of a CA created with the defaults.
    public static let defaultCommonName = "steady-ca"
    /// Validity of a new CA: ten years.
    public static let defaultValidity: TimeInterval = 3_652 * 24 * 60 * 60
    /// Validity of a new serving certificate: one year.
    public static let defaultServingValidity: TimeInterval = 365 * 24 * 60 * 60
    /// How far before "now" new certificates start being valid, to tolerate clock skew between machines.
    public static let backdating: TimeInterval = 5 * 60

    /// The CA certificate.
    public let certificate: Certificate
    /// The CA certificate in PEM form (`-----BEGIN CERTIFICATE-----`), ending in a newline.
    public let caCertificatePEM: String
    /// `sha256:` followed by the lowercase hex SHA-256 of the CA certificate's DER encoding.
    public let caHash: String
    private let signingKey: P256.Signing.PrivateKey

    /// Creates a new self-signed CA with a fresh P-256 key.
    ///
    /// The certificate has basicConstraints `CA:TRUE` (critical), keyUsage `keyCertSign, cRLSign` (critical),
    /// a subject key identifier and an authority key identifier equal to it.
    /// - Parameters:
    ///   - commonName: The subject and issuer common name.
    ///   - now: The time of creation; the certificate is valid from a few minutes before it.
    ///   - validity: How long the certificate is valid from `now`.
    public static func create(
        commonName: String = defaultCommonName,
        now: Date = Date(),
        validity: TimeInterval = defaultValidity
    ) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let signer = Certificate.PrivateKey(key)
        do {
            let name = try DistinguishedName { CommonName(commonName) }
            let keyIdentifier = SubjectKeyIdentifier(hash: signer.publicKey)
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                keyIdentifier
                AuthorityKeyIdentifier(keyIdentifier: keyIdentifier.keyIdentifier)
            }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: makeSerialNumber(),
                publicKey: signer.publicKey,
                notValidBefore: now - backdating,
                notValidAfter: now + validity,
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: signer
            )
            return try CertificateAuthority(certificate: certificate, key: key)
        } catch let error as SecurityError {
            throw error
        } catch {
            throw SecurityError(code: .signingFailed, message: "could not create the CA certificate", underlying: error)
        }
    }

    /// Loads a CA from its certificate and private key in PEM form.
    ///
    /// The key may be PKCS#8 (`PRIVATE KEY`) or SEC 1 (`EC PRIVATE KEY`) P-256. The certificate must be a CA
    /// certificate whose public key matches the private key.
    /// - Parameters:
    ///   - certificatePEM: The CA certificate.
    ///   - privateKeyPEM: The CA's private key.
    ///   - source: Where the PEM came from (a directory or file path), used in error messages.
    public init(certificatePEM: String, privateKeyPEM: String, source: String? = nil) throws {
        let place = source.map { " in \($0)" } ?? ""
        let certificate = try parseCertificate(certificatePEM, what: "CA certificate\(place)", path: source)
        guard case .isCertificateAuthority = try? certificate.extensions.basicConstraints else {
            throw SecurityError(
                code: .invalidCertificate,
                message: "the CA certificate\(place) is not a CA certificate (basicConstraints CA:TRUE missing)",
                path: source
            )
        }
        let key = try parseP256Key(privateKeyPEM, what: "CA private key\(place)", path: source)
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw SecurityError(
                code: .keyMismatch,
                message: "the CA private key\(place) does not belong to the CA certificate",
                path: source
            )
        }
        try self.init(certificate: certificate, key: key)
    }

    private init(certificate: Certificate, key: P256.Signing.PrivateKey) throws {
        self.certificate = certificate
        self.signingKey = key
        let der = try derBytes(of: certificate, what: "CA certificate")
        self.caCertificatePEM = PEM.encode(der: der, label: "CERTIFICATE")
        self.caHash = Self.hash(der: der)
    }

    /// The CA's private key in PKCS#8 PEM form. Secret: store it with 0600 permissions and never log it.
    public var privateKeyPEM: String {
        PEM.encode(der: Array(signingKey.derRepresentation), label: "PRIVATE KEY")
    }

    /// `sha256:` followed by the lowercase hex SHA-256 of the given DER bytes.
    public static func hash(der: [UInt8]) -> String {
        TLSSupport.caHash(der: der)
    }

    /// Whether `certificate` names this CA as its issuer and carries a valid signature from this CA's key.
    public func hasIssued(_ certificate: Certificate) -> Bool {
        certificate.issuer == self.certificate.subject
            && self.certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
    }

    /// Issues a TLS serving certificate for the given names with a fresh P-256 key.
    ///
    /// The certificate has basicConstraints `CA:FALSE` (critical), keyUsage `digitalSignature` (critical),
    /// extendedKeyUsage `serverAuth`, the names as subject alternative names, a subject key identifier and an
    /// authority key identifier naming this CA's key — what Go's crypto/x509 (kubectl) and BoringSSL expect.
    /// - Parameters:
    ///   - names: The DNS names and IP addresses the certificate is valid for; see
    ///     ``ServingNames/standard(extras:hostname:)``.
    ///   - commonName: The subject common name (clients match on the alternative names, not this).
    ///   - now: The time of issue; the certificate is valid from a few minutes before it.
    ///   - validity: How long the certificate is valid from `now`.
    public func issueServingCertificate(
        names: ServingNames,
        commonName: String = "steady-apiserver",
        now: Date = Date(),
        validity: TimeInterval = defaultServingValidity
    ) throws -> ServingCertificate {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        do {
            let subject = try DistinguishedName { CommonName(commonName) }
            let authorityKey =
                try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
                ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names.generalNames)
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: authorityKey)
            }
            let notAfter = min(now + validity, certificate.notValidAfter)
            let issued = try Certificate(
                version: .v3,
                serialNumber: makeSerialNumber(),
                publicKey: publicKey,
                notValidBefore: now - Self.backdating,
                notValidAfter: notAfter,
                issuer: certificate.subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: Certificate.PrivateKey(signingKey)
            )
            return try ServingCertificate(certificate: issued, key: key)
        } catch let error as SecurityError {
            throw error
        } catch {
            throw SecurityError(
                code: .signingFailed,
                message: "could not issue a serving certificate for \(names)",
                underlying: error
            )
        }
    }

    /// The CA's subject and fingerprint; never the key.
    public var description: String {
        "CertificateAuthority(subject: \(certificate.subject), \(caHash))"
    }
}

// MARK: - Serving certificate

/// A TLS serving certificate and its private key.
public struct ServingCertificate: Sendable, CustomStringConvertible {
    /// The certificate.
    public let certificate: Certificate
    /// The certificate in PEM form, ending in a newline.
    public let certificatePEM: String
    /// The DNS names and IP addresses the certificate is valid for.
    public let names: ServingNames
    private let key: P256.Signing.PrivateKey

    /// Loads a serving certificate and its P-256 private key from PEM.
    /// - Parameters:
    ///   - certificatePEM: The certificate.
    ///   - privateKeyPEM: Its private key (PKCS#8 or SEC 1).
    ///   - source: Where the PEM came from, used in error messages.
    public init(certificatePEM: String, privateKeyPEM: String, source: String? = nil) throws {
        let place = source.map { " in \($0)" } ?? ""
        let certificate = try parseCertificate(certificatePEM, what: "serving certificate\(place)", path: source)
        let key = try parseP256Key(privateKeyPEM, what: "serving private key\(place)", path: source)
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw SecurityError(
                code: .keyMismatch,
                message: "the serving private key\(place) does not belong to the serving certificate",
                path: source
            )
        }
        try self.init(certificate: certificate, key: key)
    }

    fileprivate init(certificate: Certificate, key: P256.Signing.PrivateKey) throws {
        self.certificate = certificate
        self.key = key
        self.certificatePEM = PEM.encode(
            der: try derBytes(of: certificate, what: "serving certificate"),
            label: "CERTIFICATE"
        )
        do {
            self.names = try ServingNames(certificate: certificate)
        } catch {
            throw SecurityError(
                code: .invalidCertificate,
                message: "the serving certificate's subject alternative names cannot be read",
                underlying: error
            )
        }
    }

    /// The private key in PKCS#8 PEM form. Secret: store it with 0600 permissions and never log it.
    public var privateKeyPEM: String {
        PEM.encode(der: Array(key.derRepresentation), label: "PRIVATE KEY")
    }

    /// The subject, names and expiry; never the key.
    public var description: String {
        "ServingCertificate(subject: \(certificate.subject), names: \(names), "
            + "notValidAfter: \(certificate.notValidAfter))"
    }
}

// MARK: - Helpers

/// A random positive serial number of 16 bytes (within RFC 5280's 20-octet limit once DER-encoded).
private func makeSerialNumber() -> Certificate.SerialNumber {
    var generator = SystemRandomNumberGenerator()
    var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    bytes[0] = (bytes[0] & 0x7F) | 0x40
    return Certificate.SerialNumber(bytes: bytes)
}

private func parseCertificate(_ pem: String, what: String, path: String?) throws -> Certificate {
    do {
        return try Certificate(pemEncoded: pem)
    } catch {
        throw SecurityError(
            code: .invalidCertificate,
            message: "the \(what) is not a valid PEM certificate",
            path: path,
            underlying: error
        )
    }
}

private func parseP256Key(_ pem: String, what: String, path: String?) throws -> P256.Signing.PrivateKey {
    do {
        return try P256.Signing.PrivateKey(pemRepresentation: pem)
    } catch {
        throw SecurityError(
            code: .invalidPrivateKey,
            message: "the \(what) is not a PEM ECDSA P-256 private key",
            path: path,
            underlying: error
        )
    }
}

private func derBytes(of certificate: Certificate, what: String) throws -> [UInt8] {
    do {
        return try certificate.serializeAsPEM().derBytes
    } catch {
        throw SecurityError(code: .invalidCertificate, message: "the \(what) cannot be encoded", underlying: error)
    }
}
