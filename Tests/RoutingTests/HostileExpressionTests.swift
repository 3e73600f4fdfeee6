import Foundation
import Resources
import Routing
import Testing

// Foundation also declares an `Expression` type; this file means the route expression.
private typealias Expression = Routing.Expression

/// Limits that let any source length through, so that only the nesting bound stands between the input and a
/// recursive parser, compiler or evaluator.
private let unlimitedLength = Expression.Limits(maxSourceLength: 10_000_000, maxNodes: 10_000_000)

private func compileError(_ source: String) -> ExpressionError? {
    do {
        _ = try Expression(source, limits: unlimitedLength)
        return nil
    } catch {
        return error
    }
}

private func repeated(_ prefix: String, _ count: Int, _ middle: String, _ suffix: String = "") -> String {
    String(repeating: prefix, count: count) + middle + String(repeating: suffix, count: count)
}

/// A hostile source, shown in test output by its shape alone: the source itself is hundreds of kilobytes.
private struct HostileSource: Sendable, CustomTestStringConvertible {
    let shape: String
    let source: String
    init(_ shape: String, _ source: String) {
        self.shape = shape
        self.source = source
    }
    var testDescription: String { shape }
}

// Each of these nests 100,000 levels deep; a recursive step taken before the bound is checked would overflow the
// stack and kill the process, so the test fails by crashing.
@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        HostileSource("parentheses", repeated("(", 100_000, "1", ")")),
        HostileSource("not", repeated("!", 100_000, "true")),
        HostileSource("negation", repeated("-", 100_000, "1")),
        HostileSource("negation of groups", repeated("-(", 100_000, "1", ")")),
        HostileSource("lists", repeated("[", 100_000, "1", "]")),
        HostileSource("maps", repeated("{'k': ", 100_000, "1", "}")),
        HostileSource("member chain", "input" + String(repeating: ".a", count: 100_000)),
        HostileSource("index chain", "input" + String(repeating: "[0]", count: 100_000)),
        HostileSource("nested index", repeated("input[", 100_000, "0", "]")),
        HostileSource("calls", repeated("size(", 100_000, "'x'", ")")),
        HostileSource("method chain", "input" + String(repeating: ".lowerAscii()", count: 100_000)),
        HostileSource("conditionals", repeated("true ? 1 : ", 100_000, "2")),
        HostileSource("left-associative sums", Array(repeating: "1", count: 100_000).joined(separator: " + ")),
        HostileSource("relations", Array(repeating: "1", count: 100_000).joined(separator: " == ")),
        HostileSource("comprehensions", repeated("input.exists(x, ", 100_000, "true", ")")),
        HostileSource("mixed", repeated("!(-[{'a': size(", 20_000, "1", ")}])")),
    ])
private func deeplyNestedExpressionsAreRejected(_ hostile: HostileSource) throws {
    let (shape, source) = (hostile.shape, hostile.source)
    let error = try #require(compileError(source), "\(shape) compiled")
    #expect(error.code == .tooComplex, "\(shape): \(error)")
    #expect(error.message.contains("32 levels deep") || error.message.contains("nodes"), "\(shape): \(error)")
}

// Long chains of `&&` and `||` are balanced, so they are as deep as the logarithm of their length.
@Test(.timeLimit(.minutes(2))) func longLogicalChainsAreShallow() throws {
    let limits = Expression.Limits(maxSourceLength: 10_000_000, maxNodes: 100_000)
    let chain = Array(repeating: "input.a == 1", count: 10_000).joined(separator: " || ")
    #expect(try Expression(chain, limits: limits).matches(["a": 1]))
}

/// `[[[…1…]]]`, `depth` arrays deep, parsed as an event would be.
private func deepEvent(_ depth: Int) throws -> JSONValue {
    try JSONValue.parse(Data((String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)).utf8))
}

// Events are parsed with a depth bound; everything the evaluator does to a value (compare, contain, concatenate,
// iterate) is then bounded by it, and the evaluator itself walks only the expression.
@Test(.timeLimit(.minutes(2))) func deeplyNestedEventsAreBoundedByTheJSONParser() throws {
    #expect(throws: JSONParseError.self) { try deepEvent(100_000) }
    let event = try deepEvent(JSONValue.maximumDepth)
    let sources = [
        "input == input", "input != [1]", "input in [input]", "[input] == [input]", "{'k': input} == {'k': input}",
        "size(input + input) == 2", "input.exists(x, x == input[0])", "input.map(x, [x, input]).size() == 1",
        "input.filter(x, x == input).size() == 0", "dyn(input) == input",
    ]
    for source in sources {
        #expect(try Expression(source).matches(event), "\(source)")
    }
    #expect(try !Expression("string(input) == ''").matches(event))
}
