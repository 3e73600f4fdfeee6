import Foundation

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

    /// Reads a batch as its `Codable` form has it (members in any order, unknown ones ignored), through
    /// ``JSONValue``: `JSONDecoder` cost the controller 40 % of its CPU taking a busy runner's reports.
    public init(json: Data) throws {
        guard case .object(let batch) = try JSONValue.parse(json), case .array(let items)? = batch["executions"]
        else { throw ReportFormatError(path: "executions", problem: "expected an array of execution records") }
        executions = try items.enumerated().map { index, item in
            try ExecutionRecord(json: item, path: "executions[\(index)]")
        }
    }
}

/// A report that is JSON but not the expected shape: where (`executions[3].route`) and what was wrong.
public struct ReportFormatError: Error, CustomStringConvertible {
    public var path: String
    public var problem: String

    public var description: String { "\(path): \(problem)" }
}

extension ExecutionRecord {
    /// The record in `json`, an object as the `Codable` form writes it; `path` names it in errors.
    init(json: JSONValue, path: String) throws(ReportFormatError) {
        guard case .object(let members) = json else { throw ReportFormatError(path: path, problem: "expected an object") }
        func text(_ key: String) throws(ReportFormatError) -> String {
            guard case .string(let value)? = members[key] else {
                throw ReportFormatError(path: "\(path).\(key)", problem: "expected a string")
            }
            return value
        }
        func integer(_ key: String) throws(ReportFormatError) -> Int64 {
            guard case .int(let value)? = members[key] else {
                throw ReportFormatError(path: "\(path).\(key)", problem: "expected an integer")
            }
            return value
        }
        guard let result = Result(rawValue: try text("result")) else {
            throw ReportFormatError(path: "\(path).result", problem: "expected Succeeded, Retrying or Failed")
        }
        let error: String?
        switch members["error"] {
        case nil, .null?: error = nil
        case .string(let message)?: error = message
        default: throw ReportFormatError(path: "\(path).error", problem: "expected a string")
        }
        guard let attempt = Int(exactly: try integer("attempt")) else {
            throw ReportFormatError(path: "\(path).attempt", problem: "out of range")
        }
        self.init(
            sequence: try integer("sequence"), time: try integer("time"), eventID: try text("eventID"),
            route: try text("route"), action: try text("action"), location: try text("location"), attempt: attempt,
            result: result, durationMilliseconds: try integer("durationMilliseconds"), error: error,
            deliveryID: try text("deliveryID"))
    }
}
