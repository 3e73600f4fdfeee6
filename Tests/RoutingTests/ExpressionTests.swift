import Foundation
import Resources
import Routing
import Testing

// Foundation also declares an `Expression` type; this file means the route expression.
private typealias Expression = Routing.Expression

// MARK: - Helpers

private func evaluate(_ source: String, _ input: JSONValue = [:]) throws -> JSONValue {
    try Expression(source).evaluate(input: input)
}

/// The error compiling `source` raises, or nil when it compiles.
private func compileError(_ source: String, limits: Expression.Limits = .init()) -> ExpressionError? {
    do {
        _ = try Expression(source, limits: limits)
        return nil
    } catch {
        return error
    }
}

/// The error evaluating `source` against `input` raises, or nil when it succeeds.
private func evaluationError(_ source: String, _ input: JSONValue = [:]) throws -> ExpressionError? {
    // The CPU-time budget is lifted, so that only the step budget can end an evaluation here.
    let expression = try Expression(source, limits: .init(maxEvaluationTime: .seconds(3600)))
    do {
        _ = try expression.evaluate(input: input)
        return nil
    } catch {
        return error
    }
}

private let sample: JSONValue = [
    "name": "nginx",
    "count": 3,
    "score": 7.5,
    "tags": ["web", "prod"],
    "labels": ["app": "nginx", "tier": "frontend", "weird key": "yes"],
    "nested": ["inner": ["value": 42]],
    "empty": [],
    "nothing": .null,
]

// MARK: - Literals and precedence

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("42", 42),
        ("-7", -7),
        ("-9223372036854775808", .int(.min)),
        ("0x1F", 31),
        ("12u", 12),
        ("1.5", 1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("'single'", "single"),
        (#""double""#, "double"),
        (#""tab\tnew\nquote\"""#, "tab\tnew\nquote\""),
        (#""\x41\101\u00e9\U0001F600""#, "AAé😀"),
        (#"r"raw\n""#, #"raw\n"#),
        ("'''multi\nline'''", "multi\nline"),
        (#""""has "quotes" inside""""#, #"has "quotes" inside"#),
        ("true", true),
        ("false", false),
        ("null", .null),
        ("[1, 'a', [true]]", [1, "a", [true]]),
        ("[1, 2,]", [1, 2]),
        ("{'a': 1, \"b\": [null]}", ["a": 1, "b": [.null]]),
        ("{}", [:]),
        ("1 + // a comment\n 2", 3),
    ] as [(String, JSONValue)])
func literals(source: String, expected: JSONValue) throws {
    #expect(try evaluate(source) == expected)
}

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("7 / 2", 3),
        ("-7 % 3", -1),
        ("2 * 3 % 4", 2),
        ("-2 * 3", -6),
        ("- -1", 1),
        ("!true || true", true),
        ("true || false && false", true),
        ("(true || false) && false", false),
        ("1 < 2 == true", true),
        ("1 + 2 in [3]", true),
        ("!(1 > 2)", true),
        ("true ? 1 : 2 + 10", 1),
        ("false ? 1 : true ? 2 : 3", 2),
        ("1 < 2 ? 'yes' : 'no'", "yes"),
        ("'ab' + 'cd'", "abcd"),
        ("[1] + [2, 3]", [1, 2, 3]),
        ("1.5 + 1", 2.5),
        ("7.0 / 2", 3.5),
        ("'b' > 'a' && 'a' < 'ab'", true),
        ("false < true", true),
    ] as [(String, JSONValue)])
func precedence(source: String, expected: JSONValue) throws {
    #expect(try evaluate(source) == expected)
}

@Test(.timeLimit(.minutes(2))) func emptySourceMatchesEverything() throws {
    #expect(try Expression("").matches([:]))
    #expect(try Expression("  \n\t ").matches(["anything": 1]))
    #expect(try !Expression("false").matches([:]))
}

// MARK: - Field and index access

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("input.name", "nginx"),
        ("input.nested.inner.value", 42),
        ("input.tags[1]", "prod"),
        ("input.tags[1.0]", "prod"),
        ("input['name']", "nginx"),
        ("input.labels[\"weird key\"]", "yes"),
        ("input.labels['t' + 'ier']", "frontend"),
        ("input.nothing", .null),
        ("input.nothing == null", true),
        ("[10, 20, 30][input.count - 1]", 30),
        ("{'k': input.name}.k", "nginx"),
        ("{'namespace': 'a', 'in': 'b', 'null': 'c'}.namespace", "a"),
        ("{'namespace': 'a', 'in': 'b', 'null': 'c'}.in", "b"),
        ("{'namespace': 'a', 'in': 'b', 'null': 'c'}.null", "c"),
    ] as [(String, JSONValue)])
func fieldAndIndexAccess(source: String, expected: JSONValue) throws {
    #expect(try evaluate(source, sample) == expected)
}

@Test(.timeLimit(.minutes(2))) func missingFieldIsAnErrorAndNoMatch() throws {
    let error = try #require(try evaluationError("input.nested.nmae == 'x'", sample))
    #expect(error.code == .noSuchField)
    #expect(error.description == "1:14: no such key: nmae")
    #expect(try !Expression("input.nested.nmae == 'x'").matches(sample))
    #expect(try !Expression("input.missing.deeper != 'x'").matches(sample))

    let outOfRange = try #require(try evaluationError("input.tags[5]", sample))
    #expect(outOfRange.code == .indexOutOfRange)
    #expect(outOfRange.message == "index 5 out of range for list of size 2")
    #expect(try evaluationError("input.name.first", sample)?.code == .typeMismatch)
}

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("has(input.name)", true),
        ("has(input.nothing)", true),
        ("has(input.missing)", false),
        ("has(input.nested.inner.value)", true),
        ("has(input.nested.inner.other)", false),
        ("has(input.missing.deeper.still)", false),
        ("has(input.name.first)", false),
        ("has(input.name.first.second)", false),
        ("has(input.tags[0].x)", false),
        ("has(input.labels['nope'].x)", false),
        ("input.tags.exists(t, has(t.x))", false),
        ("!has(input.missing) && input.name == 'nginx'", true),
        ("has(input.missing) && input.missing == 1", false),
    ] as [(String, Bool)])
func hasTestsPresenceWithoutError(source: String, expected: Bool) throws {
    #expect(try evaluate(source, sample) == .bool(expected))
}

// MARK: - Logic

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("input.missing == 1 || true", true),
        ("true || input.missing == 1", true),
        ("input.missing == 1 && false", false),
        ("false && input.missing == 1", false),
        ("input.name == 'nginx' || input.missing", true),
    ] as [(String, JSONValue)])
func logicalOperatorsAbsorbErrors(source: String, expected: JSONValue) throws {
    #expect(try evaluate(source, sample) == expected)
}

@Test(.timeLimit(.minutes(2))) func logicalOperatorsPropagateUndecidedErrors() throws {
    #expect(try evaluationError("input.missing == 1 || false", sample)?.code == .noSuchField)
    #expect(try evaluationError("true && input.missing == 1", sample)?.message == "no such key: missing")
    #expect(try evaluationError("input.name || false", sample)?.code == .typeMismatch)
}

@Test(.timeLimit(.minutes(2))) func longAlternativeChainsStayShallow() throws {
    let alternatives = (0..<120).map { "input.count == \($0)" }.joined(separator: " || ")
    let expression = try Expression(alternatives)
    #expect(expression.matches(sample))
    #expect(!expression.matches(["count": 500]))
}

// MARK: - Numbers

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("1 < 1.5", true),
        ("2 == 2.0", true),
        ("2.0 >= 2", true),
        ("3 != 3.0", false),
        ("input.score > 7", true),
        ("input.score < 8", true),
        ("input.count == 3.0", true),
        ("input.count <= 2.99", false),
        ("9007199254740993 > 9007199254740992.0", true),
        ("[1, 2] == [1.0, 2.0]", true),
        ("1 in [1.0, 2.0]", true),
        ("1 == '1'", false),
    ] as [(String, Bool)])
func mixedNumericComparison(source: String, expected: Bool) throws {
    #expect(try evaluate(source, sample) == .bool(expected))
}

@Test(.timeLimit(.minutes(2))) func arithmeticErrors() throws {
    #expect(try evaluationError("input.count / 0", sample)?.description == "1:13: division by zero")
    #expect(try evaluationError("input.count % 0", sample)?.code == .divisionByZero)
    #expect(try evaluationError("input.score / 0", sample)?.code == .divisionByZero)
    #expect(try evaluationError("9223372036854775807 + input.count", sample)?.code == .overflow)
    // A value error in a constant sub-expression is left for run time: the branch may never be taken.
    #expect(try evaluate("input.count == 3 || 1 / 0 == 1", sample) == true)
}

// MARK: - Strings and functions

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("input.name.contains('gin')", true),
        ("input.name.contains('')", true),
        ("input.name.contains('GIN')", false),
        ("input.name.startsWith('ngi')", true),
        ("input.name.endsWith('inx')", true),
        ("input.name.endsWith('nginx!')", false),
        ("input.name.matches('^ng.*x$')", true),
        ("input.name.matches('gin')", true),
        ("input.name.matches('^gin')", false),
        ("matches(input.name, 'n+')", true),
        ("'MiXeD Ünï'.lowerAscii()", "mixed Ünï"),
        ("'MiXeD ünï'.upperAscii()", "MIXED üNï"),
        ("size('héllo')", 5),
        ("'😀😀'.size()", 2),
        ("size(input.tags)", 2),
        ("input.labels.size()", 3),
        ("int('42') + int(2.9) + int(-2.9)", 42),
        ("double(2) / 4", 0.5),
        ("double('1.25')", 1.25),
        ("string(15) + string(true) + string('x')", "15truex"),
        ("string(1.5)", "1.5"),
        (
            "type(1) + type(1.0) + type('') + type([]) + type({}) + type(null) + type(true)",
            "intdoublestringlistmapnull_typebool"
        ),
        ("type(input.tags) == 'list'", true),
        ("dyn(1) + 1", 2),
    ] as [(String, JSONValue)])
func stringAndConversionFunctions(source: String, expected: JSONValue) throws {
    #expect(try evaluate(source, sample) == expected)
}

@Test(.timeLimit(.minutes(2))) func conversionErrors() throws {
    #expect(try evaluationError("int(input.name)", sample)?.description == "1:1: cannot convert 'nginx' to int")
    #expect(try evaluationError("int(1e30 * input.count)", sample)?.code == .overflow)
    // A pattern is compiled with the expression, so an event can neither supply one nor make one fail.
    #expect(compileError("input.name.matches(input.name + '(')")?.code == .invalidArgument)
    #expect(compileError("['a'].exists(p, input.name.matches(p))")?.code == .invalidArgument)
    #expect(try evaluate("input.name.matches('^ng' + 'inx$')", sample) == true)
}

// MARK: - in

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("'web' in input.tags", true),
        ("'dev' in input.tags", false),
        ("'app' in input.labels", true),
        ("'nginx' in input.labels", false),
        ("input.name in ['apache', 'nginx']", true),
        ("input.name in ['apache', 'caddy']", false),
        ("input.count in ['3']", false),
        ("[1] in [[1], [2]]", true),
        ("!('x' in [])", true),
    ] as [(String, Bool)])
func membership(source: String, expected: Bool) throws {
    #expect(try evaluate(source, sample) == .bool(expected))
}

// MARK: - Macros

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("input.tags.exists(t, t == 'prod')", true),
        ("input.tags.exists(t, t == 'dev')", false),
        ("input.tags.all(t, t.size() > 2)", true),
        ("input.tags.all(t, t.startsWith('w'))", false),
        ("input.empty.all(x, false)", true),
        ("input.empty.exists(x, true)", false),
        ("[1, 2, 3].exists_one(x, x > 2)", true),
        ("[1, 2, 3].exists_one(x, x > 1)", false),
        ("[1, 2, 3, 4].filter(x, x % 2 == 0)", [2, 4]),
        ("[1, 2, 3].map(x, x * 10)", [10, 20, 30]),
        ("[1, 2, 3].map(x, x > 1, x * 10)", [20, 30]),
        ("input.labels.exists(k, k == 'tier')", true),
        ("input.labels.all(k, input.labels[k].size() > 2)", true),
        ("input.labels.filter(k, k.startsWith('t'))", ["tier"]),
        ("input.labels.map(k, k.size())", [3, 4, 9]),
        ("[[1, 2], [3]].map(x, x.map(y, y + 1))", [[2, 3], [4]]),
        ("[1, 2].exists(x, [3, 4].exists(y, x + y == 6))", true),
        ("[1, 2].map(x, [10].map(x, x + 1))", [[11], [11]]),
        ("[1, 2].filter(x, x > 1).exists(x, x == 2)", true),
        ("size([1, 2, 3].filter(x, x > 1)) == 2", true),
    ] as [(String, JSONValue)])
func macros(source: String, expected: JSONValue) throws {
    #expect(try evaluate(source, sample) == expected)
}

@Test(.timeLimit(.minutes(2))) func macrosAbsorbErrorsLikeLogicalOperators() throws {
    let items: JSONValue = ["items": [["a": 1], ["b": 2]]]
    #expect(try evaluate("input.items.exists(i, i.b == 2)", items) == true)
    #expect(try evaluationError("input.items.exists(i, i.b == 3)", items)?.message == "no such key: b")
    #expect(try evaluate("input.items.all(i, i.a == 5)", items) == false)
    #expect(try evaluate("input.items.all(i, has(i.a) || i.b == 3)", items) == false)
    #expect(try evaluationError("input.name.exists(c, true)", sample)?.code == .typeMismatch)
}

// MARK: - Postee / Rego builtins

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        (#"contains(input.image, "alpine")"#, true),
        (#"contains(input.image, "debian")"#, false),
        (#"contains(input.tags, "prod")"#, true),
        (#"contains(input.tags, "dev")"#, false),
        (#"startswith(input.image, "docker.io/")"#, true),
        (#"endswith(input.image, ":3.19")"#, true),
        (#"lower(input.severity) == "critical""#, true),
        (#"upper(input.severity) == "CRITICAL""#, true),
        (#"count(input.tags) == 2"#, true),
        (#"regex.match("^docker\\.io/.*alpine", input.image)"#, true),
        (#"regex.match("ubuntu", input.image)"#, false),
        (#"re_match("alp+ine", input.image)"#, true),
        (#"input.image.contains("alpine") && startswith(input.image, "docker")"#, true),
    ] as [(String, Bool)])
func posteeBuiltins(source: String, expected: Bool) throws {
    let event: JSONValue = ["image": "docker.io/library/alpine:3.19", "tags": ["prod", "pci"], "severity": "Critical"]
    #expect(try Expression(source).matches(event) == expected)
}

// MARK: - Compile-time errors

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        (#"input.name == "abc"#, .syntax, "1:15: unterminated string literal"),
        ("'line\nbreak'", .syntax, "1:1: unterminated string literal"),
        (#"contains(input.image, "alpine""#, .syntax, "1:31: expected ')' but found end of expression"),
        ("(input.a == 1", .syntax, "1:14: expected ')' but found end of expression"),
        ("input.tags[0", .syntax, "1:13: expected ']' but found end of expression"),
        ("f(1 2)", .syntax, "1:5: expected ')' but found '2'"),
        ("input.a input.b", .syntax, "1:9: expected end of expression but found 'input'"),
        ("input.a == ", .syntax, "1:12: expected an expression but found end of expression"),
        ("input.a = 1", .syntax, "1:9: unexpected '='; did you mean '=='?"),
        ("input.a # 1", .syntax, "1:9: unexpected character '#'"),
        (#"'bad \q escape'"#, .syntax, #"1:6: invalid escape sequence '\q'"#),
        ("input.a == 1 || if", .syntax, "1:17: 'if' is a reserved word"),
        ("input.", .syntax, "1:7: expected a field or function name after '.' but found end of expression"),
        ("{1: 'a'}", .typeMismatch, "1:2: map keys must be strings, not int"),
        ("{'a': 1, 'a': 2}", .invalidArgument, "1:1: duplicate map key 'a'"),
        ("99999999999999999999", .syntax, "1:1: integer literal 99999999999999999999 is out of range"),
        ("b'bytes'", .syntax, "1:1: bytes literals are not supported"),
        ("input.a == 1 &&\n  input.b = 2", .syntax, "2:11: unexpected '='; did you mean '=='?"),
        ("frobnicate(input.a)", .unknownFunction, "1:1: unknown function 'frobnicate'"),
        ("input.name.frobnicate()", .unknownFunction, "1:12: unknown function 'frobnicate'"),
        ("regex.find('a', input.a)", .unknownFunction, "1:7: unknown function 'find'"),
        ("inptu.name == 'x'", .unknownIdentifier, "1:1: unknown identifier 'inptu'"),
        ("input.tags.exists(t, u == 'x')", .unknownIdentifier, "1:22: unknown identifier 'u'"),
        ("[x].exists(x, true)", .unknownIdentifier, "1:2: unknown identifier 'x'"),
        (
            #"input.name.matches("(unclosed")"#, .invalidRegex,
            "1:20: invalid regular expression '(unclosed': missing ')' to close the group at offset 0 of the pattern"
        ),
        (
            #"regex.match("[a-", input.name)"#, .invalidRegex,
            "1:13: invalid regular expression '[a-': missing ']' at offset 0 of the pattern"
        ),
        (
            "input.name.matches(input.pattern)", .invalidArgument,
            "1:26: the pattern of 'matches' must be a string literal, so that it is compiled once, with the "
                + "expression"
        ),
        (
            "regex.match(input.pattern, input.name)", .invalidArgument,
            "1:19: the pattern of 'regex.match' must be a string literal, so that it is compiled once, with the "
                + "expression"
        ),
        (#""a" - 1"#, .typeMismatch, "1:5: no matching overload for '-' applied to (string, int)"),
        ("input.a - 'x'", .typeMismatch, "1:9: no matching overload for '-' applied to (dyn, string)"),
        ("size(1)", .typeMismatch, "1:1: no matching overload for 'size' applied to (int)"),
        (
            "input.name.startsWith(1)", .typeMismatch,
            "1:12: no matching overload for 'startsWith' applied to (dyn, int)"
        ),
        ("size(input.a) + 'x'", .typeMismatch, "1:15: no matching overload for '+' applied to (int, string)"),
        ("1 && input.a", .typeMismatch, "1:3: no matching overload for '&&' applied to (int, dyn)"),
        ("!'x'", .typeMismatch, "1:1: no matching overload for '!' applied to (string)"),
        ("'abc'.field", .typeMismatch, "1:7: cannot select field 'field' from a value of type string"),
        ("{'a': 1}.exists(k, k + 1 > 0)", .typeMismatch, "1:22: no matching overload for '+' applied to (string, int)"),
        ("input.tags.exists(t, size(t))", .typeMismatch, "1:12: the predicate of exists() must be a bool, not int"),
        ("input.name.contains()", .wrongArgumentCount, "1:12: 'contains' expects 1 argument but got 0"),
        ("startswith(input.name)", .wrongArgumentCount, "1:1: 'startswith' expects 2 arguments but got 1"),
        ("has(input)", .invalidArgument, "1:5: has() requires a field selection, such as has(input.a.b)"),
        (
            "input.tags.exists('t', true)", .invalidArgument,
            "1:19: the first argument of exists() must be a variable name"
        ),
    ] as [(String, ExpressionError.Code, String)])
func compileErrorsArePrecise(source: String, code: ExpressionError.Code, description: String) throws {
    let error = try #require(compileError(source))
    #expect(error.code == code)
    #expect(error.description == description)
}

// MARK: - Limits

@Test(.timeLimit(.minutes(2))) func sourceLengthLimit() throws {
    let long = String(repeating: "1 + ", count: 1100) + "1"
    let error = try #require(compileError(long))
    #expect(error.code == .tooComplex)
    #expect(error.description == "1:4097: expression is 4401 characters long; the limit is 4096")
    #expect(compileError("input.a == 1", limits: .init(maxSourceLength: 5))?.code == .tooComplex)
}

@Test(.timeLimit(.minutes(2))) func nestingLimit() throws {
    let parens = String(repeating: "(", count: 40) + "1" + String(repeating: ")", count: 40)
    #expect(compileError(parens)?.code == .tooComplex)
    let lists = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
    #expect(compileError(lists)?.description == "1:33: expression nests more than 32 levels deep")
    let chain = (0..<40).map(String.init).joined(separator: " + ")
    #expect(compileError(chain)?.code == .tooComplex)
    // Each parenthesis is a level of nesting, as is the outermost expression.
    #expect(compileError("(((1)))", limits: .init(maxDepth: 3))?.code == .tooComplex)
    #expect(compileError("(((1)))", limits: .init(maxDepth: 4)) == nil)
}

@Test(.timeLimit(.minutes(2))) func nodeLimit() throws {
    let list = "[" + Array(repeating: "1", count: 1000).joined(separator: ",") + "]"
    // Nodes are counted bottom-up, so the list itself is node 1001.
    #expect(compileError(list)?.description == "1:1: expression has more than 1000 nodes")
    #expect(compileError("[1, 2, 3]", limits: .init(maxNodes: 4)) == nil)
    #expect(compileError("[1, 2, 3, 4]", limits: .init(maxNodes: 4))?.code == .tooComplex)
}

@Test(.timeLimit(.minutes(2))) func evaluationStepLimit() throws {
    let big: JSONValue = ["items": .array((0..<1000).map { JSONValue.int($0) })]
    let quadratic = try Expression("input.items.map(x, input.items.map(y, x + y)).size() > 0")
    #expect(!quadratic.matches(big))
    let error = try #require(try evaluationError(quadratic.source, big))
    #expect(error.code == .tooComplex)
    #expect(error.message == "evaluation exceeded 100000 steps")
    // The same expression is fine on small input, and with a larger budget.
    #expect(quadratic.matches(["items": [1, 2, 3]]))
    let generous = try Expression(
        quadratic.source,
        limits: .init(maxEvaluationSteps: 10_000_000, maxEvaluationBytes: 1 << 30, maxEvaluationTime: .seconds(600)))
    #expect(generous.matches(big))
    // Errors from the budget are not absorbed by || or exists().
    let absorbed = try Expression("input.items.exists(x, input.items.map(y, y).size() == 0) || true")
    #expect(!absorbed.matches(big))
}

// MARK: - Realistic events

private let trivyReport = #"""
    {
      "SchemaVersion": 2,
      "CreatedAt": "2024-05-02T10:11:12.345Z",
      "ArtifactName": "docker.io/library/alpine:3.18.0",
      "ArtifactType": "container_image",
      "Metadata": {
        "OS": {"Family": "alpine", "Name": "3.18.0"},
        "ImageID": "sha256:5e2b554c1c45d22c9d1aa836828828e320a26011b76c08631ac896cbc3625e3e",
        "RepoTags": ["alpine:3.18.0"],
        "ImageConfig": {"architecture": "amd64", "os": "linux"}
      },
      "Results": [
        {
          "Target": "docker.io/library/alpine:3.18.0 (alpine 3.18.0)",
          "Class": "os-pkgs",
          "Type": "alpine",
          "Vulnerabilities": [
            {
              "VulnerabilityID": "CVE-2023-5363",
              "PkgName": "libcrypto3",
              "InstalledVersion": "3.1.0-r4",
              "FixedVersion": "3.1.4-r0",
              "Severity": "HIGH",
              "Title": "openssl: Incorrect cipher key and IV length processing",
              "CVSS": {"nvd": {"V3Score": 7.5}, "redhat": {"V3Score": 5.3}}
            },
            {
              "VulnerabilityID": "CVE-2023-2650",
              "PkgName": "libssl3",
              "InstalledVersion": "3.1.0-r4",
              "FixedVersion": "3.1.1-r0",
              "Severity": "MEDIUM",
              "CVSS": {"nvd": {"V3Score": 6.5}}
            },
            {
              "VulnerabilityID": "CVE-2024-5535",
              "PkgName": "libssl3",
              "InstalledVersion": "3.1.0-r4",
              "FixedVersion": "",
              "Severity": "CRITICAL",
              "CVSS": {"nvd": {"V3Score": 9.1}}
            },
            {
              "VulnerabilityID": "CVE-2023-42363",
              "PkgName": "busybox",
              "InstalledVersion": "1.36.0-r9",
              "Severity": "LOW"
            }
          ]
        },
        {
          "Target": "app/package-lock.json",
          "Class": "lang-pkgs",
          "Type": "npm",
          "Vulnerabilities": null
        }
      ]
    }
    """#

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        (#"input.Results.exists(r, r.Vulnerabilities.exists(v, v.Severity == "CRITICAL"))"#, true),
        (#"input.Results.exists(r, r.Class == "lang-pkgs" && r.Vulnerabilities.exists(v, true))"#, false),
        (#"size(input.Results[0].Vulnerabilities.filter(v, v.Severity in ["CRITICAL", "HIGH"])) >= 2"#, true),
        (#"input.Results[0].Vulnerabilities.exists(v, v.CVSS.nvd.V3Score > 9)"#, true),
        // The busybox finding has no CVSS: without has() the error means no match; with it, all() holds.
        (#"input.Results[0].Vulnerabilities.all(v, v.CVSS.nvd.V3Score < 9.5)"#, false),
        (#"input.Results[0].Vulnerabilities.all(v, !has(v.CVSS) || v.CVSS.nvd.V3Score < 9.5)"#, true),
        (#"input.Results[0].Vulnerabilities.exists_one(v, v.VulnerabilityID == "CVE-2023-5363")"#, true),
        (#"input.Results[0].Vulnerabilities.exists(v, v.PkgName.startsWith("libssl") && v.FixedVersion == "")"#, true),
        (#"input.Results[0].Vulnerabilities.exists(v, v.Severity == "LOW" && has(v.FixedVersion))"#, false),
        (#"contains(input.ArtifactName, "alpine") && input.Metadata.OS.Family == "alpine""#, true),
        (#"input.Metadata.OS.Family == "debian""#, false),
        (#"input.Results.all(r, r.Class != "secret")"#, true),
        (#""CVE-2023-2650" in input.Results[0].Vulnerabilities.map(v, v.VulnerabilityID)"#, true),
        (#"input.Metadata.RepoTags.exists(t, t.matches("^alpine:3\\.18"))"#, true),
        (#"input.SchemaVersion >= 2 && input.ArtifactType == "container_image""#, true),
    ] as [(String, Bool)])
func trivyReportRoutes(source: String, expected: Bool) throws {
    let report = try JSONValue.parse(Data(trivyReport.utf8))
    #expect(try Expression(source).matches(report) == expected)
}

private let traceeFinding = #"""
    {
      "Data": {"ptrace_request": "PTRACE_TRACEME"},
      "Context": {
        "timestamp": 1714645872123456789,
        "processorId": 3,
        "processId": 4242,
        "threadId": 4242,
        "parentProcessId": 1,
        "hostProcessId": 98765,
        "userId": 0,
        "processName": "strace",
        "hostName": "worker-1",
        "container": {"id": "8e1b0c4d", "name": "debug", "image": "docker.io/library/alpine:3.19"},
        "kubernetes": {"podName": "debug-7d9f", "podNamespace": "payments"},
        "eventId": "101",
        "eventName": "ptrace",
        "argsNum": 1,
        "returnValue": 0,
        "args": [{"name": "request", "type": "long", "value": "PTRACE_TRACEME"}]
      },
      "SigMetadata": {
        "ID": "TRC-2",
        "Version": "0.1.0",
        "Name": "Anti-Debugging",
        "Description": "Process uses anti-debugging technique to block debugger",
        "Tags": ["linux", "container"],
        "Properties": {"Severity": 3, "MITRE ATT&CK": "Defense Evasion: Execution Guardrails"}
      }
    }
    """#

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        (#"input.SigMetadata.ID == "TRC-2""#, true),
        (#"input.SigMetadata.ID == "TRC-1""#, false),
        (#"input.SigMetadata.ID in ["TRC-1", "TRC-2", "TRC-7"] && input.SigMetadata.Properties.Severity >= 3"#, true),
        (#"input.SigMetadata.Properties.Severity > 2.5"#, true),
        (#"input.SigMetadata.Properties["MITRE ATT&CK"].startsWith("Defense Evasion")"#, true),
        (#""container" in input.SigMetadata.Tags"#, true),
        (#"input.Context.args.exists(a, a.name == "request" && a.value == "PTRACE_TRACEME")"#, true),
        (#"input.Context.container.image.matches("^docker\\.io/library/alpine:")"#, true),
        (#"input.Context.kubernetes.podNamespace in ["payments", "billing"] && input.Context.userId == 0"#, true),
        (#"has(input.Context.kubernetes.podName) && !has(input.Context.kubernetes.labels)"#, true),
        (#"input.Context.processName != "strace""#, false),
        (#"input.Context.kubernetes.labels.team == "sre""#, false),
    ] as [(String, Bool)])
func traceeFindingRoutes(source: String, expected: Bool) throws {
    let finding = try JSONValue.parse(Data(traceeFinding.utf8))
    #expect(try Expression(source).matches(finding) == expected)
}

// MARK: - Concurrency

@Test(.timeLimit(.minutes(2))) func compiledExpressionIsSharedAcrossTasks() async throws {
    let expression = try Expression(#"input.n % 2 == 0 && input.tag.matches("^ev+en$")"#)
    let matched = await withTaskGroup(of: Bool.self) { group in
        for n in 0..<64 {
            group.addTask { expression.matches(["n": .int(Int64(n)), "tag": n % 2 == 0 ? "even" : "odd"]) }
        }
        var count = 0
        for await result in group where result { count += 1 }
        return count
    }
    #expect(matched == 32)
}
