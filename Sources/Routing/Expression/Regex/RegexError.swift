/// Why a pattern was rejected, and where in it.
struct RegexError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. `missing ')'`.
    var message: String
    /// Offset of the problem in the pattern, in Unicode scalars from 0; nil when it concerns the whole pattern.
    var offset: Int?

    init(_ message: String, at offset: Int?) {
        self.message = message
        self.offset = offset
    }

    /// `missing ']' at offset 3 of the pattern`.
    var description: String { offset.map { "\(message) at offset \($0) of the pattern" } ?? message }
}
