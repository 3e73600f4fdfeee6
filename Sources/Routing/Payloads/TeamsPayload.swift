import Resources

/// The body of a Microsoft Teams incoming-webhook POST, as an Adaptive Card (Workflows and connectors) or a
/// legacy MessageCard (Office 365 connectors).
///
/// Teams refuses messages over about 28 KB; the payload's compact JSON (``JSONValue/jsonData(pretty:)``) stays
/// within ``Limits/payloadBytes`` by truncating the message with a visible note.
public enum TeamsPayload {
    /// Which card the webhook expects.
    public enum Format: String, Sendable, CaseIterable {
        /// `{"type": "message", "attachments": [Adaptive Card]}`: Teams Workflows and current connectors.
        case adaptiveCard
        /// `{"@type": "MessageCard", ...}`: Office 365 connectors.
        case messageCard
    }

    public struct Limits: Sendable {
        /// The most bytes of compact JSON.
        public var payloadBytes: Int
        /// The most UTF-16 units of the title.
        public var titleCharacters: Int

        public init(payloadBytes: Int = 27 * 1024, titleCharacters: Int = 256) {
            self.payloadBytes = payloadBytes
            self.titleCharacters = titleCharacters
        }
    }

    /// The payload for `title` (may be nil or empty) and the rendered `message`.
    public static func make(
        title: String?, message: String, format: Format = .adaptiveCard, limits: Limits = Limits()
    ) -> JSONValue {
        let title = TextTruncation.truncate(title ?? "", budget: limits.titleCharacters)
        let overhead = card(title: title, message: "", format: format).jsonData().count
        let body = TextTruncation.truncate(message, budget: limits.payloadBytes - overhead, measure: .jsonBytes)
        return card(title: title, message: body, format: format)
    }

    private static func card(title: String, message: String, format: Format) -> JSONValue {
        switch format {
        case .messageCard:
            var card: JSONValue = [
                "@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": .string(title.isEmpty ? "steady event" : title), "text": .string(message),
            ]
            if !title.isEmpty { card["title"] = .string(title) }
            return card
        case .adaptiveCard:
            var body: [JSONValue] = []
            if !title.isEmpty {
                body.append([
                    "type": "TextBlock", "text": .string(title), "weight": "Bolder", "size": "Medium", "wrap": true,
                ])
            }
            body.append(["type": "TextBlock", "text": .string(message), "wrap": true])
            let content: JSONValue = [
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": .array(body),
            ]
            return [
                "type": "message",
                "attachments": [["contentType": "application/vnd.microsoft.card.adaptive", "content": content]],
            ]
        }
    }
}
