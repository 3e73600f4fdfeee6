import Foundation
import Mail
import NIOCore
import NIOPosix
import SteadyTesting
import TLSSupport
import Testing

/// Deliveries to a real SMTP server (aiosmtpd) on loopback: STARTTLS, AUTH, refusals, and what arrives.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: LoopbackSMTPServer.isAvailable, "python3 with aiosmtpd"))
struct SMTPServerTests {
    static let password = "s3cret pa$$ word"

    let message = MailMessage(
        from: "alerts@example.com", to: ["ops@example.com", "sec@example.com"],
        subject: "Trivy: 3 critical findings in alpine:3.19 — ünïcode ✓",
        body: "Findings:\n.leading dot line\n..two dots\nCVE-2026-0001 in libcrypto ✓\n.\nend\n")

    func configuration(
        _ server: LoopbackSMTPServer, startTLS: SMTPConfiguration.StartTLS = .required,
        mechanism: SMTPConfiguration.AuthMechanism? = nil, password: String = password
    ) throws -> SMTPConfiguration {
        let tls = try server.certificateAuthority.map { try makeClientTLSConfiguration(caPEM: $0.caCertificatePEM) }
        return SMTPConfiguration(
            host: "127.0.0.1", port: server.port, startTLS: startTLS,
            credentials: SMTPCredentials(username: "alerts", password: password), authMechanism: mechanism,
            tls: tls ?? SMTPConfiguration.defaultTLS, timeout: .seconds(30))
    }

    @Test(arguments: [SMTPConfiguration.AuthMechanism.plain, .login])
    func deliversOverStartTLSWithAuthentication(mechanism: SMTPConfiguration.AuthMechanism) async throws {
        let server = try await LoopbackSMTPServer.start(tls: true, user: "alerts", password: Self.password)
        defer { server.stop() }
        let reply = try await SMTPClient(configuration: configuration(server, mechanism: mechanism)).send(message)
        #expect(reply.code == 250)
        let received = try #require(try server.received().first)
        #expect(received.tls)
        #expect(received.authenticated)
        #expect(received.mail_from == "alerts@example.com")
        #expect(received.rcpt_tos == ["ops@example.com", "sec@example.com"])
        #expect(received.subject == message.subject)
        #expect(received.body.replacingOccurrences(of: "\r\n", with: "\n") == message.body)
        #expect(received.content_type == "text/plain")
        #expect(received.charset == "utf-8")
        #expect(received.message_id == "<\(message.messageID)>")
        #expect(received.date.hasSuffix("+0000"))
    }

    @Test func plainASCIIBodyKeepsItsDotLinesAfterStuffing() async throws {
        let server = try await LoopbackSMTPServer.start(tls: true, user: "alerts", password: Self.password)
        defer { server.stop() }
        let ascii = MailMessage(
            from: "alerts@example.com", to: ["ops@example.com"], subject: "dots",
            body: ".\n..\n.hidden\nlast line")
        try await SMTPClient(configuration: configuration(server)).send(ascii)
        let received = try #require(try server.received().first)
        #expect(received.raw.contains("Content-Transfer-Encoding: 7bit"))
        #expect(received.body.replacingOccurrences(of: "\r\n", with: "\n") == ascii.body + "\n")
    }

    @Test func wrongPasswordNamesTheStepAndCodeButNeverThePassword() async throws {
        let server = try await LoopbackSMTPServer.start(tls: true, user: "alerts", password: Self.password)
        defer { server.stop() }
        for mechanism in SMTPConfiguration.AuthMechanism.allCases {
            let wrong = "wr0ng-\(mechanism.rawValue)"
            let client = SMTPClient(configuration: try configuration(server, mechanism: mechanism, password: wrong))
            let error = try await #require(throws: SMTPError.self) { try await client.send(message) }
            #expect(error.step == .authentication)
            #expect(error.kind == .rejected)
            #expect(error.code == 535)
            #expect(error.description.contains("SMTP AUTH failed at 127.0.0.1:\(server.port): the server answered 535"))
            for secret in [wrong, Data(wrong.utf8).base64EncodedString()] {
                #expect(!error.description.contains(secret))
            }
        }
        #expect(try server.received().isEmpty)
    }

    @Test func untrustedCertificateFailsTheHandshake() async throws {
        let server = try await LoopbackSMTPServer.start(tls: true, user: "alerts", password: Self.password)
        defer { server.stop() }
        var settings = try configuration(server)
        settings.tls = try makeClientTLSConfiguration(caPEM: FixtureCA.pem)
        let error = try await #require(throws: SMTPError.self) {
            try await SMTPClient(configuration: settings).send(message)
        }
        #expect(error.step == .tlsHandshake)
        #expect(error.kind == .connection)
        #expect(try server.received().isEmpty)
    }

    @Test func credentialsAreNeverSentWithoutTLS() async throws {
        let server = try await LoopbackSMTPServer.start(tls: false, user: "alerts", password: Self.password)
        defer { server.stop() }
        for policy in [SMTPConfiguration.StartTLS.opportunistic, .disabled] {
            let client = SMTPClient(configuration: try configuration(server, startTLS: policy))
            let error = try await #require(throws: SMTPError.self) { try await client.send(message) }
            #expect(error.step == .authentication)
            #expect(error.kind == .refused)
            #expect(error.message.hasPrefix("refusing to send credentials without TLS"))
        }
        // Allowed explicitly, on loopback, for tests.
        var allowed = try configuration(server, startTLS: .opportunistic)
        allowed.allowsCredentialsWithoutTLSOnLoopback = true
        try await SMTPClient(configuration: allowed).send(message)
        let received = try #require(try server.received().first)
        #expect(!received.tls)
        #expect(received.authenticated)
    }

    @Test func requiredStartTLSFailsWhenTheServerDoesNotOfferIt() async throws {
        let server = try await LoopbackSMTPServer.start(tls: false)
        defer { server.stop() }
        var settings = try configuration(server)
        settings.credentials = nil
        let error = try await #require(throws: SMTPError.self) {
            try await SMTPClient(configuration: settings).send(message)
        }
        #expect(error.step == .startTLS)
        #expect(error.kind == .unsupported)
        settings.startTLS = .opportunistic
        try await SMTPClient(configuration: settings).send(message)
        #expect(try server.received().count == 1)
    }

    @Test func plaintextAfterTheAnswerToStartTLSIsRefused() async throws {
        let server = try await LoopbackSMTPServer.start(tls: false, injecting: true)
        defer { server.stop() }
        let error = try await #require(throws: SMTPError.self) {
            try await SMTPClient(configuration: configuration(server)).send(message)
        }
        #expect(error.step == .startTLS)
        #expect(error.message.contains("possible plaintext injection"))
    }

    @Test func refusedRecipientNamesTheAddressAndCode() async throws {
        let server = try await LoopbackSMTPServer.start(
            tls: true, user: "alerts", password: Self.password, reject: "sec@example.com")
        defer { server.stop() }
        let error = try await #require(throws: SMTPError.self) {
            try await SMTPClient(configuration: configuration(server)).send(message)
        }
        #expect(error.step == .rcptTo("sec@example.com"))
        #expect(error.code == 550)
        #expect(error.description.contains("SMTP RCPT TO <sec@example.com> failed"))
        #expect(error.description.contains("no such user here"))
    }
}

/// A server that accepts connections and never says a word: the client must give up at its timeout.
@Suite(.timeLimit(.minutes(5))) struct SMTPTimeoutTests {
    @Test func silentServerTimesOutAtTheGreeting() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let port = try #require(listener.localAddress?.port)
        let settings = SMTPConfiguration(host: "127.0.0.1", port: port, timeout: .milliseconds(200))
        let message = MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "s", body: "b")
        let error = try await #require(throws: SMTPError.self) {
            try await SMTPClient(configuration: settings).send(message)
        }
        #expect(error.step == .greeting)
        #expect(error.kind == .timeout)
        #expect(error.description == "SMTP greeting failed at 127.0.0.1:\(port): timed out after 0.2 seconds")
    }
}
