/// A compiled regular expression; CEL's `matches` is a search, so any match within the text counts.
///
/// Patterns use RE2's syntax (see ``RegexParser``) and are matched by a Pike VM (``RegexProgram``) in time linear in
/// the text, so no pattern can make an evaluation backtrack without bound. As in RE2, `\d`, `\w` and `\s` are ASCII,
/// `.` does not match `\n` unless `(?s)`, and `$` matches only at the end of the text unless `(?m)`.
struct ExpressionRegex: Sendable {
    private let program: RegexProgram

    /// Compiles `pattern`, reporting an `invalidRegex` failure at `offset` if it does not compile.
    init(pattern: String, at offset: Int) throws(ExpressionFailure) {
        do {
            var parser = RegexParser(pattern)
            program = try RegexProgram(try parser.parse())
        } catch {
            throw ExpressionFailure(
                .invalidRegex,
                "invalid regular expression '\(pattern)': \(error.description)",
                at: offset)
        }
    }

    func matches(_ text: String) -> Bool {
        program.matches(text)
    }
}
