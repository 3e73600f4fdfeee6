import Foundation
import Resources

/// Why an event was not taken in, and the HTTP status that says so.
public struct IntakeError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Int, Sendable {
        /// 400: the body is not JSON.
        case invalid = 400
        /// 413: over the size limit.
        case tooLarge = 413
        /// 429: the queue or the outbox is full.
        case queueFull = 429
        /// 503: the queue cannot be written.
        case unavailable = 503
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Whether the same event may be taken in later (a full queue, a store that cannot be written): answered with
    /// `Retry-After`.
    public var isRetryable: Bool { code == .queueFull || code == .unavailable }
}

/// The body of an answer to a posted event: the JSON and a newline, on the events port and on the API alike.
public enum IntakeAnswer {
    public static func body(_ json: JSONValue) -> Data {
        json.jsonData() + Data("\n".utf8)
    }
}
