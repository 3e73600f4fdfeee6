import Foundation

/// The remote-run messages carried on an agent's stream (`steady-agent/1`, one JSON object per line).
///
/// Each line has a `type` naming the message and the message's fields beside it:
/// `{"type":"runRequest","runUID":"…","runName":"inventory",…}`. The types all start with `run`, so they never
/// collide with the slice stream's `snapshot`, `diff` and `keepalive`: ``RunControllerMessage/decode(line:)`` and
/// ``RunAgentMessage/decode(line:)`` return nil for a line that is not a run message, and the stream hands it on.
///
/// A run, seen on the wire:
/// - controller → agent: ``RunRequest``; the agent records it in its ledger and answers ``RunAccepted`` (or
///   ``RunRefused``), then ``RunStarted``, ``RunOutputChunk``s and one ``RunResult``;
/// - controller → agent: ``RunAcknowledge`` once the result is stored, so the agent may stop re-sending it after
///   a reconnect; ``RunCancel`` to kill a run (delete or suspend).
public enum RunProtocol {
    /// Whether a line may be a run message, told without parsing it (see `RunProtocolLine.mayBeRunMessage`).
    public static func mayBeRunMessage(_ line: some Collection<UInt8>) -> Bool {
        RunProtocolLine.mayBeRunMessage(line)
    }

    /// The most output bytes one ``RunOutputChunk`` carries. Base64 makes them 4/3 larger, which keeps a chunk
    /// line well below ``AgentProtocol/maximumAgentLineLength``.
    public static let maximumChunkBytes = 32 * 1024
    /// The longest line accepted in either direction.
    public static let maximumLineLength = AgentProtocol.maximumAgentLineLength
    /// The longest run UID accepted (Kubernetes UIDs are 36 characters).
    public static let maximumUIDLength = 128
    /// The default bound on the output kept per runner: 1 MiB.
    public static let defaultMaximumOutputBytes = 1024 * 1024
    /// How the run UIDs of a runner's scheduled runs (Runner `spec.schedule`) start. The agent sends their
    /// `runStarted`, `runOutput` and `runResult` too, so the controller keeps the last one's output; no
    /// RemoteRun has such a UID.
    public static let scheduledRunUIDPrefix = "schedule."
    /// The largest bound a request may ask for.
    public static let maximumOutputBytesLimit = 64 * 1024 * 1024
}

/// Why a run message was rejected: what was wrong and where. The stream that carried it closes.
public struct RunProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// Which output stream of the process a chunk comes from.
public enum RunOutputStream: String, Codable, Sendable, Equatable {
    case stdout
    case stderr
}

/// Run the agent's own run command (or `command`, when the agent allows exec) for one RemoteRun.
///
/// Wiring: the controller's dispatcher sends it for each `RunDispatch.Directive.dispatch`; the agent looks
/// the UID up in its `RunLedger` and starts `RunExecutor` only when the ledger has never seen it.
public struct RunRequest: Codable, Sendable, Equatable {
    /// The RemoteRun's `metadata.uid`: what makes a run unique, across reconnects and restarts.
    public var runUID: String
    /// The RemoteRun's name, given to the process as `STEADY_RUN_NAME`.
    public var runName: String
    /// Given to the process as `STEADY_RUN_CONDITIONS`, comma-separated.
    public var conditions: [String]
    /// An explicit argv; absent to run the agent's own run command.
    public var command: [String]?
    /// `spec.timeout` in milliseconds; absent for none.
    public var timeoutMilliseconds: Int64?
    /// The output kept per runner, head and tail.
    public var maxOutputBytes: Int

    public init(
        runUID: String, runName: String, conditions: [String] = [], command: [String]? = nil,
        timeoutMilliseconds: Int64? = nil, maxOutputBytes: Int = RunProtocol.defaultMaximumOutputBytes
    ) {
        self.runUID = runUID
        self.runName = runName
        self.conditions = conditions
        self.command = command
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxOutputBytes = maxOutputBytes
    }

    func validate() throws(RunProtocolError) {
        try RunProtocolValidation.uid(runUID)
        guard !runName.isEmpty, runName.utf8.count <= 253 else {
            throw RunProtocolError("runName must be 1 to 253 bytes")
        }
        for (index, condition) in conditions.enumerated() where !RemoteRunSpec.isValidCondition(condition) {
            throw RunProtocolError("conditions[\(index)] must match \(RemoteRunSpec.conditionPattern)")
        }
        if let command {
            guard let program = command.first, program.hasPrefix("/") else {
                throw RunProtocolError("command must be a non-empty argv whose first word is an absolute path")
            }
        }
        if let timeoutMilliseconds, timeoutMilliseconds <= 0 {
            throw RunProtocolError("timeoutMilliseconds must be positive, got \(timeoutMilliseconds)")
        }
        guard (0...RunProtocol.maximumOutputBytesLimit).contains(maxOutputBytes) else {
            throw RunProtocolError(
                "maxOutputBytes must be 0 to \(RunProtocol.maximumOutputBytesLimit), got \(maxOutputBytes)")
        }
    }
}

/// Kill a run's process group (the RemoteRun was deleted or suspended). Wiring: `RunDispatch.Directive.cancel`.
public struct RunCancel: Codable, Sendable, Equatable {
    public var runUID: String
    public init(runUID: String) { self.runUID = runUID }
}

/// The controller stored a run's result; the agent's `RunLedger` stops re-sending it after reconnects.
public struct RunAcknowledge: Codable, Sendable, Equatable {
    public var runUID: String
    public init(runUID: String) { self.runUID = runUID }
}

/// The agent took the run: it is in its ledger and will start (the delivery timeout stops).
public struct RunAccepted: Codable, Sendable, Equatable {
    public var runUID: String
    public init(runUID: String) { self.runUID = runUID }
}

/// The process started. Wiring: the dispatcher's `RunDispatch.Event.started`; the runner is `Running`.
public struct RunStarted: Codable, Sendable, Equatable {
    public var runUID: String
    /// RFC 3339 (`Timestamp`).
    public var startTime: String
    public init(runUID: String, startTime: String) {
        self.runUID = runUID
        self.startTime = startTime
    }
}

/// A piece of a run's output, from one stream, in order.
public struct RunOutputChunk: Codable, Sendable, Equatable {
    public var runUID: String
    public var stream: RunOutputStream
    /// 0, 1, 2, … per run across both streams, so the controller can tell a lost or repeated chunk.
    public var sequence: Int64
    /// The bytes, base64-encoded; at most ``RunProtocol/maximumChunkBytes`` once decoded.
    public var data: String
    /// Output bytes the agent dropped just before this chunk (its backlog, kept while the controller was
    /// unreachable, overflowed and kept only its head and tail); absent when none. The controller's log shows the
    /// gap there.
    public var droppedBefore: Int64?

    public init(
        runUID: String, stream: RunOutputStream, sequence: Int64, bytes: some Collection<UInt8>,
        droppedBefore: Int64? = nil
    ) {
        self.runUID = runUID
        self.stream = stream
        self.sequence = sequence
        self.data = Data(bytes).base64EncodedString()
        self.droppedBefore = droppedBefore
    }

    /// The decoded bytes, or nil when `data` is not base64.
    public var bytes: [UInt8]? { Data(base64Encoded: data).map(Array.init) }

    /// Splits `bytes` into chunks of at most ``RunProtocol/maximumChunkBytes``, numbered from `firstSequence`.
    public static func chunks(
        runUID: String, stream: RunOutputStream, firstSequence: Int64, bytes: [UInt8]
    ) -> [RunOutputChunk] {
        stride(from: 0, to: bytes.count, by: RunProtocol.maximumChunkBytes).enumerated().map { index, start in
            let end = min(start + RunProtocol.maximumChunkBytes, bytes.count)
            return RunOutputChunk(
                runUID: runUID, stream: stream, sequence: firstSequence + Int64(index), bytes: bytes[start..<end])
        }
    }
}

/// How a run ended on one runner. Sent once, and again after each reconnect until ``RunAcknowledge``.
public struct RunResult: Codable, Sendable, Equatable {
    public var runUID: String
    /// A final phase: `Succeeded`, `Failed`, `TimedOut`, `Cancelled` or `Refused`.
    public var phase: RemoteRunSpec.Phase
    public var exitCode: Int?
    public var signal: Int?
    /// RFC 3339; absent when the process never started.
    public var startTime: String?
    public var completionTime: String
    /// Bytes the process wrote, kept or not.
    public var outputBytes: Int64
    public var outputTruncated: Bool
    public var reason: String?
    public var message: String?

    public init(
        runUID: String, phase: RemoteRunSpec.Phase, exitCode: Int? = nil, signal: Int? = nil,
        startTime: String? = nil, completionTime: String, outputBytes: Int64 = 0, outputTruncated: Bool = false,
        reason: String? = nil, message: String? = nil
    ) {
        self.runUID = runUID
        self.phase = phase
        self.exitCode = exitCode
        self.signal = signal
        self.startTime = startTime
        self.completionTime = completionTime
        self.outputBytes = outputBytes
        self.outputTruncated = outputTruncated
        self.reason = reason
        self.message = message
    }
}

/// The agent will not run it; nothing ran. The runner's result is `Refused` with this reason.
public struct RunRefused: Codable, Sendable, Equatable {
    /// Reasons an agent gives.
    public enum Reason: String, Codable, Sendable, Equatable {
        /// The request has a `command` and the agent was not started with `--allow-exec`.
        case execNotAllowed = "ExecNotAllowed"
        /// The request has no `command` and the agent was not started with `--run-command`.
        case noRunCommand = "NoRunCommand"
    }

    public var runUID: String
    public var reason: Reason
    public var message: String?

    public init(runUID: String, reason: Reason, message: String? = nil) {
        self.runUID = runUID
        self.reason = reason
        self.message = message
    }
}

/// A run message the controller sends.
public enum RunControllerMessage: Sendable, Equatable {
    case request(RunRequest)
    case cancel(RunCancel)
    case acknowledge(RunAcknowledge)

    /// The `type` of each message.
    public static let types = ["runRequest", "runCancel", "runAcknowledge"]

    /// One JSON line, newline included.
    public func line() throws -> [UInt8] {
        switch self {
        case .request(let message): return try RunProtocolLine.encode("runRequest", message)
        case .cancel(let message): return try RunProtocolLine.encode("runCancel", message)
        case .acknowledge(let message): return try RunProtocolLine.encode("runAcknowledge", message)
        }
    }

    /// The message on `line` (without its newline), nil when the line is valid JSON of another protocol.
    public static func decode(line: some Collection<UInt8>) throws(RunProtocolError) -> RunControllerMessage? {
        // Slice lines may be megabytes long (many secrets): a run message never is.
        guard line.count <= RunProtocol.maximumLineLength, RunProtocolLine.mayBeRunMessage(line) else { return nil }
        guard let split = try RunProtocolLine.split(line, types: types) else { return nil }
        let (type, body) = split
        switch type {
        case "runRequest":
            let request = try RunProtocolLine.payload(RunRequest.self, type, body)
            try request.validate()
            return .request(request)
        case "runCancel":
            let cancel = try RunProtocolLine.payload(RunCancel.self, type, body)
            try RunProtocolValidation.uid(cancel.runUID)
            return .cancel(cancel)
        default:
            let acknowledge = try RunProtocolLine.payload(RunAcknowledge.self, type, body)
            try RunProtocolValidation.uid(acknowledge.runUID)
            return .acknowledge(acknowledge)
        }
    }
}

/// A run message an agent sends.
public enum RunAgentMessage: Sendable, Equatable {
    case accepted(RunAccepted)
    case started(RunStarted)
    case output(RunOutputChunk)
    case result(RunResult)
    case refused(RunRefused)

    /// The `type` of each message.
    public static let types = ["runAccepted", "runStarted", "runOutput", "runResult", "runRefused"]

    /// The run it is about.
    public var runUID: String {
        switch self {
        case .accepted(let message): message.runUID
        case .started(let message): message.runUID
        case .output(let message): message.runUID
        case .result(let message): message.runUID
        case .refused(let message): message.runUID
        }
    }

    /// One JSON line, newline included.
    public func line() throws -> [UInt8] {
        switch self {
        case .accepted(let message): return try RunProtocolLine.encode("runAccepted", message)
        case .started(let message): return try RunProtocolLine.encode("runStarted", message)
        case .output(let message): return try RunProtocolLine.encode("runOutput", message)
        case .result(let message): return try RunProtocolLine.encode("runResult", message)
        case .refused(let message): return try RunProtocolLine.encode("runRefused", message)
        }
    }

    /// The message on `line` (without its newline), nil when the line is valid JSON of another protocol.
    ///
    /// - Throws: ``RunProtocolError`` for a line that is too long, not JSON, or a run message that is malformed:
    ///   a missing or mistyped field, a chunk that is not base64 or larger than ``RunProtocol/maximumChunkBytes``,
    ///   a result whose phase is not final.
    public static func decode(line: some Collection<UInt8>) throws(RunProtocolError) -> RunAgentMessage? {
        guard let split = try RunProtocolLine.split(line, types: types) else { return nil }
        let (type, body) = split
        let message: RunAgentMessage
        switch type {
        case "runAccepted": message = .accepted(try RunProtocolLine.payload(RunAccepted.self, type, body))
        case "runStarted":
            let started = try RunProtocolLine.payload(RunStarted.self, type, body)
            try RunProtocolValidation.time(started.startTime, field: "startTime")
            message = .started(started)
        case "runOutput":
            let chunk = try RunProtocolLine.payload(RunOutputChunk.self, type, body)
            guard chunk.sequence >= 0 else { throw RunProtocolError("runOutput: sequence must not be negative") }
            guard (chunk.droppedBefore ?? 0) >= 0 else {
                throw RunProtocolError("runOutput: droppedBefore must not be negative")
            }
            // Base64 of n bytes is 4⌈n/3⌉ characters: check the length before decoding anything.
            guard chunk.data.utf8.count <= (RunProtocol.maximumChunkBytes + 2) / 3 * 4 else {
                throw RunProtocolError(
                    "runOutput: chunk of \(chunk.data.utf8.count) base64 characters is larger than "
                        + "\(RunProtocol.maximumChunkBytes) bytes")
            }
            guard let bytes = chunk.bytes else { throw RunProtocolError("runOutput: data is not base64") }
            guard bytes.count <= RunProtocol.maximumChunkBytes else {
                throw RunProtocolError(
                    "runOutput: chunk of \(bytes.count) bytes is larger than \(RunProtocol.maximumChunkBytes) bytes")
            }
            message = .output(chunk)
        case "runResult":
            let result = try RunProtocolLine.payload(RunResult.self, type, body)
            guard result.phase.isFinal else {
                throw RunProtocolError("runResult: phase \(result.phase.rawValue) is not a final phase")
            }
            guard result.outputBytes >= 0 else { throw RunProtocolError("runResult: outputBytes must not be negative") }
            try RunProtocolValidation.time(result.completionTime, field: "completionTime")
            if let startTime = result.startTime { try RunProtocolValidation.time(startTime, field: "startTime") }
            message = .result(result)
        default: message = .refused(try RunProtocolLine.payload(RunRefused.self, type, body))
        }
        try RunProtocolValidation.uid(message.runUID)
        return message
    }
}

/// Framing shared by both directions: a bounded line, a `type`, and the fields beside it.
enum RunProtocolLine {
    static func encode(_ type: String, _ message: some Encodable) throws -> [UInt8] {
        guard case .object(var fields) = try JSONValue(encoding: message) else {
            throw RunProtocolError("a \(type) message did not encode as an object")
        }
        fields["type"] = .string(type)
        return Array(JSONValue.object(fields).jsonData()) + [UInt8(ascii: "\n")]
    }

    /// The line's `type` and object, or nil when its type is not one of `types`.
    /// Whether `line` may be a run message, told without parsing it: it holds `"run` (every run message type
    /// starts so). Slice lines and reports are then parsed once, not twice.
    static func mayBeRunMessage(_ line: some Collection<UInt8>) -> Bool {
        let marker = Array("\"run".utf8)
        let bytes = Array(line)
        guard bytes.count >= marker.count else { return false }
        for start in 0...(bytes.count - marker.count) where bytes[start] == marker[0] {
            if bytes[start..<(start + marker.count)].elementsEqual(marker) { return true }
        }
        return false
    }

    static func split(
        _ line: some Collection<UInt8>, types: [String]
    ) throws(RunProtocolError) -> (String, JSONValue)? {
        guard line.count <= RunProtocol.maximumLineLength else {
            throw RunProtocolError("a line of \(line.count) bytes is longer than \(RunProtocol.maximumLineLength)")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Data(line))
        } catch {
            throw RunProtocolError("a line is not JSON: \(error)")
        }
        guard case .object = value else { throw RunProtocolError("a line is not a JSON object") }
        guard let type = value["type"]?.stringValue, types.contains(type) else { return nil }
        return (type, value)
    }

    static func payload<T: Decodable>(_: T.Type, _ type: String, _ body: JSONValue) throws(RunProtocolError) -> T {
        do {
            return try body.decode(as: T.self)
        } catch let error as DecodingError {
            throw RunProtocolError("\(type): \(FieldError(decoding: error))")
        } catch {
            throw RunProtocolError("\(type): \(error)")
        }
    }
}

enum RunProtocolValidation {
    static func uid(_ uid: String) throws(RunProtocolError) {
        guard !uid.isEmpty, uid.utf8.count <= RunProtocol.maximumUIDLength,
            uid.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else {
            throw RunProtocolError("runUID must be 1 to \(RunProtocol.maximumUIDLength) printable ASCII characters")
        }
    }

    static func time(_ text: String, field: String) throws(RunProtocolError) {
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        guard Timestamp.parse(text) != nil || (try? Date(text, strategy: fractional)) != nil else {
            throw RunProtocolError("\(field) \"\(text)\" is not an RFC 3339 time")
        }
    }
}
