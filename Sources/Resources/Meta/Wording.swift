import Foundation

/// Small pieces of English shared by messages.
public enum Wording {
    /// `1 runner`, `2 runners`: the count and the noun, with an `s` unless the count is one.
    public static func count(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }
}

extension Wording {
    /// At most `limit` characters, ending in `...` when cut.
    public static func truncate(_ text: String, to limit: Int) -> String {
        guard text.count > limit, limit > 3 else { return text }
        return String(text.prefix(limit - 3)) + "..."
    }

    /// The lines of `text` trimmed and joined with single spaces, for a table cell or a one-line summary.
    public static func singleLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
    }
}
