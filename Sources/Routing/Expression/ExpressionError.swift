/// A problem found while compiling or evaluating an ``Expression``, with its position in the source.
public struct ExpressionError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem it is; compare against the static members, e.g. `error.code == .syntax`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable, lower-camel-case name such as `"noSuchField"`.
        public let rawValue: String

        /// Creates a code from its name.
        public init(rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// The source is not a well-formed expression (bad token, missing parenthesis, unterminated string).
        public static let syntax = Code(rawValue: "syntax")
        /// A call names a function or macro the language does not have.
        public static let unknownFunction = Code(rawValue: "unknownFunction")
        /// An identifier other than `input` or a bound comprehension variable.
        public static let unknownIdentifier = Code(rawValue: "unknownIdentifier")
        /// A known function called with the wrong number of arguments.
        public static let wrongArgumentCount = Code(rawValue: "wrongArgumentCount")
        /// A macro such as `has()` or `exists()` whose arguments have the wrong shape.
        public static let invalidArgument = Code(rawValue: "invalidArgument")
        /// An operator or function applied to values of types it does not accept.
        public static let typeMismatch = Code(rawValue: "typeMismatch")
        /// A field or map key that the value does not have.
        public static let noSuchField = Code(rawValue: "noSuchField")
        /// A list index outside the list.
        public static let indexOutOfRange = Code(rawValue: "indexOutOfRange")
        /// Integer division or remainder by zero, or division of a number by zero.
        public static let divisionByZero = Code(rawValue: "divisionByZero")
        /// Integer arithmetic or conversion outside the 64-bit range.
        public static let overflow = Code(rawValue: "overflow")
        /// A value that `int()`, `double()` or `string()` cannot convert.
        public static let invalidConversion = Code(rawValue: "invalidConversion")
        /// A regular expression that does not compile.
        public static let invalidRegex = Code(rawValue: "invalidRegex")
        /// The source is too long, nests too deeply, has too many nodes, or evaluation took too many steps.
        public static let tooComplex = Code(rawValue: "tooComplex")
    }

    /// The kind of problem.
    public var code: Code
    /// A human-readable explanation without the position, e.g. `expected ')' but found end of expression`.
    public var message: String
    /// Offset of the problem in the source, counted in Unicode scalars from 0.
    public var offset: Int
    /// 1-based line of the problem.
    public var line: Int
    /// 1-based column of the problem, counted in Unicode scalars.
    public var column: Int

    /// Creates an error; `line` and `column` are worked out from `offset` within `source`.
    public init(code: Code, message: String, offset: Int, in source: String) {
        self.code = code
        self.message = message
        self.offset = offset
        (line, column) = Self.lineAndColumn(of: offset, in: source)
    }

    /// `line:column: message`, for example `1:17: expected ')' but found end of expression`.
    public var description: String { "\(line):\(column): \(message)" }

    /// Counts lines and columns in Unicode scalars, so they agree with `offset`.
    static func lineAndColumn(of offset: Int, in source: String) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        var index = 0
        for scalar in source.unicodeScalars {
            if index >= offset { break }
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            index += 1
        }
        return (line, column)
    }
}
