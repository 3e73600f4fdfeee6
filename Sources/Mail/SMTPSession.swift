import Foundation
import Logging
import NIOCore
import NIOSSL

/// One SMTP conversation over a connected channel, step by step.
struct SMTPSession {
    let configuration: SMTPConfiguration
    let channel: any Channel
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let redactor: SMTPRedactor
    let logger: Logger
    private var parser = SMTPReplyParser()
    private var isEncrypted = false
    private var isHandshaking = false

    init(
        configuration: SMTPConfiguration, channel: any Channel,
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, redactor: SMTPRedactor, logger: Logger
    ) {
        self.configuration = configuration
        self.channel = channel
        self.inbound = inbound
        self.outbound = outbound
        self.redactor = redactor
        self.logger = logger
    }

    mutating func deliver(_ message: MailMessage) async throws(SMTPError) -> SMTPReply {
        try expect(await read(.greeting), 220, at: .greeting)
        var capabilities = try await hello()
        if configuration.startTLS != .disabled {
            if capabilities["STARTTLS"] != nil {
                try expect(await command("STARTTLS", at: .startTLS), 220, at: .startTLS)
                guard !parser.hasPendingInput else {
                    throw failure(
                        .startTLS, .connection,
                        "the server sent more after its answer to STARTTLS; refusing it as possible plaintext injection")
                }
                try await startTLS()
                capabilities = try await hello()
            } else if configuration.startTLS == .required {
                throw failure(
                    .startTLS, .unsupported,
                    "the server does not offer STARTTLS, and startTLS is required (set opportunistic or disabled only "
                        + "for a server on a trusted network)")
            }
        }
        if let credentials = configuration.credentials {
            try await authenticate(credentials, offered: capabilities["AUTH"] ?? [])
        }
        try expect(await command("MAIL FROM:<\(message.from)>", at: .mailFrom), 250, at: .mailFrom)
        for address in message.to {
            let step = SMTPError.Step.rcptTo(address)
            let reply = try await command("RCPT TO:<\(address)>", at: step)
            guard reply.code == 250 || reply.code == 251 else { throw rejected(step, reply) }
        }
        try expect(await command("DATA", at: .data), 354, at: .data)
        try await write(MailMessage.dotStuffed(message.encoded()), at: .message)
        let accepted = try await read(.message)
        try expect(accepted, 250, at: .message)
        // The message is delivered; a failed QUIT changes nothing.
        _ = try? await command("QUIT", at: .quit)
        return accepted
    }

    /// EHLO, and the extensions the server announced.
    private mutating func hello() async throws(SMTPError) -> [String: [String]] {
        let reply = try await command("EHLO \(configuration.clientName)", at: isHandshaking ? .tlsHandshake : .ehlo)
        isHandshaking = false
        try expect(reply, 250, at: .ehlo)
        return reply.extensions
    }

    /// Puts TLS under the connection, in place: the next bytes written are the TLS handshake.
    private mutating func startTLS() async throws(SMTPError) {
        let tls = configuration.tls
        let host = configuration.host
        let isAddress = (try? SocketAddress(ipAddress: host.trimmingCharacters(in: ["[", "]"]), port: 0)) != nil
        do {
            let context = try NIOSSLContext(configuration: tls)
            let channel = channel
            try await channel.eventLoop.submit {
                // An IP address is verified against the certificate's IP names and cannot be sent as SNI.
                let handler = try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            }.get()
        } catch {
            throw failure(.tlsHandshake, .connection, "could not start TLS: \(error)")
        }
        isEncrypted = true
        isHandshaking = true
    }

    private mutating func authenticate(_ credentials: SMTPCredentials, offered: [String]) async throws(SMTPError) {
        guard isEncrypted || (configuration.allowsCredentialsWithoutTLSOnLoopback && configuration.isLoopback) else {
            throw failure(
                .authentication, .refused,
                "refusing to send credentials without TLS: "
                    + (configuration.startTLS == .disabled
                        ? "startTLS is disabled" : "the server does not offer STARTTLS"))
        }
        let offered = Set(offered.map { $0.uppercased() })
        let mechanism: SMTPConfiguration.AuthMechanism
        if let chosen = configuration.authMechanism {
            guard offered.contains(chosen.rawValue) else {
                throw failure(
                    .authentication, .unsupported,
                    "the server does not offer AUTH \(chosen.rawValue); it offers: \(Self.list(offered))")
            }
            mechanism = chosen
        } else if offered.contains("PLAIN") {
            mechanism = .plain
        } else if offered.contains("LOGIN") {
            mechanism = .login
        } else {
            throw failure(
                .authentication, .unsupported,
                "the server offers no AUTH mechanism steady supports (PLAIN, LOGIN); it offers: \(Self.list(offered))")
        }
        let user = Data(credentials.username.utf8).base64EncodedString()
        let password = Data(credentials.password.utf8).base64EncodedString()
        switch mechanism {
        case .plain:
            let token = Data([0] + Array(credentials.username.utf8) + [0] + Array(credentials.password.utf8))
            let reply = try await command(
                "AUTH PLAIN \(token.base64EncodedString())", logged: "AUTH PLAIN <redacted>", at: .authentication)
            try expect(reply, 235, at: .authentication)
        case .login:
            try expect(await command("AUTH LOGIN", at: .authentication), 334, at: .authentication)
            try expect(await command(user, logged: "<user name>", at: .authentication), 334, at: .authentication)
            try expect(await command(password, logged: "<redacted>", at: .authentication), 235, at: .authentication)
        }
    }

    private static func list(_ names: Set<String>) -> String {
        names.isEmpty ? "none" : names.sorted().joined(separator: ", ")
    }

    // MARK: - Lines on the wire

    private mutating func command(
        _ line: String, logged: String? = nil, at step: SMTPError.Step
    ) async throws(SMTPError) -> SMTPReply {
        logger.trace("SMTP command", metadata: ["command": "\(logged ?? line)"])
        try await write(Array((line + "\r\n").utf8), at: step)
        return try await read(step)
    }

    private func write(_ bytes: [UInt8], at step: SMTPError.Step) async throws(SMTPError) {
        do {
            try await outbound.write(ByteBuffer(bytes: bytes))
        } catch {
            throw failure(step, .connection, "could not send: \(error)")
        }
    }

    private mutating func read(_ step: SMTPError.Step) async throws(SMTPError) -> SMTPReply {
        while true {
            do {
                if let reply = try parser.next() {
                    logger.trace("SMTP reply", metadata: ["code": "\(reply.code)"])
                    return reply
                }
            } catch {
                throw failure(step, .connection, "the server's answer is not SMTP: \(error)")
            }
            let buffer: ByteBuffer?
            do {
                buffer = try await inbound.next()
            } catch {
                let where_ = isHandshaking ? SMTPError.Step.tlsHandshake : step
                throw failure(where_, .connection, (isHandshaking ? "TLS handshake failed: " : "") + "\(error)")
            }
            guard let buffer else {
                throw failure(isHandshaking ? .tlsHandshake : step, .connection, "the server closed the connection")
            }
            parser.feed(buffer.readableBytesView)
        }
    }

    private func expect(_ reply: SMTPReply, _ code: Int, at step: SMTPError.Step) throws(SMTPError) {
        guard reply.code == code else { throw rejected(step, reply) }
    }

    private func rejected(_ step: SMTPError.Step, _ reply: SMTPReply) -> SMTPError {
        var error = failure(step, .rejected, "the server answered \(reply)")
        error.code = reply.code
        return error
    }

    private func failure(_ step: SMTPError.Step, _ kind: SMTPError.Kind, _ message: String) -> SMTPError {
        SMTPError(step: step, kind: kind, server: configuration.server, message: redactor.scrub(message))
    }
}
