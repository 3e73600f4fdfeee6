import Foundation
import Resources

/// Splits the bytes of an agent stream into newline-delimited messages: slice messages and run messages. A value:
/// no I/O.
public struct SliceStreamDecoder: Sendable {
    /// One line of the stream.
    public enum Item: Sendable, Equatable {
        case slice(SliceMessage)
        case run(RunControllerMessage)
    }

    /// The longest line accepted; a longer one means the stream is broken or hostile.
    public var maximumLineLength: Int
    /// The runner whose stream this is, for error messages.
    public var runner: String
    private var pending: [UInt8] = []

    /// Creates a decoder (lines up to 64 MiB by default: a slice may hold many secrets).
    public init(runner: String = "", maximumLineLength: Int = 64 * 1024 * 1024) {
        self.runner = runner
        self.maximumLineLength = maximumLineLength
    }

    /// Adds bytes and returns the messages completed by them, in order. Empty lines are skipped.
    ///
    /// - Throws: ``AgentError`` with code ``AgentError/Code/unexpectedResponse`` when a line is too long or not a
    ///   slice message, and the controller's refusal (``AgentError/Code/credentialRevoked``,
    ///   ``AgentError/Code/forbidden``) when it sent one.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(AgentError) -> [SliceMessage] {
        try items(from: bytes).compactMap { item in
            if case .slice(let message) = item { return message }
            return nil
        }
    }

    /// Adds bytes and returns the lines completed by them, slice and run messages alike, in order.
    ///
    /// - Throws: as ``feed(_:)``, and when a run message is malformed.
    public mutating func items(from bytes: some Collection<UInt8>) throws(AgentError) -> [Item] {
        var messages: [Item] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if let message = try decodeLine() { messages.append(message) }
                pending.removeAll(keepingCapacity: pending.count <= 64 * 1024)
            } else {
                guard pending.count < maximumLineLength else {
                    throw AgentError(
                        code: .unexpectedResponse,
                        message: "a slice stream line is longer than \(maximumLineLength) bytes")
                }
                pending.append(byte)
            }
        }
        return messages
    }

    /// Whether bytes of an unfinished line are held.
    public var hasPartialLine: Bool { !pending.isEmpty }

    private func decodeLine() throws(AgentError) -> Item? {
        guard pending.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) else { return nil }
        do {
            if let run = try RunControllerMessage.decode(line: pending) { return .run(run) }
        } catch {
            throw AgentError(
                code: .unexpectedResponse, message: "the controller sent a malformed run message: \(error)")
        }
        do {
            return .slice(try JSONDecoder().decode(SliceMessage.self, from: Data(pending)))
        } catch {
            if let refusal = try? JSONDecoder().decode(AgentStreamRefusal.self, from: Data(pending)) {
                throw AgentControllerClient.refusalError(refusal, runner: runner)
            }
            throw AgentError(
                code: .unexpectedResponse, message: "the slice stream sent a line that is not a slice message",
                underlying: error)
        }
    }
}
