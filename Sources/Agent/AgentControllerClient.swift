import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Resources
import TLSSupport

/// The agent's requests to the controller: CA discovery and enrolment over a shared `HTTPClient`, and the agent
/// stream (slices down, reports up) on a connection of its own. Everything but CA discovery verifies the controller
/// against the pinned CA only.
public struct AgentControllerClient: Sendable {
    /// The controller's base URL, `https://HOST:PORT`, without a trailing slash.
    public let controllerURL: String
    let http: HTTPClient
    let tlsConfiguration: TLSConfiguration
    /// TLS for the agent stream: the same trust, offering only the stream's ALPN protocol.
    let streamTLSContext: NIOSSLContext
    static let tlsShutdownTimeout = TimeAmount.milliseconds(500)
    /// Agents in one process trusting the same CA share one configuration (and so one connection pool).
    static let tlsConfigurations = TLSConfigurationCache()

    /// How long a plain request (enrolment, report) or the head of the slice stream may take.
    public var requestTimeout: Duration

    /// Creates a client that trusts only `caPEM`.
    public init(controllerURL: String, caPEM: String, http: HTTPClient, requestTimeout: Duration = .seconds(15))
        throws(AgentError)
    {
        self.controllerURL = Self.trimmed(controllerURL)
        self.http = http
        self.requestTimeout = requestTimeout
        do {
            tlsConfiguration = try Self.tlsConfigurations.configuration(trusting: caPEM)
            streamTLSContext = try Self.tlsConfigurations.streamContext(trusting: caPEM)
        } catch {
            throw AgentError(
                code: .invalidConfiguration, message: "the controller's CA certificate is not usable",
                underlying: error)
        }
    }

    // MARK: Discovery

    /// Fetches the controller's CA without verifying the connection, and accepts it only when its hash is
    /// `expectedHash` (the join token's). Returns the PEM of that one certificate, so that nothing else the
    /// unverified answer held is ever trusted.
    ///
    /// This is the only unverified request, as kubeadm's cluster-info discovery: the hash makes up for it.
    public static func discoverCA(
        controllerURL: String, expectedHash: String, http: HTTPClient, timeout: Duration = .seconds(15)
    ) async throws(AgentError) -> String {
        var request = HTTPClientRequest(url: trimmed(controllerURL) + AgentProtocol.caPath)
        var unverified = TLSConfiguration.makeClientConfiguration()
        unverified.minimumTLSVersion = .tlsv12
        unverified.certificateVerification = .none
        unverified.shutdownTimeout = tlsShutdownTimeout
        request.tlsConfiguration = unverified
        let (status, body) = try await send(request, http: http, timeout: timeout, limit: 1024 * 1024)
        guard status == .ok else {
            throw unexpected(status, body, "fetching the CA certificate from \(controllerURL)")
        }
        let pem = String(decoding: body, as: UTF8.self)
        let der: [UInt8]
        do {
            der = try firstCertificateDER(pem: pem)
        } catch {
            throw AgentError(
                code: .unexpectedResponse,
                message: "\(controllerURL)\(AgentProtocol.caPath) did not answer with a PEM certificate; "
                    + "is --controller a steady controller?",
                underlying: error)
        }
        guard caHashMatches(pem: pem, expected: expectedHash) else {
            throw AgentError(
                code: .caMismatch,
                message: "the controller's CA \(caHash(der: der)) does not match the join token's "
                    + "\(expectedHash.lowercased()); check --controller and that the token was created by this "
                    + "controller")
        }
        return PEM.encode(der: der, label: "CERTIFICATE")
    }

    // MARK: Enrolment

    /// Trades a join token for a credential.
    ///
    /// - Throws: ``AgentError`` with code ``AgentError/Code/enrolmentRefused`` (401),
    ///   ``AgentError/Code/nameConflict`` (409) or ``AgentError/Code/invalidConfiguration`` (400, 422), each with
    ///   the controller's message.
    public func enroll(token: AgentJoinToken, _ enrollment: EnrollmentRequest) async throws(AgentError)
        -> EnrollmentResponse
    {
        var request = makeRequest(AgentProtocol.enrollPath, method: .POST, bearer: token.bearerToken)
        request.body = .bytes(ByteBuffer(bytes: try encode(enrollment)))
        let (status, body) = try await Self.send(request, http: http, timeout: requestTimeout, limit: 64 * 1024)
        switch status {
        case .ok, .created:
            return try Self.enrollmentResponse(body, answering: "enrolment")
        case .unauthorized, .forbidden:
            throw AgentError(
                code: .enrolmentRefused,
                message: "the controller refused the join token: \(Self.statusMessage(body) ?? "\(status)"); "
                    + "create a new one with `steady token create`",
                httpStatus: Int(status.code))
        case .conflict:
            throw AgentError(
                code: .nameConflict,
                message: "cannot enrol as \(enrollment.name): \(Self.statusMessage(body) ?? "the name is taken"); "
                    + "choose another --name or stop the other agent",
                httpStatus: Int(status.code))
        case .badRequest, .unprocessableEntity:
            throw AgentError(
                code: .invalidConfiguration,
                message: "the controller rejected the enrolment: \(Self.statusMessage(body) ?? "\(status)")",
                httpStatus: Int(status.code))
        default:
            throw Self.unexpected(status, body, "enrolling")
        }
    }

    // MARK: Rotation

    /// Trades the agent's current credential for a new one, before it expires.
    ///
    /// - Throws: ``AgentError`` with code ``AgentError/Code/credentialRevoked`` when the controller refuses for good
    ///   (401: revoked or expired; 409: rotated already, by whoever holds a copy of it), with its message; a
    ///   transient error when it was away.
    public func rotate(credential: String) async throws(AgentError) -> EnrollmentResponse {
        let request = makeRequest(AgentProtocol.credentialPath, method: .POST, bearer: credential)
        let (status, body) = try await Self.send(request, http: http, timeout: requestTimeout, limit: 64 * 1024)
        switch status {
        case .ok:
            return try Self.enrollmentResponse(body, answering: "rotation")
        case .unauthorized, .forbidden, .conflict:
            throw AgentError(
                code: .credentialRevoked,
                message: "the controller refused to rotate the credential: \(Self.statusMessage(body) ?? "\(status)")",
                httpStatus: Int(status.code))
        default:
            throw Self.unexpected(status, body, "rotating the credential")
        }
    }

    // MARK: The agent stream

    /// Sends reports up an open agent stream.
    public struct ReportWriter: Sendable {
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

        /// Sends one report (heartbeat and sync status).
        public func send(_ report: AgentReport) async throws(AgentError) {
            try await writeLine(report, "a report")
        }

        /// Sends one run message (accepted, started, output, result, refused).
        public func send(run message: RunAgentMessage) async throws(AgentError) {
            do {
                try await outbound.write(ByteBuffer(bytes: try message.line()))
            } catch {
                throw AgentError(code: .unreachable, message: "cannot send a run message", underlying: error)
            }
        }

        /// Writes `value` as one JSON line.
        func writeLine(_ value: some Encodable, _ what: String) async throws(AgentError) {
            do {
                var line = try JSONEncoder().encode(value)
                line.append(0x0A)
                try await outbound.write(ByteBuffer(bytes: line))
            } catch {
                throw AgentError(code: .unreachable, message: "cannot send \(what)", underlying: error)
            }
        }
    }

    /// Opens the agent stream of `runner` from a revision and digest (see ``AgentProtocol``), runs `body` with the
    /// bytes the controller sends (newline-delimited slice messages, for a ``SliceStreamDecoder``) and a writer for
    /// reports, and closes the stream when `body` returns.
    public func withStream<Result: Sendable>(
        runner: String, credential: String, revision: Int64, digest: String?,
        _ body: (_ incoming: NIOAsyncChannelInboundStream<ByteBuffer>, _ reports: ReportWriter) async throws -> Result
    ) async throws -> Result {
        let channel = try await connectStream()
        let hello = AgentHello(runner: runner, credential: credential, revision: revision, digest: digest)
        return try await channel.executeThenClose { incoming, outbound in
            let writer = ReportWriter(outbound: outbound)
            try await writer.writeLine(hello, "the hello")
            return try await body(incoming, writer)
        }
    }

    private func connectStream() async throws(AgentError) -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        guard let url = URL(string: controllerURL), let host = url.host, !host.isEmpty else {
            throw AgentError(code: .invalidConfiguration, message: "--controller \(controllerURL) is not an https URL")
        }
        // NIOSSL checks the certificate against this name, or against the address when the host is one.
        let serverHostname = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        let context = streamTLSContext
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(requestTimeout))
                .connect(host: host, port: url.port ?? 443) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: context, serverHostname: serverHostname))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw Self.unreachable(error)
        }
    }

    /// The error for a controller's refusal of a stream.
    static func refusalError(_ refusal: AgentStreamRefusal, runner: String) -> AgentError {
        switch refusal.refused {
        case 401 where refusal.reason == AgentStreamRefusal.credentialExpired:
            return AgentError(
                code: .credentialExpired,
                message: "the controller closed the stream: \(refusal.message); the agent could not rotate it in time "
                    + "(was the controller unreachable, or is this a copy of another agent's state directory?): "
                    + "remove the credential from the state directory and enrol again with a new join token "
                    + "(`steady token create`)",
                httpStatus: 401)
        case 401:
            return AgentError(
                code: .credentialRevoked,
                message: "the controller no longer accepts this agent's credential for runner \(runner) "
                    + "(\(refusal.message)): it was revoked or the Runner deleted; "
                    + "remove the credential from the state directory and enrol again with a new join token",
                httpStatus: 401)
        case 403:
            return AgentError(
                code: .forbidden,
                message: "the controller forbids this credential to act as runner \(runner) (\(refusal.message))",
                httpStatus: 403)
        default:
            return AgentError(
                code: .unexpectedResponse, message: "the controller closed the stream: \(refusal.message)",
                httpStatus: refusal.refused)
        }
    }

    /// Posts a JSON body with the agent's credential and returns once the controller answered 200.
    public func post(_ path: String, json body: Data, credential: String) async throws(AgentError) {
        var request = makeRequest(path, method: .POST, bearer: credential)
        request.body = .bytes(body)
        let (status, data) = try await Self.send(request, http: http, timeout: requestTimeout, limit: 64 * 1024)
        guard status == .ok else { throw Self.unexpected(status, data, "posting to \(path)") }
    }

    // MARK: Plumbing

    private func makeRequest(_ path: String, method: HTTPMethod, bearer: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: controllerURL + path)
        request.method = method
        request.tlsConfiguration = tlsConfiguration
        request.headers.add(name: "Authorization", value: "Bearer \(bearer)")
        request.headers.add(name: "Accept", value: "application/json")
        if method == .POST { request.headers.add(name: "Content-Type", value: "application/json") }
        return request
    }

    private func encode(_ value: some Encodable) throws(AgentError) -> Data {
        do {
            return try JSONEncoder().encode(value)
        } catch {
            throw AgentError(code: .invalidConfiguration, message: "cannot encode a request", underlying: error)
        }
    }

    private static func send(_ request: HTTPClientRequest, http: HTTPClient, timeout: Duration, limit: Int)
        async throws(AgentError) -> (HTTPResponseStatus, Data)
    {
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: TimeAmount(timeout))
        } catch {
            throw unreachable(error)
        }
        return (response.status, try await collect(response.body, limit: limit))
    }

    private static func collect(_ body: HTTPClientResponse.Body, limit: Int) async throws(AgentError) -> Data {
        do {
            var buffer = try await body.collect(upTo: limit)
            return Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch {
            throw AgentError(
                code: .unreachable, message: "cannot read the controller's answer (more than \(limit) bytes, "
                    + "or the connection broke)", underlying: error)
        }
    }

    private static func unreachable(_ error: any Error) -> AgentError {
        if let error = error as? AgentError { return error }
        return AgentError(code: .unreachable, message: "cannot reach the controller", underlying: error)
    }

    /// The credential an enrolment or a rotation answered with.
    private static func enrollmentResponse(_ body: Data, answering what: String) throws(AgentError)
        -> EnrollmentResponse
    {
        do {
            return try JSONDecoder().decode(EnrollmentResponse.self, from: body)
        } catch {
            throw AgentError(
                code: .unexpectedResponse, message: "the \(what) answer is not an EnrollmentResponse",
                underlying: error)
        }
    }

    private static func unexpected(_ status: HTTPResponseStatus, _ body: Data, _ doing: String) -> AgentError {
        AgentError(
            code: .unexpectedResponse,
            message: "the controller answered \(status.code) \(status.reasonPhrase) when \(doing)"
                + (statusMessage(body).map { ": \($0)" } ?? ""),
            httpStatus: Int(status.code))
    }

    /// The `message` of a Kubernetes `Status` body, when the body is one.
    static func statusMessage(_ body: Data) -> String? {
        guard let value = try? JSONValue.parse(body), let message = value["message"]?.stringValue,
            !message.isEmpty
        else { return nil }
        return message
    }

    static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
