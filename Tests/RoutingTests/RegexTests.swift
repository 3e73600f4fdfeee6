import Resources
import Testing

@testable import Routing

/// Whether `pattern` matches somewhere in `text`, compiled as a route expression would compile it.
private func search(_ pattern: String, _ text: String) throws -> Bool {
    try ExpressionRegex(pattern: pattern, at: 0).matches(text)
}

/// The message of the error compiling `pattern`, or nil when it compiles.
private func patternError(_ pattern: String) -> String? {
    do {
        _ = try ExpressionRegex(pattern: pattern, at: 0)
        return nil
    } catch {
        return error.message
    }
}

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        // Literals, search semantics and anchors.
        ("abc", "xabcx", true), ("abc", "ab", false), ("", "anything", true), ("", "", true),
        ("^abc", "abcd", true), ("^abc", "xabc", false), ("abc$", "xabc", true), ("abc$", "abcx", false),
        ("abc$", "abc\n", false), ("(?m)abc$", "abc\nx", true), ("(?m)^x", "abc\nx", true), ("^x", "abc\nx", false),
        ("^$", "", true), ("\\A\\z", "", true), ("\\Aa", "ba", false),
        // Any character.
        ("a.c", "abc", true), ("a.c", "a\nc", false), ("(?s)a.c", "a\nc", true), ("^.{4}$", "café", true),
        ("é", "café", true), ("^.$", "😀", true),
        // Classes.
        ("[a-c]+", "xxbxx", true), ("^[a-c]+$", "abcd", false), ("[^a-c]", "abc", false), ("[^a-c]", "abcd", true),
        ("[]a]", "]", true), ("[a-]", "-", true), ("[-a]", "-", true), ("[a\\]]", "]", true), ("[\\d]", "5", true),
        ("[\\D]", "5", false), ("[\\w.-]+@", "first.last-1@", true), ("[\\n]", "\n", true),
        ("\\d+", "abc", false), ("\\d", "x7", true), ("\\D", "123", false), ("\\w+", "!!", false),
        ("\\W", "a_1", false), ("\\s", "a b", true), ("\\S", " \t", false),
        ("[[:alpha:]]+", "123", false), ("[[:digit:]]", "a1", true), ("[[:^digit:]]", "123", false),
        ("[[:upper:][:digit:]]", "aB", true), ("[[:x]", ":", true),
        // Alternation and groups.
        ("a|b", "b", true), ("^(a|bc)$", "bc", true), ("^(a|bc)$", "abc", false), ("^(a|)$", "", true),
        ("(?:ab)+", "ababab", true), ("^(?:ab)+$", "ababa", false), ("(?P<name>a)b", "ab", true),
        ("(?<name>a)b", "ab", true), ("^((a|b)(c|d))+$", "acbdad", true), ("^((a|b)(c|d))+$", "acbda", false),
        // Quantifiers.
        ("a*", "", true), ("^a+$", "", false), ("^a?$", "a", true), ("^a?$", "aa", false),
        ("^a{3}$", "aaa", true), ("^a{3}$", "aa", false), ("^a{2,}$", "aaaa", true), ("^a{2,}$", "a", false),
        ("^a{1,2}$", "aaa", false), ("^a{1,2}$", "aa", true), ("^a{0}$", "", true), ("^(ab){2}$", "abab", true),
        ("a+?", "aaa", true), ("^a*?$", "aaa", true), ("^a{1,3}?b$", "aab", true),
        ("a{,2}", "a{,2}", true), ("x{", "x{", true), ("^x{2$", "x{2", true),
        ("(a*)*b", "aaab", true), ("(a*)*b", "aaa", false), ("(|a)+b", "ab", true), ("(a|b)*c", "ababab", false),
        // Escapes.
        ("\\.", "a", false), ("\\.", ".", true), ("\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\", "*+?()[]{}|^$\\", true),
        ("\\x41", "A", true), ("\\x{1F600}", "😀", true), ("\\t", "\t", true), ("a\\/b", "a/b", true),
        ("\\Qa.b\\E", "axb", false), ("\\Qa.b\\E", "a.b", true), ("^\\Qa(*\\E+$", "a(**", true), ("^\\Qa(*\\E+$", "a(*a(*", false), ("\\Qa", "xa", true),
        // Flags.
        ("(?i)hello", "HeLLo", true), ("(?i:h)ello", "Hello", true), ("(?i:h)ello", "HELLO", false),
        ("(?i)[a-c]", "B", true), ("(?i)[^a]", "A", false), ("(?i)straße", "STRAßE", true), ("(?i)é", "É", true),
        ("a(?i)b|c", "C", true), ("(?i)a(?-i)b", "AB", false), ("(?i)a(?-i)b", "Ab", true),
        // Word boundaries.
        ("\\bfoo\\b", "a foo b", true), ("\\bfoo\\b", "afoob", false), ("\\Bfoo", "afoo", true), ("\\bfoo", "afoo", false),
        // Routes.
        ("^docker\\.io/.*alpine", "docker.io/library/alpine:3", true), ("^CVE-\\d{4}-\\d{4,}$", "CVE-2024-12345", true),
        ("^CVE-\\d{4}-\\d{4,}$", "CVE-2024-123", false),
    ] as [(String, String, Bool)])
func regexMatches(pattern: String, text: String, expected: Bool) throws {
    #expect(try search(pattern, text) == expected)
}

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("(unclosed", "missing ')' to close the group at offset 0 of the pattern"),
        ("a(?i", "missing ')' to close the group at offset 1 of the pattern"),
        ("[a-", "missing ']' at offset 0 of the pattern"),
        ("a)", "unexpected ')' at offset 1 of the pattern"),
        ("*a", "missing argument to repetition operator '*' at offset 0 of the pattern"),
        ("{2}a", "missing argument to repetition operator '{' at offset 0 of the pattern"),
        ("a**", "bad repetition operator '**' at offset 1 of the pattern"),
        ("a*+", "bad repetition operator '*+' at offset 1 of the pattern"),
        ("a{2}{3}", "bad repetition operator '{2}{' at offset 1 of the pattern"),
        ("a{1001}", "repetition count above the limit of 1000 at offset 1 of the pattern"),
        ("a{3,2}", "invalid repetition range {3,2} at offset 1 of the pattern"),
        ("(a{1000}){1000}", "pattern too large: it compiles to more than 5000 instructions"),
        ("[z-a]", "invalid character class range at offset 1 of the pattern"),
        ("[[:foo:]]", "unknown POSIX class [:foo:] at offset 1 of the pattern"),
        ("\\p{L}", "Unicode character classes (\\p, \\P) are not supported at offset 0 of the pattern"),
        ("\\y", "unknown escape \\y at offset 0 of the pattern"),
        ("\\x{110000}", "invalid \\x escape at offset 0 of the pattern"),
        ("a\\", "trailing backslash at offset 1 of the pattern"),
        ("(?x)a", "unknown group flag 'x' at offset 2 of the pattern"),
        ("(?)a", "invalid group flags at offset 0 of the pattern"),
        ("(?P<>a)", "invalid named group at offset 0 of the pattern"),
    ])
func invalidPatternsAreRejected(pattern: String, message: String) throws {
    #expect(patternError(pattern) == "invalid regular expression '\(pattern)': \(message)")
}

// Backtracking-only features are refused with a reason, not silently approximated.
@Test(.timeLimit(.minutes(2)), arguments: ["(a)\\1", "\\k<a>", "(?P=a)", "(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b", "(?>a)"])
func backtrackingFeaturesAreRejected(pattern: String) throws {
    let message = try #require(patternError(pattern))
    #expect(
        message.contains("backreferences") || message.contains("lookahead") || message.contains("lookbehind")
            || message.contains("atomic"), "\(message)")
}

@Test(.timeLimit(.minutes(2))) func groupNestingIsBoundedBeforeRecursion() throws {
    let deep = String(repeating: "(", count: 100_000) + "a" + String(repeating: ")", count: 100_000)
    #expect(patternError(deep)?.hasSuffix("groups nest more than 32 deep at offset 32 of the pattern") == true)
    let allowed = String(repeating: "(", count: 32) + "a" + String(repeating: ")", count: 32)
    #expect(try search(allowed, "xa"))
    // Classes, quantifiers and alternatives do not nest, however many there are.
    #expect(try search(String(repeating: "a?", count: 1000) + String(repeating: "a", count: 1000), String(repeating: "a", count: 1000)))
}

// A backtracking engine takes 2^30 steps here; the Pike VM visits each instruction once per character.
@Test(.timeLimit(.minutes(2))) func catastrophicPatternsFinish() throws {
    let text = String(repeating: "a", count: 30) + "!"
    #expect(try !search("(a+)+$", text))
    #expect(try !search("^(a|a)*$", text))
    #expect(try !search("^(a|aa)+$", text))
    #expect(try !search("(x+x+)+y", String(repeating: "x", count: 5000)))
    #expect(try !Expression("input.s.matches('(a+)+$')").matches(["s": .string(text)]))
    #expect(try Expression("input.s.matches('(a+)+!$')").matches(["s": .string(text)]))
}
