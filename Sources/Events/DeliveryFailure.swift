/// Why one delivery attempt failed, and whether trying again could help.
public struct DeliveryFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for the execution record and the Action's `Degraded` condition.
    public var message: String
    /// True when another attempt would fail the same way (a receiver's 4xx, a missing secret, a type not built).
    public var isPermanent: Bool

    /// A failure another attempt may not repeat (a refused connection, a 5xx, a timeout).
    public init(_ message: String) {
        self.message = message
        self.isPermanent = false
    }

    /// A failure another attempt would repeat.
    public init(permanent message: String) {
        self.message = message
        self.isPermanent = true
    }

    public var description: String { message }
}
