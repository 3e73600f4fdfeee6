/// Prefix operators.
enum ExpressionUnaryOperator: String, Sendable {
    case not = "!"
    case negate = "-"
}

/// Infix operators other than `&&` and `||`, whose error-absorbing evaluation sets them apart.
enum ExpressionBinaryOperator: String, Sendable, CaseIterable {
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case remainder = "%"
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case `in` = "in"
}
