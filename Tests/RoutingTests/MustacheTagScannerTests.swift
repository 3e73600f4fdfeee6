import Mustache
import Testing

@testable import Routing

/// How deeply the parsed template nests, read from its private token tree by reflection: one level per template
/// held inside another.
private func parsedDepth(_ value: Any) -> Int {
    let deepest = Mirror(reflecting: value).children.map { parsedDepth($0.value) }.max() ?? 0
    return value is MustacheTemplate ? deepest + 1 : deepest
}

/// Builds a well-nested template at random, with every kind of tag, delimiter changes (which, in swift-mustache,
/// end with the section they were made in), comments, the whitespace the parser allows inside tags, and text with
/// pieces of delimiters in it.
private struct TemplateGenerator {
    var random: SeededGenerator
    var text = ""
    var open: [(kind: Character, name: String, delimiters: (String, String))] = []
    var delimiters = ("{{", "}}")
    /// Whether a partial with blocks (`{{<p}}`) was opened: the parsed tree keeps only its blocks, one level less.
    var usesInheritance = false

    /// Start delimiters of one character are rejected before parsing; these are all the parser may see.
    static let delimiterPairs = [
        ("{{", "}}"), ("<%", "%>"), ("[[", "]]"), ("{%", "%}"), ("<<<", ">>>"), ("{{{", "}}}"), ("((", "|"),
    ]
    static let spaces = ["", " ", "  ", "\t", "\n"]

    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }

    mutating func tag(_ body: String) {
        text += delimiters.0 + body + delimiters.1
    }

    mutating func name() -> String { pick(["a", "b", "c.d", "x-y"]) }

    mutating func step() {
        let insideInheritance = open.last?.kind == "<"
        switch Int.random(in: 0..<12, using: &random) {
        case 0, 1, 2:
            let kind: Character = insideInheritance ? "$" : pick(["#", "^", "$", "<", "#", "^", "#", "^", "#", "^"])
            let name = name()
            let inner = kind == "<" ? pick(Self.spaces) + name : name
            tag(String(kind) + pick(Self.spaces) + inner + pick(Self.spaces))
            open.append((kind, name, delimiters))
            if kind == "<" { usesInheritance = true }
        case 3, 4:
            guard let last = open.popLast() else { return }
            tag("/" + pick(Self.spaces) + last.name + pick(Self.spaces))
            delimiters = last.delimiters
        case 5 where !insideInheritance:
            let pair = pick(Self.delimiterPairs)
            tag("=" + pick(Self.spaces) + pair.0 + pick([" ", "\t", "  "]) + pair.1 + pick(Self.spaces) + "=")
            delimiters = pair
        case 6 where !insideInheritance:
            // A comment holding what would otherwise be tags.
            let fake = pick(["#a", "/a", "=<% %>=", "^b", "{", "!"])
            let (start, end) = delimiters
            text += start + "!" + pick([" ", "x", start + fake]) + end
        case 7 where !insideInheritance:
            tag(pick(["x", " x ", "&x", "{x}", ">p", "> *p", "%CONTENT_TYPE:TEXT", "% CONTENT_TYPE : TEXT "]))
        case 8 where !insideInheritance:
            // Text with pieces of delimiters that are not tags.
            text += pick(["x", "# heading", "{", "}", "<", "%", "|", "]", "\n", " ", "a{b", "{#", "{{\n", "<%\r\n"])
        default:
            text += pick(["\n", " "])
        }
    }

    mutating func make(steps: Int) -> String {
        for _ in 0..<steps { step() }
        while let last = open.popLast() {
            tag("/" + last.name)
            delimiters = last.delimiters
        }
        return text
    }
}

// The scan must never see less nesting than the parser recurses through: compare it with the depth of the tree the
// parser builds from thousands of generated templates.
@Test(.timeLimit(.minutes(2))) func theScanAgreesWithTheParser() throws {
    var compared = 0
    for seed in 0..<4000 {
        var generator = TemplateGenerator(random: SeededGenerator(state: UInt64(seed)))
        let source = generator.make(steps: 40)
        let scan = MustacheTagScanner(source)
        // Only what the check lets through may reach the parser: some of the rest would crash it.
        guard scan.oneCharacterDelimiter == nil, let template = try? MustacheTemplate(string: source) else { continue }
        let parsed = parsedDepth(template) - 1
        if generator.usesInheritance {
            // Partials with blocks keep only their blocks: the tree is shallower than the recursion, never deeper.
            #expect(parsed <= scan.maxDepth, "seed \(seed): \(source.debugDescription)")
        } else {
            #expect(parsed == scan.maxDepth, "seed \(seed): \(source.debugDescription)")
            compared += 1
        }
    }
    // Most generated templates are valid mustache; the comparison must not be vacuous.
    #expect(compared > 1000, "only \(compared) of 4000 generated templates compared")
}

// A cut or damaged template may fail to parse, but wherever the parser gets, the scan has been.
@Test(.timeLimit(.minutes(2))) func theScanCoversWhatTheParserReadsOfBrokenTemplates() throws {
    var random = SeededGenerator(state: 42)
    for seed in 0..<2000 {
        var generator = TemplateGenerator(random: SeededGenerator(state: UInt64(seed)))
        var characters = Array(generator.make(steps: 30))
        for _ in 0..<3 where !characters.isEmpty {
            characters.remove(at: Int.random(in: 0..<characters.count, using: &random))
        }
        let source = String(characters)
        let scan = MustacheTagScanner(source)
        guard scan.oneCharacterDelimiter == nil, let template = try? MustacheTemplate(string: source) else { continue }
        #expect(parsedDepth(template) - 1 <= scan.maxDepth, "seed \(seed): \(source.debugDescription)")
    }
}
