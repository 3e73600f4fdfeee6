import Resources

/// The body of a Slack incoming-webhook POST: a header block with the title and section blocks with the message.
///
/// Slack rejects blocks over its limits (a header holds 150 characters, a section 3,000, a message 50 blocks);
/// the payload stays within them by splitting the message over sections and, past ``Limits/maximumSections``,
/// truncating it with a visible note. The message is used as Slack `mrkdwn`, as the template rendered it.
public enum SlackPayload {
    /// Slack's limits, counted in UTF-16 code units (never fewer than the characters Slack counts).
    public struct Limits: Sendable {
        public var headerCharacters: Int
        public var sectionCharacters: Int
        public var maximumSections: Int
        /// The notification text (`text`), shown where blocks are not.
        public var fallbackCharacters: Int

        public init(
            headerCharacters: Int = 150, sectionCharacters: Int = 3000, maximumSections: Int = 13,
            fallbackCharacters: Int = 3000
        ) {
            self.headerCharacters = headerCharacters
            self.sectionCharacters = sectionCharacters
            self.maximumSections = maximumSections
            self.fallbackCharacters = fallbackCharacters
        }

        /// The message room over all sections.
        public var messageCharacters: Int { sectionCharacters * maximumSections }
    }

    /// The payload for `title` (may be nil or empty) and the rendered `message`.
    public static func make(title: String?, message: String, limits: Limits = Limits()) -> JSONValue {
        var blocks: [JSONValue] = []
        let title = title.map(singleLine) ?? ""
        if !title.isEmpty {
            let header = TextTruncation.truncate(title, budget: limits.headerCharacters)
            blocks.append(["type": "header", "text": ["type": "plain_text", "text": .string(header), "emoji": true]])
        }
        let body = TextTruncation.truncate(message, budget: limits.messageCharacters)
        for chunk in chunks(of: body, size: limits.sectionCharacters) {
            blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": .string(chunk)]])
        }
        let fallbackSource = title.isEmpty ? message : title
        var fallback = TextTruncation.truncate(fallbackSource, budget: limits.fallbackCharacters)
        if fallback.allSatisfy(\.isWhitespace) { fallback = "(empty message)" }
        var payload: JSONValue = ["text": .string(fallback)]
        if !blocks.isEmpty { payload["blocks"] = .array(blocks) }
        return payload
    }

    /// Splits `text` into pieces of at most `size` UTF-16 units, at a line break in the second half of a piece
    /// when there is one, and never inside a character; blank pieces are left out.
    static func chunks(of text: String, size: Int) -> [String] {
        var pieces: [String] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let whole = TextTruncation.prefix(of: String(rest), budget: size)
            // A single character larger than a section is dropped rather than looping forever.
            guard !whole.isEmpty else {
                rest = rest.dropFirst()
                continue
            }
            var piece = Substring(whole)
            if whole.count < rest.count, let lineBreak = whole.lastIndex(of: "\n"),
                whole.utf16.distance(from: whole.startIndex, to: lineBreak) >= size / 2
            {
                piece = whole[...lineBreak]
            }
            rest = rest.dropFirst(piece.count)
            if !piece.allSatisfy(\.isWhitespace) { pieces.append(String(piece)) }
        }
        return pieces
    }

    /// A header is one line of plain text.
    private static func singleLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 }).trimmingWhitespace()
    }
}

extension String {
    /// The text without leading and trailing whitespace.
    func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}
