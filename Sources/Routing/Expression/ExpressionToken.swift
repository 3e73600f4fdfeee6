/// One token of an expression's source.
struct ExpressionToken: Sendable {
    enum Kind: Sendable, Equatable {
        case identifier(String)
        /// The magnitude of an integer literal; the parser applies a leading minus so `-9223372036854775808` fits.
        case integer(UInt64)
        case double(Double)
        case string(String)
        case boolean(Bool)
        case null
        case symbol(Symbol)
        case end
    }

    /// Operators and punctuation; `in` is a symbol because it is an operator, not an identifier.
    enum Symbol: String, Sendable {
        case leftParen = "("
        case rightParen = ")"
        case leftBracket = "["
        case rightBracket = "]"
        case leftBrace = "{"
        case rightBrace = "}"
        case dot = "."
        case comma = ","
        case question = "?"
        case colon = ":"
        case not = "!"
        case minus = "-"
        case plus = "+"
        case star = "*"
        case slash = "/"
        case percent = "%"
        case equal = "=="
        case notEqual = "!="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
        case and = "&&"
        case or = "||"
        case `in` = "in"
    }

    var kind: Kind
    /// Offset of the first scalar, in Unicode scalars.
    var offset: Int
    /// Length in Unicode scalars, used to quote the token in error messages.
    var length: Int
}
