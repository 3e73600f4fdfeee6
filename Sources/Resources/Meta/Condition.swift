import Foundation

/// A `metav1.Condition`: one aspect of an object's observed state.
public struct Condition: Codable, Sendable, Hashable {
    public enum Status: String, SchemaEnum {
        case `true` = "True"
        case `false` = "False"
        case unknown = "Unknown"
    }

    public var type: String
    public var status: Status
    public var observedGeneration: Int64?
    public var lastTransitionTime: String
    /// CamelCase, machine-readable.
    public var reason: String
    public var message: String

    public init(
        type: String, status: Status, reason: String, message: String = "", observedGeneration: Int64? = nil,
        lastTransitionTime: String = Timestamp.now()
    ) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.observedGeneration = observedGeneration
        self.lastTransitionTime = lastTransitionTime
    }
}

extension [Condition] {
    /// The condition of one type, if present.
    public subscript(type type: String) -> Condition? {
        first { $0.type == type }
    }

    /// Sets a condition, keeping `lastTransitionTime` unless its status flips.
    public mutating func set(_ condition: Condition) {
        guard let index = firstIndex(where: { $0.type == condition.type }) else {
            append(condition)
            return
        }
        var updated = condition
        if self[index].status == condition.status {
            updated.lastTransitionTime = self[index].lastTransitionTime
        }
        self[index] = updated
    }

    /// True when the condition of `type` has status True.
    public func isTrue(_ type: String) -> Bool {
        self[type: type]?.status == .true
    }
}

extension JSONValue {
    /// The condition of `type` in this object's `status.conditions`, as JSON.
    public func condition(_ type: String) -> JSONValue? {
        self["status"]?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == type }
    }

    /// The status (`True`, `False`, `Unknown`) of the condition of `type`, or empty when there is none.
    public func conditionStatus(_ type: String) -> String {
        condition(type)?["status"]?.stringValue ?? ""
    }
}

/// RFC 3339 timestamps as Kubernetes writes them (UTC, second precision).
public enum Timestamp {
    public static func now() -> String { format(Date()) }

    public static func format(_ date: Date) -> String {
        date.ISO8601Format()
    }

    public static func parse(_ text: String) -> Date? {
        try? Date(text, strategy: .iso8601)
    }
}
