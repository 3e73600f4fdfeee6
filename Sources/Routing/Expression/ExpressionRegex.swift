import Foundation

/// A compiled regular expression; CEL's `matches` is a search, so any match within the text counts.
struct ExpressionRegex: Sendable {
    private let regex: NSRegularExpression

    /// Compiles `pattern`, reporting an `invalidRegex` failure at `offset` if it does not compile.
    init(pattern: String, at offset: Int) throws(ExpressionFailure) {
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw ExpressionFailure(.invalidRegex, "invalid regular expression '\(pattern)'", at: offset)
        }
    }

    func matches(_ text: String) -> Bool {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
