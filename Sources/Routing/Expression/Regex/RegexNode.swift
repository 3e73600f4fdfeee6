/// A parsed regular expression. The parser bounds its depth, so walking it recursively is safe.
indirect enum RegexNode: Sendable, Equatable {
    /// Matches the empty string: `()` or an empty alternative.
    case empty
    /// One scalar, exactly.
    case scalar(Unicode.Scalar)
    /// One scalar in the set: a class, `.`, `\d`, or a case-insensitive literal.
    case set(RegexCharacterSet)
    /// An empty-width test: `^`, `$`, `\b` and their relatives.
    case assertion(RegexAssertion)
    case concatenation([RegexNode])
    case alternation([RegexNode])
    /// `x*`, `x+`, `x?`, `x{m}`, `x{m,}`, `x{m,n}`; `maximum` is nil when unbounded.
    case repetition(RegexNode, minimum: Int, maximum: Int?)
}

/// The empty-width tests a pattern may make at a position between two scalars.
enum RegexAssertion: Sendable, Equatable {
    /// `^` (and `\A`): the start of the text.
    case startOfText
    /// `$` (and `\z`): the end of the text.
    case endOfText
    /// `^` under `(?m)`: the start of the text or just after `\n`.
    case startOfLine
    /// `$` under `(?m)`: the end of the text or just before `\n`.
    case endOfLine
    /// `\b`: between a word character and a non-word character (or an end of the text).
    case wordBoundary
    /// `\B`.
    case notWordBoundary

    /// Whether the test holds between `previous` and `next` (nil at either end of the text).
    func holds(after previous: Unicode.Scalar?, before next: Unicode.Scalar?) -> Bool {
        switch self {
        case .startOfText: previous == nil
        case .endOfText: next == nil
        case .startOfLine: previous == nil || previous == "\n"
        case .endOfLine: next == nil || next == "\n"
        case .wordBoundary: Self.isWord(previous) != Self.isWord(next)
        case .notWordBoundary: Self.isWord(previous) == Self.isWord(next)
        }
    }

    private static func isWord(_ scalar: Unicode.Scalar?) -> Bool {
        guard let scalar else { return false }
        return RegexCharacterSet.wordCharacters.contains(scalar)
    }
}
