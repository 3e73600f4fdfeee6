import Resources

/// Shortens text to a budget on whole characters, ending it with a visible note of what was left out.
///
/// A cut never falls inside a character (grapheme cluster), so multi-byte UTF-8 sequences, surrogate pairs and
/// combining sequences stay whole. The budget is measured by a cost per character: UTF-16 code units for services
/// that count characters (never fewer than what they count), or escaped JSON bytes for services that limit the
/// size of the request.
public enum TextTruncation {
    /// How a character is counted against a budget.
    public enum Measure: Sendable {
        /// UTF-16 code units: one for most characters, two for emoji and other astral-plane characters.
        case utf16
        /// Bytes in a JSON string literal as ``JSONValue/jsonData(pretty:)`` writes it: UTF-8 with `"`, `\`,
        /// and control characters escaped.
        case jsonBytes

        /// The cost of one character.
        public func cost(of character: Character) -> Int {
            switch self {
            case .utf16:
                return character.utf16.count
            case .jsonBytes:
                var total = 0
                for byte in character.utf8 {
                    switch byte {
                    case 0x22, 0x5C, 0x0A, 0x0D, 0x09: total += 2
                    case 0x00..<0x20: total += 6
                    default: total += 1
                    }
                }
                return total
            }
        }

        /// The cost of a whole text.
        public func cost(of text: some StringProtocol) -> Int {
            switch self {
            case .utf16: return text.utf16.count
            case .jsonBytes: return text.reduce(0) { $0 + cost(of: $1) }
            }
        }
    }

    /// The note that ends a shortened text, naming how many characters were left out.
    public static func note(omitted: Int) -> String {
        "\n… (truncated by steady: \(omitted) more characters)"
    }

    /// `text` when it fits in `budget`; otherwise its longest prefix of whole characters that fits together with
    /// ``note(omitted:)``. When not even the note fits, the longest prefix of the note that does.
    public static func truncate(_ text: String, budget: Int, measure: Measure = .utf16) -> String {
        let budget = max(0, budget)
        if measure.cost(of: text) <= budget { return text }
        let total = text.count
        // The note for the whole text is at least as long as the note for what is actually left out.
        let widestNote = note(omitted: total)
        let room = budget - measure.cost(of: widestNote)
        guard room >= 0 else { return prefix(of: widestNote, budget: budget, measure: measure) }
        let kept = prefix(of: text, budget: room, measure: measure)
        return kept + note(omitted: total - kept.count)
    }

    /// The longest prefix of whole characters of `text` costing at most `budget`.
    public static func prefix(of text: String, budget: Int, measure: Measure = .utf16) -> String {
        var spent = 0
        var end = text.startIndex
        for index in text.indices {
            let cost = measure.cost(of: text[index])
            guard spent + cost <= budget else { break }
            spent += cost
            end = text.index(after: index)
        }
        return String(text[..<end])
    }
}
