import Resources

/// The parsed, unchecked form of an expression: a tree that still names identifiers and functions by text.
struct ExpressionSyntax: Sendable {
    indirect enum Kind: Sendable {
        case literal(JSONValue)
        case identifier(String)
        /// `base.field`
        case select(ExpressionSyntax, field: String)
        /// `base[index]`
        case index(ExpressionSyntax, ExpressionSyntax)
        /// `function(arguments)` or `receiver.function(arguments)`; `nameOffset` points at the function name.
        case call(function: String, nameOffset: Int, receiver: ExpressionSyntax?, arguments: [ExpressionSyntax])
        case unary(ExpressionUnaryOperator, ExpressionSyntax)
        case binary(ExpressionBinaryOperator, ExpressionSyntax, ExpressionSyntax)
        case and(ExpressionSyntax, ExpressionSyntax)
        case or(ExpressionSyntax, ExpressionSyntax)
        case conditional(ExpressionSyntax, ExpressionSyntax, ExpressionSyntax)
        case list([ExpressionSyntax])
        case map([(key: ExpressionSyntax, value: ExpressionSyntax)])
    }

    var kind: Kind
    /// Where errors about this node point: the operator, the dot, the bracket, or the start of a literal.
    var offset: Int
    /// Height of the tree below and including this node, checked against ``Expression/Limits/maxDepth``.
    var depth: Int
}
