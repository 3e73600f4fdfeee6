import Agent
import Testing

@Suite(.timeLimit(.minutes(5))) struct AgentJoinTokenTests {
    static let hash = "sha256:" + String(repeating: "0123456789abcdef", count: 4)

    @Test func parsesAGoodToken() throws {
        let token = try AgentJoinToken(parsing: "  \(Self.hash)::abc123.zyxwvutsrqponmlk\n")
        #expect(token.caHash == Self.hash)
        #expect(token.id == "abc123")
        #expect(token.secret == "zyxwvutsrqponmlk")
        #expect(token.bearerToken == "abc123.zyxwvutsrqponmlk")
        #expect(!token.description.contains("zyxwvutsrqponmlk"))
    }

    @Test func acceptsAnUppercaseHash() throws {
        let token = try AgentJoinToken(parsing: Self.hash.uppercased().replacingOccurrences(of: "SHA256", with: "sha256") + "::abc123.0123456789abcdef")
        #expect(token.caHash == Self.hash)
    }

    @Test(arguments: [
        ("garbage", "no \"::\""),
        ("abc123.0123456789abcdef", "no \"::\""),
        ("md5:abc::abc123.0123456789abcdef", "does not start with \"sha256:\""),
        ("sha256:abcd::abc123.0123456789abcdef", "not 64 hex digits"),
        ("\(hash)::abc1230123456789abcdef", "no \".\""),
        ("\(hash)::ABC123.0123456789abcdef", "token id"),
        ("\(hash)::abc12.0123456789abcdef", "token id"),
        ("\(hash)::abc123.short", "token secret"),
        ("\(hash)::abc123.0123456789abcdef.extra", "no \".\""),
    ])
    func refusesAMalformedToken(text: String, expected: String) {
        do {
            _ = try AgentJoinToken(parsing: text)
            Issue.record("\(text) should be refused")
        } catch {
            #expect(error.code == .malformedJoinToken)
            #expect(error.message.contains(expected), "\(error.message)")
            #expect(error.message.contains("malformed join token"))
            if text.contains("0123456789abcdef") { #expect(!error.message.contains("0123456789abcdef")) }
        }
    }
}
