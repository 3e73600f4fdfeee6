import Resources

/// A compiled route expression: a subset of CEL (Common Expression Language) evaluated over an event's JSON,
/// plus Postee's Rego-style functions such as `contains(input.image, "alpine")`.
///
/// The event is `input`; the only other names are comprehension variables. The language has
/// - literals: `1`, `0x1F`, `1.5`, `'s'`, `"s"`, `r"raw"`, `'''multi-line'''`, `true`, `null`, `[1, 2]`, `{"a": 1}`;
/// - `a.b`, `a[0]`, `a["key"]`; a missing field is an error (so no match), while `has(a.b)` tests presence and is
///   false when any field on the way is missing;
/// - operators with CEL precedence: `? :`, `||`, `&&`, `== != < <= > >= in`, `+ -`, `* / %`, `! -`; `&&` and `||`
///   are commutative and absorb errors (`false && error` is false); numbers compare and, unlike CEL, combine
///   across int and double, since JSON does not distinguish `2` from `2.0`;
/// - `size`, `contains`, `startsWith`, `endsWith`, `matches` (a search in RE2 syntax, in time linear in the text;
///   the pattern must be a string literal), `lowerAscii`, `upperAscii`, `int`, `double`, `string`, `type`, `dyn`,
///   callable as `f(x, y)` or `x.f(y)`;
/// - the macros `all`, `exists`, `exists_one`, `filter` and `map` (2 or 3 arguments) on lists, and on maps over
///   their keys;
/// - Postee/Rego spellings: `contains` (also list membership), `startswith`, `endswith`, `lower`, `upper`,
///   `count`, `regex.match(pattern, s)` and `re_match`.
///
/// Compile once and evaluate many times; compilation resolves names, checks types where they are known
/// and folds constants, so evaluation only walks a small tree.
///
/// ```swift
/// let critical = try Expression(#"input.Vulnerabilities.exists(v, v.Severity == "CRITICAL")"#)
/// if critical.matches(event) { … }
/// ```
public struct Expression: Sendable {
    /// Bounds that keep hostile or accidental expressions cheap to compile and evaluate.
    public struct Limits: Sendable {
        /// Longest accepted source, in Unicode scalars.
        public var maxSourceLength: Int
        /// Deepest nesting of the syntax tree (operators, calls, parentheses).
        public var maxDepth: Int
        /// Most nodes in the syntax tree.
        public var maxNodes: Int
        /// Most evaluation steps for one evaluation; bounds the cost of comprehensions over large inputs.
        ///
        /// Work on a value is paid for by its size: a step per list or map entry, and a step per 64 bytes of a
        /// string that is compared, searched or concatenated. The budget therefore bounds time as well as
        /// iterations, whatever the size of the event.
        public var maxEvaluationSteps: Int
        /// Most bytes of new strings and list or map entries (16 bytes each) one evaluation may build; bounds the
        /// memory of `s + s` or `map()` repeated over a large event.
        public var maxEvaluationBytes: Int
        /// Most CPU time one evaluation may use, a backstop behind the step budget (checked every 1,024 steps).
        public var maxEvaluationTime: Duration

        /// Creates limits; the defaults suit route expressions.
        public init(
            maxSourceLength: Int = 4096, maxDepth: Int = 32, maxNodes: Int = 1000, maxEvaluationSteps: Int = 100_000,
            maxEvaluationBytes: Int = 1 << 20, maxEvaluationTime: Duration = .milliseconds(250)
        ) {
            self.maxSourceLength = maxSourceLength
            self.maxDepth = maxDepth
            self.maxNodes = maxNodes
            self.maxEvaluationSteps = maxEvaluationSteps
            self.maxEvaluationBytes = maxEvaluationBytes
            self.maxEvaluationTime = maxEvaluationTime
        }
    }

    /// The text the expression was compiled from.
    public let source: String
    /// The limits it was compiled with; evaluation uses the `maxEvaluation…` ones.
    public let limits: Limits
    private let root: ExpressionNode
    private let variableCount: Int

    /// Parses and checks `source`; empty or whitespace-only source compiles to an expression that matches every
    /// event.
    ///
    /// - Throws: ``ExpressionError`` with the position of the first problem: a syntax error, an unknown function
    ///   or identifier, a type error certain at compile time, an invalid literal regular expression, or a limit.
    public init(_ source: String, limits: Limits = Limits()) throws(ExpressionError) {
        self.source = source
        self.limits = limits
        // UTF-8 length is O(1) and never less than the scalar count, so most sources skip the count.
        if source.utf8.count > limits.maxSourceLength {
            let length = source.unicodeScalars.count
            if length > limits.maxSourceLength {
                throw ExpressionError(
                    code: .tooComplex,
                    message: "expression is \(length) characters long; the limit is \(limits.maxSourceLength)",
                    offset: limits.maxSourceLength, in: source)
            }
        }
        if source.allSatisfy(\.isWhitespace) {
            root = .constant(.bool(true))
            variableCount = 0
            return
        }
        var lexer = ExpressionLexer(source: source)
        var parser = ExpressionParser(source: source, tokens: try lexer.tokenize(), limits: limits)
        let syntax = try parser.parse()
        var compiler = ExpressionCompiler(source: source, limits: limits)
        root = try compiler.compile(syntax).node
        variableCount = compiler.variableCount
    }

    /// Evaluates the expression with `input` bound to `input`.
    ///
    /// - Throws: ``ExpressionError`` for run-time failures such as a missing field (`noSuchField`), an operator
    ///   applied to the wrong types, division by zero, or running out of evaluation steps (`tooComplex`).
    public func evaluate(input: JSONValue) throws(ExpressionError) -> JSONValue {
        var evaluator = ExpressionEvaluator(input: input, variableCount: variableCount, limits: limits)
        do {
            return try evaluator.evaluate(root)
        } catch {
            throw error.expressionError(in: source)
        }
    }

    /// True iff evaluation yields boolean `true`; evaluation errors (e.g. a missing field) count as no match.
    public func matches(_ input: JSONValue) -> Bool {
        var evaluator = ExpressionEvaluator(input: input, variableCount: variableCount, limits: limits)
        guard case .bool(true)? = try? evaluator.evaluate(root) else { return false }
        return true
    }
}

extension Expression {
    /// A string test on the event that every match passes: `input.a.b == "x"` or `input.a.b in ["x", "y"]`, as the
    /// whole expression or as one operand of its top-level `&&`s. Nil when there is none.
    ///
    /// A route table indexes routes by it, so that an event is evaluated only against the routes it can match:
    /// an `&&` is `true` only when both operands are, and such a test is `true` only when the value at `path` is one
    /// of `values`.
    public var requiredInputString: (path: [String], values: Set<String>)? {
        Self.requiredInputString(in: root)
    }

    private static func requiredInputString(in node: ExpressionNode) -> (path: [String], values: Set<String>)? {
        switch node {
        case .equalsString(.path(.input, let steps), let text, negated: false):
            return (steps.map(\.field), [text])
        case .inStrings(.path(.input, let steps), let set):
            return (steps.map(\.field), set)
        case .and(let left, let right, _):
            return requiredInputString(in: left) ?? requiredInputString(in: right)
        default:
            return nil
        }
    }
}
