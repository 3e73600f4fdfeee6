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

/// An event with a long string and a list to iterate over, as a hostile sender could post.
private func bulkyEvent(stringBytes: Int, items: Int) -> JSONValue {
    .object([
        "s": .string(String(repeating: "a", count: stringBytes)),
        "items": .array((0..<items).map { .int(Int64($0)) }),
    ])
}

private func evaluationError(_ source: String, over input: JSONValue, limits: Expression.Limits = .init()) throws
    -> ExpressionError?
{
    let expression = try Expression(source, limits: limits)
    do {
        _ = try expression.evaluate(input: input)
        return nil
    } catch {
        return error
    }
}

// Each iteration builds 200 KB; a thousand of them would hold 200 MB at once.
@Test(.timeLimit(.minutes(1))) func evaluationMemoryIsBounded() throws {
    let event = bulkyEvent(stringBytes: 100_000, items: 1000)
    let error = try #require(try evaluationError("input.items.map(x, input.s + input.s).size() > 0", over: event))
    #expect(error.code == .tooComplex)
    #expect(error.message.contains("bytes"), "\(error)")
    #expect(try evaluationError("size(input.s + input.s) == 200000", over: event) == nil)
}

// Scanning a megabyte a thousand times costs a gigabyte of work in 1,001 steps unless strings pay for their length.
@Test(.timeLimit(.minutes(1))) func evaluationStepsChargeForStringLength() throws {
    let event = bulkyEvent(stringBytes: 1 << 20, items: 1000)
    // Time is left unbounded here, so that only the step budget can stop the evaluation.
    let untimed = Expression.Limits(maxEvaluationTime: .seconds(3600))
    let error = try #require(
        try evaluationError("input.items.all(x, !input.s.contains('zz'))", over: event, limits: untimed))
    #expect(error.code == .tooComplex)
    #expect(error.message.contains("steps"), "\(error)")
    #expect(try Expression("!input.s.contains('zz')").matches(event))
}

// The time budget is a backstop behind steps: with steps unbounded, it alone stops the evaluation.
@Test(.timeLimit(.minutes(1))) func evaluationTimeIsBounded() throws {
    let event = bulkyEvent(stringBytes: 0, items: 100_000)
    let limits = Expression.Limits(maxEvaluationSteps: .max, maxEvaluationTime: .zero)
    let error = try #require(try evaluationError("input.items.all(x, x >= 0)", over: event, limits: limits))
    #expect(error.code == .tooComplex)
    #expect(error.message.contains("of CPU time"), "\(error)")
    #expect(try evaluationError("input.items.all(x, x >= 0)", over: bulkyEvent(stringBytes: 0, items: 10)) == nil)
}
