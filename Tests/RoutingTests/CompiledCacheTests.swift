import Resources
import Routing
import Testing

private let route: JSONValue = [
    "apiVersion": "steady.dev/v1", "kind": "Route", "metadata": ["name": "alerts"],
    "spec": [
        "input": "input.severity == 'CRITICAL'", "actions": ["notify"],
        "dedup": ["keys": ["input.id"], "window": "5m"],
    ],
]

private let template: JSONValue = [
    "apiVersion": "steady.dev/v1", "kind": "Template", "metadata": ["name": "summary"],
    "spec": ["type": "mustache", "title": "{{input.title}}", "body": "{{#input.items}}{{.}}{{/input.items}}"],
]

@Test(.timeLimit(.minutes(2))) func admittingTheSameObjectAgainCompilesNothing() throws {
    let cache = CompiledCache()
    _ = try Admission.admit(Kinds.route, route, compiled: cache)
    _ = try Admission.admit(Kinds.template, template, compiled: cache)
    // Two expressions (input and one dedup key) and two template fields.
    #expect(cache.statistics == CompiledCache.Statistics(compilations: 4, hits: 0))
    _ = try Admission.admit(Kinds.route, route, compiled: cache)
    _ = try Admission.admit(Kinds.template, template, compiled: cache)
    // What a reconciler asks for later is there too.
    _ = try cache.expression("input.severity == 'CRITICAL'")
    _ = try cache.template("{{input.title}}", field: "spec.title")
    #expect(cache.statistics == CompiledCache.Statistics(compilations: 4, hits: 6))
}

@Test(.timeLimit(.minutes(2))) func aChangedSourceIsCompiledAndFailuresAreNotKept() throws {
    let cache = CompiledCache()
    _ = try cache.expression("input.a == 1")
    _ = try cache.expression("input.a == 2")
    #expect(cache.statistics.compilations == 2)
    for _ in 0..<2 {
        #expect(throws: ExpressionError.self) { try cache.expression("input.a ==") }
    }
    // A failure names its own field each time.
    for field in ["spec.title", "spec.body"] {
        #expect(throws: FieldError(path: field, message: "1:8: section is not closed in \"{{#a}}x\"")) {
            try cache.template("{{#a}}x", field: field)
        }
    }
    #expect(cache.statistics.compilations == 6)
}

@Test(.timeLimit(.minutes(2))) func theCacheIsBounded() throws {
    let cache = CompiledCache(entriesPerGeneration: 2)
    for value in 0..<10 { _ = try cache.expression("input.a == \(value)") }
    // Only the last two generations (the last four sources at most) are kept.
    _ = try cache.expression("input.a == 9")
    _ = try cache.expression("input.a == 8")
    #expect(cache.statistics.hits == 2)
    _ = try cache.expression("input.a == 0")
    #expect(cache.statistics.compilations == 11)
    // A source in use stays, however many others pass through.
    let bytes = CompiledCache(entriesPerGeneration: 100, bytesPerGeneration: 30)
    _ = try bytes.expression("input.a == 'long enough to fill it'")
    _ = try bytes.expression("input.a == 'long enough to fill it'")
    #expect(bytes.statistics == CompiledCache.Statistics(compilations: 2, hits: 0))
}
