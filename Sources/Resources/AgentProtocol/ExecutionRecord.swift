import Foundation


/// How one delivery attempt ended: what the `Execution` kind lists and runners report upstream.
public struct ExecutionRecord: Sendable, Equatable, Codable {
    public enum Result: String, Sendable, Codable {
        /// The receiver took it.
        case succeeded = "Succeeded"
        /// It failed and will be tried again.
        case retrying = "Retrying"
        /// It failed and the retry policy gave up (or the failure was permanent).
        case failed = "Failed"
    }

    /// The record's position where it was stored (0 before it is stored).
    public var sequence: Int64
    /// When the attempt ended, in milliseconds since 1970.
    public var time: Int64
    public var eventID: String
    public var route: String
    public var action: String
    /// `controller`, or the runner's name.
    public var location: String
    /// 1 for the first attempt.
    public var attempt: Int
    public var result: Result
    public var durationMilliseconds: Int64
    public var error: String?
    public var deliveryID: String

    public init(
        sequence: Int64 = 0, time: Int64, eventID: String, route: String, action: String, location: String,
        attempt: Int, result: Result, durationMilliseconds: Int64, error: String?, deliveryID: String
    ) {
        self.sequence = sequence
        self.time = time
        self.eventID = eventID
        self.route = route
        self.action = action
        self.location = location
        self.attempt = attempt
        self.result = result
        self.durationMilliseconds = durationMilliseconds
        self.error = error
        self.deliveryID = deliveryID
    }

    /// The record as a read-only `Execution` object of the API.
    public func object(creationTimestamp: String) -> JSONValue {
        var spec: JSONValue = [
            "eventId": .string(eventID), "route": .string(route), "action": .string(action),
            "location": .string(location), "attempt": .int(Int64(attempt)), "result": .string(result.rawValue),
            "durationMilliseconds": .int(durationMilliseconds), "deliveryId": .string(deliveryID),
        ]
        spec["error"] = error.map(JSONValue.string)
        return [
            "apiVersion": .string(API.apiVersion), "kind": "Execution",
            "metadata": [
                "name": .string(name), "creationTimestamp": .string(creationTimestamp),
                "labels": ["route": .string(route), "action": .string(action), "result": .string(result.rawValue)],
            ],
            "spec": spec,
        ]
    }

    /// The object's name: the delivery and the attempt, unique and stable.
    public var name: String { "\(deliveryID)-\(attempt)" }
}
