import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Sends mail through one SMTP server: EHLO, STARTTLS (upgraded in place), AUTH PLAIN or LOGIN, MAIL FROM,
/// RCPT TO, DATA, QUIT, within one timeout.
///
/// Credentials are never sent without TLS (unless explicitly allowed on loopback, for tests), and the password
/// never appears in an error or a log line.
///
/// ```swift
/// let client = SMTPClient(configuration: SMTPConfiguration(host: "smtp.example.com", credentials: credentials))
/// try await client.send(MailMessage(from: "alerts@example.com", to: ["ops@example.com"], subject: s, body: b))
/// ```
public struct SMTPClient: Sendable {
    public let configuration: SMTPConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger

    public init(
        configuration: SMTPConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "steady.mail")
    ) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
    }

    /// Delivers `message` to every address in its `to`.
    ///
    /// - Returns: The server's reply to the message (`250 OK: queued as …`).
    /// - Throws: ``SMTPError`` naming the step, and the server's reply code when it refused.
    @discardableResult
    public func send(_ message: MailMessage) async throws(SMTPError) -> SMTPReply {
        let configuration = configuration
        let redactor = SMTPRedactor(credentials: configuration.credentials)
        let start = ContinuousClock.now
        let timeout = TimeAmount.nanoseconds(Self.nanoseconds(configuration.timeout))
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .connect(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            var timedOut = false
            if case ChannelError.connectTimeout = error { timedOut = true }
            throw SMTPError(
                step: .connect, kind: timedOut ? .timeout : .connection, server: configuration.server,
                message: timedOut
                    ? "timed out after \(configuration.timeout) while connecting"
                    : "could not connect: \(error)")
        }
        // The timer closes the connection, which ends whatever read or write the session is waiting on.
        let expired = SMTPTimeoutFlag()
        let remaining = configuration.timeout - (ContinuousClock.now - start)
        let timer = channel.channel.eventLoop.scheduleTask(in: .nanoseconds(max(0, Self.nanoseconds(remaining)))) {
            expired.set()
            channel.channel.close(promise: nil)
        }
        defer { timer.cancel() }
        var failure: SMTPError
        do {
            return try await channel.executeThenClose { inbound, outbound in
                var session = SMTPSession(
                    configuration: configuration, channel: channel.channel, inbound: inbound.makeAsyncIterator(),
                    outbound: outbound, redactor: redactor, logger: logger)
                return try await session.deliver(message)
            }
        } catch let error as SMTPError {
            failure = error
        } catch {
            failure = SMTPError(
                step: .quit, kind: .connection, server: configuration.server,
                message: redactor.scrub("\(error)"))
        }
        if expired.isSet {
            failure.kind = .timeout
            failure.code = nil
            failure.message = "timed out after \(configuration.timeout)"
        }
        logger.debug(
            "SMTP delivery failed",
            metadata: ["server": "\(configuration.server)", "step": "\(failure.step)", "error": "\(failure.message)"])
        throw failure
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Set once by the timeout timer on the event loop, read by the sending task.
final class SMTPTimeoutFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
