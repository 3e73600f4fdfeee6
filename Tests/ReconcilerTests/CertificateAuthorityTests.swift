import Foundation
import Reconciler
import Testing
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fresh temporary directory, removed by `cleanup()`.
private struct PKITemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("steady-pki-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func cleanup() {
        try? FileManager.default.removeItem(at: url)
    }
}

private func fileMode(of url: URL) -> mode_t? {
    var info = stat()
    guard stat(url.path, &info) == 0 else { return nil }
    return info.st_mode & 0o777
}

private func sha256Hex(ofPEM pem: String) -> String? {
    let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    guard let der = Data(base64Encoded: body) else { return nil }
    return CertificateAuthority.hash(der: Array(der))
}

/// The full path of an executable on PATH, or nil.
private func executablePath(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

@Suite(.timeLimit(.minutes(5))) struct CertificateAuthorityTests {
    let now = Date()

    @Test func caCertificateHasTheExpectedShape() throws {
        let ca = try CertificateAuthority.create(now: now)
        let parsed = try Certificate(pemEncoded: ca.caCertificatePEM)
        #expect(parsed == ca.certificate)
        #expect(parsed.subject == parsed.issuer)
        #expect(parsed.subject.description.contains("CN=steady-ca"))
        #expect(parsed.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(P256PublicKeyCheck.isP256(parsed.publicKey))

        let basic = try #require(parsed.extensions[oid: .X509ExtensionID.basicConstraints])
        #expect(basic.critical)
        #expect(try parsed.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: nil))
        let usage = try #require(parsed.extensions[oid: .X509ExtensionID.keyUsage])
        #expect(usage.critical)
        let keyUsage = try #require(try parsed.extensions.keyUsage)
        #expect(keyUsage.keyCertSign && keyUsage.cRLSign && !keyUsage.digitalSignature)
        let ski = try #require(try parsed.extensions.subjectKeyIdentifier)
        #expect(ski.keyIdentifier.count == 20)
        #expect(try parsed.extensions.authorityKeyIdentifier?.keyIdentifier == ski.keyIdentifier)

        let years = parsed.notValidAfter.timeIntervalSince(now) / (365.25 * 24 * 3600)
        #expect(abs(years - 10) < 0.01)
        #expect(parsed.notValidBefore <= now)
        #expect(parsed.serialNumber.bytes.count <= 20)
        #expect((parsed.serialNumber.bytes.first ?? 0) & 0x80 == 0)
        #expect(ca.caCertificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
        #expect(ca.caCertificatePEM.hasSuffix("-----END CERTIFICATE-----\n"))
    }

    @Test func caHashIsSHA256OfTheDER() throws {
        let ca = try CertificateAuthority.create(now: now)
        #expect(ca.caHash.hasPrefix("sha256:"))
        #expect(ca.caHash.count == 7 + 64)
        #expect(ca.caHash == ca.caHash.lowercased())
        #expect(ca.caHash == sha256Hex(ofPEM: ca.caCertificatePEM))
    }

    @Test func caRoundTripsThroughPEM() throws {
        let ca = try CertificateAuthority.create(now: now)
        let loaded = try CertificateAuthority(certificatePEM: ca.caCertificatePEM, privateKeyPEM: ca.privateKeyPEM)
        #expect(loaded.certificate == ca.certificate)
        #expect(loaded.caHash == ca.caHash)
        #expect(ca.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(!ca.description.contains("PRIVATE"))

        let other = try CertificateAuthority.create(now: now)
        let error = try #require(throws: SecurityError.self) {
            try CertificateAuthority(
                certificatePEM: ca.caCertificatePEM,
                privateKeyPEM: other.privateKeyPEM,
                source: "/x"
            )
        }
        #expect(error.code == .keyMismatch)
        #expect(error.message.contains("/x"))
        #expect(!error.description.contains(other.privateKeyPEM))

        let garbage = try #require(throws: SecurityError.self) {
            try CertificateAuthority(certificatePEM: "not pem", privateKeyPEM: ca.privateKeyPEM)
        }
        #expect(garbage.code == .invalidCertificate)
        #expect(garbage.underlying != nil)
    }

    @Test func servingCertificateHasTheExpectedShape() throws {
        let ca = try CertificateAuthority.create(now: now)
        let names = try ServingNames.standard(extras: ["api.example.com", "10.1.2.3", "[fd00::5]"], hostname: "Node-1")
        let serving = try ca.issueServingCertificate(names: names, now: now)
        let parsed = try Certificate(pemEncoded: serving.certificatePEM)

        #expect(parsed.issuer == ca.certificate.subject)
        #expect(ca.hasIssued(parsed))
        #expect(ca.certificate.publicKey.isValidSignature(parsed.signature, for: parsed))
        #expect(try parsed.extensions.basicConstraints == .notCertificateAuthority)
        #expect(try parsed.extensions.keyUsage?.digitalSignature == true)
        #expect(try parsed.extensions.extendedKeyUsage?.contains(.serverAuth) == true)
        #expect(
            try parsed.extensions.authorityKeyIdentifier?.keyIdentifier
                == ca.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        )
        #expect(try parsed.extensions.subjectKeyIdentifier != nil)

        let sans = Array(try #require(try parsed.extensions.subjectAlternativeNames))
        #expect(sans.contains(.dnsName("localhost")))
        #expect(sans.contains(.dnsName("node-1")))
        #expect(sans.contains(.dnsName("api.example.com")))
        #expect(sans.contains(.ipAddress(.init(contentBytes: [127, 0, 0, 1]))))
        #expect(sans.contains(.ipAddress(.init(contentBytes: ([0] + Array(repeating: 0, count: 14) + [1])[...]))))
        #expect(sans.contains(.ipAddress(.init(contentBytes: [10, 1, 2, 3]))))
        #expect(serving.names.ipAddresses == ["10.1.2.3", "127.0.0.1", "::1", "fd00::5"])
        #expect(serving.names.dnsNames == ["api.example.com", "localhost", "node-1"])

        let years = parsed.notValidAfter.timeIntervalSince(now) / (365 * 24 * 3600)
        #expect(abs(years - 1) < 0.01)

        let loaded = try ServingCertificate(
            certificatePEM: serving.certificatePEM,
            privateKeyPEM: serving.privateKeyPEM
        )
        #expect(loaded.certificate == serving.certificate)
        #expect(loaded.names == serving.names)
    }

    @Test(
        arguments: [("localhost", nil), (nil, "127.0.0.1"), (nil, "::1"), ("api.example.com", nil)]
            as [(String?, String?)]
    )
    func servingCertificateVerifiesAgainstTheCA(hostname: String?, ip: String?) async throws {
        let ca = try CertificateAuthority.create(now: now)
        let serving = try ca.issueServingCertificate(
            names: try ServingNames.standard(extras: ["api.example.com"], hostname: nil),
            now: now
        )
        var verifier = Verifier(rootCertificates: CertificateStore([ca.certificate])) {
            RFC5280Policy()
            ServerIdentityPolicy(serverHostname: hostname, serverIP: ip)
        }
        let result = await verifier.validate(leaf: serving.certificate, intermediates: CertificateStore())
        guard case .validCertificate(let chain) = result else {
            Issue.record("serving certificate did not verify: \(result)")
            return
        }
        #expect(chain.last == ca.certificate)
    }

    @Test func servingCertificateFailsForOtherNamesAndOtherCAs() async throws {
        let ca = try CertificateAuthority.create(now: now)
        let serving = try ca.issueServingCertificate(names: try ServingNames.standard(extras: [], hostname: nil))

        var wrongName = Verifier(rootCertificates: CertificateStore([ca.certificate])) {
            RFC5280Policy()
            ServerIdentityPolicy(serverHostname: "evil.example.com", serverIP: nil)
        }
        guard case .couldNotValidate = await wrongName.validate(leaf: serving.certificate, intermediates: .init())
        else {
            Issue.record("a serving certificate verified for a name it does not carry")
            return
        }

        let other = try CertificateAuthority.create(now: now)
        var wrongCA = Verifier(rootCertificates: CertificateStore([other.certificate])) {
            RFC5280Policy()
        }
        guard case .couldNotValidate = await wrongCA.validate(leaf: serving.certificate, intermediates: .init()) else {
            Issue.record("a serving certificate verified against a foreign CA")
            return
        }
        #expect(!other.hasIssued(serving.certificate))
    }

    @Test func servingNamesAreNormalisedAndValidated() throws {
        let names = try ServingNames([
            "Example.COM.", " 192.168.0.1 ", "[::1]", "0:0:0:0:0:0:0:1", "*.apps.example.com", "",
        ])
        #expect(names.dnsNames == ["*.apps.example.com", "example.com"])
        #expect(names.ipAddresses == ["192.168.0.1", "::1"])
        #expect(names.description == "DNS:*.apps.example.com, DNS:example.com, IP:192.168.0.1, IP:::1")

        for bad in ["under_score", "-lead.example", "a..b", "has space", "*.com", String(repeating: "a", count: 64)] {
            let error = try #require(throws: SecurityError.self) { try ServingNames([bad]) }
            #expect(error.code == .invalidName)
            #expect(error.message.contains(bad))
        }
        // An unusable host name is left out rather than failing.
        let standard = try ServingNames.standard(extras: [], hostname: "bad_host")
        #expect(standard == .loopback)
    }

    @Test func wildcardListenAddsInterfaceAddressesButNotTheWildcard() throws {
        let names = try ControllerIdentity.requiredNames(extras: [], listenHost: "0.0.0.0", hostname: nil)
        #expect(!names.ipAddresses.contains("0.0.0.0"))
        #expect(names.isSuperset(of: .loopback))
        #expect(Set(names.ipAddresses).isSuperset(of: ControllerIdentity.interfaceAddresses()))
        let specific = try ControllerIdentity.requiredNames(
            extras: ["a.example"],
            listenHost: "10.9.8.7",
            hostname: nil
        )
        #expect(specific.ipAddresses.contains("10.9.8.7"))
        #expect(specific.dnsNames.contains("a.example"))
    }
}

@Suite(.timeLimit(.minutes(5))) struct ControllerIdentityTests {
    @Test func firstStartCreatesEverythingAndLaterStartsLoadItUnchanged() throws {
        let temporary = try PKITemporaryDirectory()
        defer { temporary.cleanup() }
        let directory = temporary.url.appendingPathComponent("data/steady", isDirectory: true)

        let first = try ControllerIdentity.loadOrCreate(
            dataDirectory: directory,
            serverName: [],
            listenHost: "127.0.0.1"
        )
        #expect(first.changes.count == 3)
        #expect(fileMode(of: directory) == 0o700)
        for name in ["ca.key", "server.key", "admin.token"] {
            #expect(fileMode(of: directory.appendingPathComponent(name)) == 0o600, "\(name)")
        }
        for name in ["ca.crt", "server.crt"] {
            #expect(fileMode(of: directory.appendingPathComponent(name)) == 0o644, "\(name)")
        }
        #expect(first.adminToken.count == 64)
        #expect(first.adminToken.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        let tokenFile = try String(contentsOf: directory.appendingPathComponent("admin.token"), encoding: .utf8)
        #expect(tokenFile == first.adminToken + "\n")
        #expect(first.caCertificatePEM == (try String(contentsOf: first.url(for: "ca.crt"), encoding: .utf8)))
        #expect(first.caHash == sha256Hex(ofPEM: first.caCertificatePEM))
        #expect(first.tlsConfiguration.minimumTLSVersion == .tlsv12)
        #expect(first.tlsConfiguration.certificateChain.count == 1)
        #expect(first.adminTokenDigest.matches(first.adminToken))
        #expect(!first.description.contains(first.adminToken))
        #expect(first.changes.allSatisfy { !$0.contains(first.adminToken) })

        let second = try ControllerIdentity.loadOrCreate(
            dataDirectory: directory,
            serverName: [],
            listenHost: "127.0.0.1"
        )
        #expect(second.changes.isEmpty)
        #expect(second.caHash == first.caHash)
        #expect(second.caCertificatePEM == first.caCertificatePEM)
        #expect(second.adminToken == first.adminToken)
        #expect(second.servingCertificate.certificatePEM == first.servingCertificate.certificatePEM)
        #expect(second.servingCertificate.privateKeyPEM == first.servingCertificate.privateKeyPEM)
    }

    @Test func aNewNameReissuesOnlyTheServingCertificate() throws {
        let temporary = try PKITemporaryDirectory()
        defer { temporary.cleanup() }
        let first = try ControllerIdentity.loadOrCreate(
            dataDirectory: temporary.url,
            serverName: [],
            listenHost: "localhost"
        )
        let second = try ControllerIdentity.loadOrCreate(
            dataDirectory: temporary.url,
            serverName: ["steady.example.com"],
            listenHost: "10.20.30.40"
        )
        #expect(second.changes.count == 1)
        #expect(second.changes.first?.contains("IP:10.20.30.40") == true)
        #expect(second.changes.first?.contains("DNS:steady.example.com") == true)
        #expect(second.caHash == first.caHash)
        #expect(second.adminToken == first.adminToken)
        #expect(second.servingCertificate.certificatePEM != first.servingCertificate.certificatePEM)
        #expect(second.servingCertificate.names.ipAddresses.contains("10.20.30.40"))
        #expect(second.certificateAuthority.hasIssued(second.servingCertificate.certificate))

        // Asking for fewer names than the certificate has keeps it.
        let third = try ControllerIdentity.loadOrCreate(
            dataDirectory: temporary.url,
            serverName: [],
            listenHost: "10.20.30.40"
        )
        #expect(third.changes.isEmpty)
        #expect(third.servingCertificate.certificatePEM == second.servingCertificate.certificatePEM)
    }

    @Test func aServingCertificateNearExpiryOrFromAnotherCAIsReissued() throws {
        let temporary = try PKITemporaryDirectory()
        defer { temporary.cleanup() }
        let first = try ControllerIdentity.loadOrCreate(dataDirectory: temporary.url, listenHost: "127.0.0.1")
        let later = Date().addingTimeInterval(340 * 24 * 3600)
        let renewed = try ControllerIdentity.loadOrCreate(
            dataDirectory: temporary.url,
            listenHost: "127.0.0.1",
            now: later
        )
        #expect(renewed.changes.count == 1)
        #expect(renewed.caHash == first.caHash)
        #expect(
            renewed.servingCertificate.certificate.notValidAfter > first.servingCertificate.certificate.notValidAfter
        )

        let foreign = try CertificateAuthority.create()
        let stray = try foreign.issueServingCertificate(names: .loopback)
        try stray.certificatePEM.write(to: first.url(for: "server.crt"), atomically: true, encoding: .utf8)
        try stray.privateKeyPEM.write(to: first.url(for: "server.key"), atomically: true, encoding: .utf8)
        let fixed = try ControllerIdentity.loadOrCreate(dataDirectory: temporary.url, listenHost: "127.0.0.1")
        #expect(fixed.changes.count == 1)
        #expect(fixed.changes.first?.contains("not issued by the current CA") == true)
        #expect(fixed.certificateAuthority.hasIssued(fixed.servingCertificate.certificate))
        #expect(fileMode(of: fixed.url(for: "server.key")) == 0o600)
    }

    @Test func aCAWithoutItsKeyIsAnErrorNotANewCA() throws {
        let temporary = try PKITemporaryDirectory()
        defer { temporary.cleanup() }
        let first = try ControllerIdentity.loadOrCreate(dataDirectory: temporary.url)
        try FileManager.default.removeItem(at: first.url(for: "ca.key"))
        let error = try #require(throws: SecurityError.self) {
            try ControllerIdentity.loadOrCreate(dataDirectory: temporary.url)
        }
        #expect(error.code == .missingFile)
        #expect(error.message.contains(first.url(for: "ca.key").path))
        #expect(error.path == first.url(for: "ca.key").path)
    }

    @Test func looseSecretFilePermissionsAreTightened() throws {
        let temporary = try PKITemporaryDirectory()
        defer { temporary.cleanup() }
        let first = try ControllerIdentity.loadOrCreate(dataDirectory: temporary.url)
        for name in ["ca.key", "server.key", "admin.token"] {
            #expect(chmod(first.url(for: name).path, 0o644) == 0)
        }
        let second = try ControllerIdentity.loadOrCreate(dataDirectory: temporary.url)
        #expect(second.caHash == first.caHash)
        for name in ["ca.key", "server.key", "admin.token"] {
            #expect(fileMode(of: first.url(for: name)) == 0o600, "\(name)")
        }
    }

    @Test func aMalformedTokenFileIsReportedWithoutItsContents() throws {
        let temporary = try PKITemporaryDirectory()
        defer { temporary.cleanup() }
        let first = try ControllerIdentity.loadOrCreate(dataDirectory: temporary.url)
        try "short secret\n".write(to: first.url(for: "admin.token"), atomically: true, encoding: .utf8)
        let error = try #require(throws: SecurityError.self) {
            try ControllerIdentity.loadOrCreate(dataDirectory: temporary.url)
        }
        #expect(error.code == .invalidToken)
        #expect(error.message.contains(first.url(for: "admin.token").path))
        #expect(!error.description.contains("short secret"))
    }

    @Test func aDataDirectoryThatIsAFileIsAnError() throws {
        let temporary = try PKITemporaryDirectory()
        defer { temporary.cleanup() }
        let file = temporary.url.appendingPathComponent("plain")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        let error = try #require(throws: SecurityError.self) {
            try ControllerIdentity.loadOrCreate(dataDirectory: file)
        }
        #expect(error.code == .fileSystem)
        #expect(error.message.contains(file.path))
    }

    @Test(.enabled(if: executablePath("openssl") != nil, "openssl is not installed"))
    func opensslAcceptsTheChain() throws {
        let temporary = try PKITemporaryDirectory()
        defer { temporary.cleanup() }
        let identity = try ControllerIdentity.loadOrCreate(
            dataDirectory: temporary.url,
            serverName: ["steady.example.com"],
            listenHost: "127.0.0.1"
        )
        let openssl = try #require(executablePath("openssl"))
        let checks: [[String]] = [
            [],
            ["-purpose", "sslserver", "-verify_hostname", "localhost"],
            ["-purpose", "sslserver", "-verify_hostname", "steady.example.com"],
            ["-purpose", "sslserver", "-verify_ip", "127.0.0.1"],
            ["-purpose", "sslserver", "-verify_ip", "::1"],
            ["-x509_strict"],
        ]
        for extra in checks {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: openssl)
            process.arguments =
                ["verify"] + extra + [
                    "-CAfile", identity.url(for: "ca.crt").path, identity.url(for: "server.crt").path,
                ]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "openssl verify \(extra): \(text)")
            #expect(text.contains(": OK"), "openssl verify \(extra): \(text)")
        }
    }
}

@Suite(.timeLimit(.minutes(5))) struct CredentialsTests {
    @Test func digestIsSHA256Hex() {
        #expect(Credentials.digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(TokenDigest(token: "abc").hex == Credentials.digest("abc"))
    }

    @Test func tokensAreRandomHex() {
        let first = Credentials.makeToken()
        let second = Credentials.makeToken(bytes: 32)
        #expect(first.count == 64)
        #expect(first.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(first != second)
        #expect(Credentials.makeToken(bytes: 4).count == 8)
    }

    @Test func verificationComparesDigests() {
        let token = Credentials.makeToken()
        let digest = Credentials.digest(token)
        #expect(Credentials.verify(token: token, digest: digest))
        #expect(Credentials.verify(token: token, digest: digest.uppercased()))
        #expect(!Credentials.verify(token: token + "x", digest: digest))
        #expect(!Credentials.verify(token: token, digest: String(digest.dropLast())))
        #expect(Credentials.constantTimeEquals("abc", "abc"))
        #expect(!Credentials.constantTimeEquals("abc", "abd"))
        #expect(!Credentials.constantTimeEquals("abc", "abcd"))

        let stored = TokenDigest(hex: digest.uppercased())
        #expect(stored == TokenDigest(token: token))
        #expect(stored?.matches(token) == true)
        #expect(stored?.matches("nope") == false)
        #expect(TokenDigest(hex: "xyz") == nil)
        #expect(TokenDigest(hex: String(repeating: "g", count: 64)) == nil)
        #expect(!(TokenDigest(token: token).description.contains(token)))
    }

    @Test func bearerTokensAreParsedFromAuthorizationHeaders() {
        #expect(Credentials.bearerToken(fromAuthorization: "Bearer abc123") == "abc123")
        #expect(Credentials.bearerToken(fromAuthorization: "bearer   abc123  ") == "abc123")
        #expect(Credentials.bearerToken(fromAuthorization: "Basic dXNlcjpwYXNz") == nil)
        #expect(Credentials.bearerToken(fromAuthorization: "Bearer") == nil)
        #expect(Credentials.bearerToken(fromAuthorization: "Bearer ") == nil)
    }
}

/// Whether a certificate's public key is P-256, checked through the PEM discriminator-free description.
private enum P256PublicKeyCheck {
    static func isP256(_ key: Certificate.PublicKey) -> Bool {
        String(describing: key).contains("P256")
    }
}
