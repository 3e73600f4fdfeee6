import Resources
import Routing
import SteadyTesting
import Testing

@testable import Events

/// The route index leaves out only routes that cannot match: evaluating the candidates gives exactly what
/// evaluating every route gives, in the same order.
@Suite(.timeLimit(.minutes(1))) struct RouteIndexTests {
    static let sources = [
        #"input.route == "r0""#,
        #"input.kind == "scan" && input.route == "r1""#,
        #"input.route in ["r2", "r3"]"#,
        #"input.severity >= 3"#,
        #"input.route == "r1" || input.route == "r4""#,
        #"input.meta.source == "trivy" && has(input.route)"#,
        #"input.route != "r0""#,
        "",
        #"(input.route == "r0") && input.kind.startsWith("sc")"#,
    ]

    static func expressions() throws -> [Expression] {
        try sources.map { try Expression($0) }
    }

    @Test func equalityAndMembershipTestsAreIndexedAndEverythingElseIsACandidateForEveryEvent() throws {
        let required = try Self.expressions().map { $0.requiredInputString }
        #expect(required[0]?.path == ["route"] && required[0]?.values == ["r0"])
        #expect(required[1]?.path == ["kind"] && required[1]?.values == ["scan"])
        #expect(required[2]?.path == ["route"] && required[2]?.values == ["r2", "r3"])
        #expect(required[3] == nil)
        #expect(required[4] == nil, "an || can match without either test")
        #expect(required[5]?.path == ["meta", "source"] && required[5]?.values == ["trivy"])
        #expect(required[6] == nil, "a negated test is not required")
        #expect(required[7] == nil)
        #expect(required[8]?.path == ["route"] && required[8]?.values == ["r0"])
        let index = RouteIndex(try Self.expressions())
        #expect(index.candidates(for: ["route": "r2"]) == [2, 3, 4, 6, 7])
        #expect(index.candidates(for: ["route": "r0", "kind": "scan"]) == [0, 1, 3, 4, 6, 7, 8])
        #expect(index.candidates(for: ["route": 7]) == [3, 4, 6, 7], "a number is no string of the index")
    }

    @Test func theCandidatesThatMatchAreExactlyTheRoutesThatMatch() throws {
        let expressions = try Self.expressions()
        let index = RouteIndex(expressions)
        var generator = SeededGenerator(seed: 42)
        let routes: [JSONValue] = ["r0", "r1", "r2", "r3", "r4", "r5", 3, .null]
        let kinds: [JSONValue] = ["scan", "scanner", "audit", 1]
        for _ in 0..<2_000 {
            var members: [String: JSONValue] = [:]
            if Bool.random(using: &generator) { members["route"] = routes.randomElement(using: &generator) }
            if Bool.random(using: &generator) { members["kind"] = kinds.randomElement(using: &generator) }
            if Bool.random(using: &generator) { members["severity"] = .int(Int64.random(in: 0...5, using: &generator)) }
            if Bool.random(using: &generator) {
                members["meta"] = ["source": Bool.random(using: &generator) ? "trivy" : "tracee"]
            }
            let event = JSONValue.object(members)
            let scanned = expressions.indices.filter { expressions[$0].matches(event) }
            let indexed = index.candidates(for: event).filter { expressions[$0].matches(event) }
            #expect(indexed == scanned, "\(event)")
        }
    }
}
