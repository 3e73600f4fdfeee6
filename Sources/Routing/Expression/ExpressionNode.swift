import Resources

/// The checked, executable form of an expression: names resolved, functions bound, constants folded.
///
/// Offsets are kept on the nodes that can fail, so runtime errors still point into the source.
indirect enum ExpressionNode: Sendable {
    case constant(JSONValue)
    case input
    /// A comprehension variable, by its slot in the evaluator's variable array.
    case variable(Int)
    /// A chain of field selections, fused so `input.a.b.c` is one loop instead of three recursive calls.
    case path(ExpressionNode, [PathStep])
    /// `has(base.field)`.
    case presence(ExpressionNode, field: String)
    case index(ExpressionNode, ExpressionNode, offset: Int)
    case unary(ExpressionUnaryOperator, ExpressionNode, offset: Int)
    case and(ExpressionNode, ExpressionNode, offset: Int)
    case or(ExpressionNode, ExpressionNode, offset: Int)
    case conditional(ExpressionNode, ExpressionNode, ExpressionNode, offset: Int)
    case binary(ExpressionBinaryOperator, ExpressionNode, ExpressionNode, offset: Int)
    /// `x == "literal"`, the most common route test, compared without a generic dispatch.
    case equalsString(ExpressionNode, String, negated: Bool)
    /// `x in ["a", "b", …]` against a literal list of strings, answered by hashing.
    case inStrings(ExpressionNode, Set<String>)
    case call1(ExpressionFunction, ExpressionNode, name: String, offset: Int)
    case call2(ExpressionFunction, ExpressionNode, ExpressionNode, name: String, offset: Int)
    /// A regular expression match whose pattern was a literal, compiled once at compile time.
    case matchRegex(ExpressionNode, ExpressionRegex, offset: Int)
    case list([ExpressionNode])
    case map([MapEntry], offset: Int)
    case comprehension(Comprehension)

    struct PathStep: Sendable {
        var field: String
        var offset: Int
    }

    struct MapEntry: Sendable {
        var key: ExpressionNode
        var value: ExpressionNode
    }

    /// `range.exists(v, predicate)` and its relatives.
    struct Comprehension: Sendable {
        enum Kind: String, Sendable {
            case all, exists, existsOne = "exists_one", filter, map
        }

        var kind: Kind
        var range: ExpressionNode
        var slot: Int
        /// The predicate of all, exists, exists_one and filter, and the optional filter of three-argument map.
        var predicate: ExpressionNode?
        /// The transform of map.
        var transform: ExpressionNode?
        var offset: Int
    }

    var constantValue: JSONValue? {
        if case .constant(let value) = self { return value }
        return nil
    }
}
