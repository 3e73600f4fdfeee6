import Resources

/// The body of a PagerDuty Events API v2 `trigger` event.
///
/// The delivery id is the `dedup_key`, so a delivery retried after a lost answer updates one alert instead of
/// opening a second. The summary is cut to PagerDuty's 1,024 characters and the whole event to its 512 KB, with
/// `custom_details` replaced by a truncated JSON text when it is what makes the event too large.
public enum PagerDutyPayload {
    /// PagerDuty's limit on `summary`, counted here in UTF-16 units (never fewer than its characters).
    public static let summaryCharacters = 1024
    /// PagerDuty's limit on `dedup_key`.
    public static let dedupKeyCharacters = 255
    /// PagerDuty's limit on the whole event, in bytes.
    public static let payloadBytes = 512 * 1024

    /// The `trigger` event.
    ///
    /// - Parameters:
    ///   - routingKey: The integration's routing key (a secret: the payload must not be logged).
    ///   - deliveryID: The delivery's id, used as `dedup_key`.
    ///   - summary: The alert's text, usually the rendered title or message.
    ///   - severity: `critical`, `error`, `warning` or `info`.
    ///   - source: Where the problem is; `steady` when empty.
    ///   - customDetails: Free-form details, usually the event.
    ///   - timestamp: An RFC 3339 time of the event, when known.
    public static func trigger(
        routingKey: String, deliveryID: String, summary: String,
        severity: ActionSpec.PagerDuty.Severity = .error, source: String, customDetails: JSONValue? = nil,
        timestamp: String? = nil, payloadBytes: Int = payloadBytes
    ) -> JSONValue {
        var summary = TextTruncation.truncate(summary, budget: summaryCharacters)
        if summary.allSatisfy(\.isWhitespace) { summary = "steady event" }
        var details: [String: JSONValue] = [
            "summary": .string(summary), "severity": .string(severity.rawValue),
            "source": .string(source.isEmpty ? "steady" : TextTruncation.prefix(of: source, budget: 255)),
        ]
        if let timestamp { details["timestamp"] = .string(timestamp) }
        var event: JSONValue = [
            "routing_key": .string(routingKey), "event_action": "trigger",
            "dedup_key": .string(TextTruncation.prefix(of: deliveryID, budget: dedupKeyCharacters)),
            "client": "steady", "payload": .object(details),
        ]
        guard let customDetails else { return event }
        event["payload"]?["custom_details"] = customDetails
        let size = event.jsonData().count
        guard size > payloadBytes else { return event }
        // Too large: the details go as one truncated JSON text.
        event["payload"]?["custom_details"] = ""
        let overhead = event.jsonData().count
        let text = TextTruncation.truncate(
            customDetails.jsonString(), budget: payloadBytes - overhead, measure: .jsonBytes)
        event["payload"]?["custom_details"] = .string(text)
        return event
    }
}
