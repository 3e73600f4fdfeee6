/// What runners send the controller about events, as plain HTTPS requests with their credential: events whose
/// remaining actions run on the controller (hand-offs), and the execution records of their own deliveries.
///
/// A runner keeps both in its state directory until the controller has answered 200, so a runner cut off from the
/// controller keeps taking events and running its own actions, and catches up when the controller is back.
public enum EventProtocol {
    /// `POST` an ``EventHandOffBatch``; answered 200 once every hand-off is in the controller's durable queue.
    public static let handOffPath = "/steady/v1/events/handoffs"
    /// `POST` an ``ExecutionReportBatch``; answered 200 once the records are stored.
    public static let executionsPath = "/steady/v1/events/executions"
    /// The largest batch body the controller reads.
    public static let maximumBatchBytes = 16 << 20
}

/// One event handed up by a runner: sent once per event, with every matched route's actions still due.
public struct EventHandOff: Codable, Sendable, Equatable {
    /// The actions of one route still due, in declared order.
    public struct Due: Codable, Sendable, Equatable {
        public var route: String
        public var actions: [String]

        public init(route: String, actions: [String]) {
            self.route = route
            self.actions = actions
        }
    }

    /// The id the runner gave the event; the controller keeps it.
    public var eventID: String
    /// When the runner took it in, in milliseconds since 1970.
    public var receivedAt: Int64
    /// The event as the runner received it (JSON text).
    public var body: String
    public var due: [Due]

    public init(eventID: String, receivedAt: Int64, body: String, due: [Due]) {
        self.eventID = eventID
        self.receivedAt = receivedAt
        self.body = body
        self.due = due
    }
}

/// Hand-offs, oldest first.
public struct EventHandOffBatch: Codable, Sendable, Equatable {
    public var handOffs: [EventHandOff]

    public init(handOffs: [EventHandOff]) { self.handOffs = handOffs }
}

/// A runner's execution records, oldest first.
public struct ExecutionReportBatch: Codable, Sendable, Equatable {
    public var executions: [ExecutionRecord]

    public init(executions: [ExecutionRecord]) { self.executions = executions }

    /// The batch as its `Codable` form would write it (the same keys; an absent error left out), written directly:
    /// a runner sends one record per delivery, and `JSONEncoder` cost it 7 % of its CPU under load.
    public func jsonBytes() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(64 + executions.count * 320)
        output.append(contentsOf: #"{"executions":["#.utf8)
        for (index, record) in executions.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            var object = JSONObjectWriter(capacity: 320)
            object.add("sequence", record.sequence)
            object.add("time", record.time)
            object.add("eventID", record.eventID)
            object.add("route", record.route)
            object.add("action", record.action)
            object.add("location", record.location)
            object.add("attempt", Int64(record.attempt))
            object.add("result", record.result.rawValue)
            object.add("durationMilliseconds", record.durationMilliseconds)
            if let error = record.error { object.add("error", error) }
            object.add("deliveryID", record.deliveryID)
            output.append(contentsOf: object.finish())
        }
        output.append(contentsOf: "]}".utf8)
        return output
    }
}
