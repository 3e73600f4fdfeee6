import Resources
import Routing
import Testing

// Foundation also declares an `Expression` type; this file means the route expression.
private typealias Expression = Routing.Expression

/// One random expression written twice: `folded` spells some leaves as literals, which the compiler folds;
/// `unfolded` reads the same values from the event (`input.cN`), which the compiler cannot fold. Evaluated over
/// `input`, the two must agree.
private struct ExpressionPair {
    var folded = ""
    var unfolded = ""
}

private struct PairGenerator {
    var random: SeededGenerator
    var input: [String: JSONValue] = [:]

    /// Literals with the value the event carries in their place.
    static let literals: [(source: String, value: JSONValue)] = [
        ("0", .int(0)), ("1", .int(1)), ("-3", .int(-3)), ("7", .int(7)),
        ("9223372036854775807", .int(.max)), ("0.5", .double(0.5)), ("-1.5", .double(-1.5)), ("2.0", .double(2)),
        ("''", .string("")), ("'a'", .string("a")), ("'ab'", .string("ab")), ("'Ab'", .string("Ab")),
        ("'12'", .string("12")), ("true", .bool(true)), ("false", .bool(false)), ("null", .null),
        ("[1, 2]", .array([.int(1), .int(2)])), ("['a']", .array([.string("a")])), ("[]", .array([])),
        ("{'k': 1}", .object(["k": .int(1)])), ("{'a': 'b'}", .object(["a": .string("b")])),
    ]
    static let binaryOperators = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||"]

    mutating func leaf() -> ExpressionPair {
        let literal = Self.literals.randomElement(using: &random)!
        let name = "c\(input.count)"
        input[name] = literal.value
        // A quarter of the leaves read the event in both spellings, so that folding stops part-way up the tree.
        let readsTheEventInBoth = Int.random(in: 0..<4, using: &random) == 0
        return ExpressionPair(folded: readsTheEventInBoth ? "input.\(name)" : literal.source, unfolded: "input.\(name)")
    }

    mutating func pair(depth: Int) -> ExpressionPair {
        if depth == 0 || Int.random(in: 0..<5, using: &random) == 0 { return leaf() }
        switch Int.random(in: 0..<9, using: &random) {
        case 0:
            let op = ["!", "-"].randomElement(using: &random)!
            return combine([pair(depth: depth - 1)]) { "\(op)(\($0[0]))" }
        case 1, 2, 3:
            let op = Self.binaryOperators.randomElement(using: &random)!
            return combine([pair(depth: depth - 1), pair(depth: depth - 1)]) { "(\($0[0]) \(op) \($0[1]))" }
        case 4:
            return combine([pair(depth: depth - 1), pair(depth: depth - 1), pair(depth: depth - 1)]) {
                "(\($0[0]) ? \($0[1]) : \($0[2]))"
            }
        case 5:
            let function = ["size", "string", "int", "double", "type", "lowerAscii", "upperAscii"]
                .randomElement(using: &random)!
            return combine([pair(depth: depth - 1)]) { "\(function)(\($0[0]))" }
        case 6:
            let function = ["contains", "startsWith", "endsWith"].randomElement(using: &random)!
            return combine([pair(depth: depth - 1), pair(depth: depth - 1)]) { "\($0[0]).\(function)(\($0[1]))" }
        case 7:
            return combine([pair(depth: depth - 1), pair(depth: depth - 1)]) { "\($0[0])[\($0[1])]" }
        default:
            let macro = ["exists", "all", "exists_one", "filter", "map"].randomElement(using: &random)!
            return combine([pair(depth: depth - 1), pair(depth: depth - 1), pair(depth: depth - 1)]) {
                "[\($0[0]), \($0[1])].\(macro)(v, v == \($0[2]))"
            }
        }
    }

    private func combine(_ parts: [ExpressionPair], _ write: ([String]) -> String) -> ExpressionPair {
        ExpressionPair(folded: write(parts.map(\.folded)), unfolded: write(parts.map(\.unfolded)))
    }
}

/// What one evaluation gave: a value, or the code of the error.
private enum Outcome: Equatable, CustomStringConvertible {
    case value(JSONValue)
    case failure(ExpressionError.Code)

    init(_ expression: Expression, over input: JSONValue) {
        do {
            self = .value(try expression.evaluate(input: input))
        } catch {
            self = .failure(error.code)
        }
    }

    var description: String {
        switch self {
        case .value(let value): "\(value)"
        case .failure(let code): "error \(code)"
        }
    }
}

// Folding evaluates constant sub-trees at compile time with the same evaluator; this checks that doing so never
// changes a result, over thousands of random trees mixing literals, event fields, operators, calls and macros.
@Test(.timeLimit(.minutes(2))) func constantFoldingAgreesWithEvaluation() throws {
    var compared = 0
    for seed in UInt64(1)...8000 {
        var generator = PairGenerator(random: SeededGenerator(state: seed))
        let pair = generator.pair(depth: 4)
        let input = JSONValue.object(generator.input)
        // A type error that folding proves certain is a compile error, by design; only programs that compile on
        // both sides are compared.
        guard let folded = try? Expression(pair.folded), let unfolded = try? Expression(pair.unfolded) else {
            continue
        }
        compared += 1
        let expected = Outcome(unfolded, over: input)
        let actual = Outcome(folded, over: input)
        #expect(actual == expected, "seed \(seed): \(pair.folded) gave \(actual); \(pair.unfolded) gave \(expected)")
    }
    // The generator must produce mostly well-typed programs, or the property says little.
    #expect(compared > 1500, "only \(compared) of 8,000 generated expressions compiled")
}
