import Agent
import SteadyTesting
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

    @Test func carriesTheControllersOfAClusterWithSeveral() throws {
        let text = "\(Self.hash)::abc123.zyxwvutsrqponmlk::https://a:7443, https://[::1]:7443,https://b.example"
        let token = try AgentJoinToken(parsing: text)
        #expect(token.controllers == ["https://a:7443", "https://[::1]:7443", "https://b.example"])
        #expect(token.secret == "zyxwvutsrqponmlk")
        #expect(try AgentJoinToken(parsing: token.text) == token)
        #expect(token.description.hasSuffix("::https://a:7443,https://[::1]:7443,https://b.example"))
        #expect(!token.description.contains("zyxwvutsrqponmlk"))
        // A token without controllers reads and prints as before.
        let plain = try AgentJoinToken(parsing: "\(Self.hash)::abc123.zyxwvutsrqponmlk")
        #expect(plain.controllers.isEmpty)
        #expect(plain.text == "\(Self.hash)::abc123.zyxwvutsrqponmlk")
    }

    @Test(arguments: [
        ("::", "the controller list is empty"),
        ("::http://a:7443", "the controller list http://a:7443: the scheme must be https"),
        ("::https://a:7443/path", "without path"),
    ])
    func refusesAWrongControllerList(suffix: String, expected: String) {
        do {
            _ = try AgentJoinToken(parsing: "\(Self.hash)::abc123.zyxwvutsrqponmlk\(suffix)")
            Issue.record("\(suffix) should be refused")
        } catch {
            #expect(error.message.contains(expected), "\(error.message)")
            #expect(!error.message.contains("zyxwvutsrqponmlk"))
        }
    }

    @Test func anAgentTakesTheTokensControllersAfterItsOwn() throws {
        let token = try AgentJoinToken(
            parsing: "\(Self.hash)::abc123.zyxwvutsrqponmlk::https://a:7443,https://b:7443")
        let withFlag = AgentConfiguration(controllerURL: "https://b:7443,https://c:7443", name: "web-1", joinToken: token)
        #expect(withFlag.controllerURLs == ["https://b:7443", "https://c:7443", "https://a:7443"])
        // The token alone is enough; without either, --controller is missing.
        let tokenOnly = AgentConfiguration(controllerURL: "", name: "web-1", joinToken: token)
        try tokenOnly.validate()
        #expect(tokenOnly.controllerURLs == ["https://a:7443", "https://b:7443"])
        #expect(throws: AgentError.self) { try AgentConfiguration(controllerURL: "", name: "web-1").validate() }
    }

    @Test func anEnrolledAgentRemembersTheTokensControllers() throws {
        let directory = try TemporaryDirectory(prefix: "steady-agent-state")
        defer { directory.remove() }
        let state = try AgentStateDirectory(path: directory.path)
        let identity = AgentIdentity(
            runner: "web-1", credential: "secret", caPEM: "pem", controllers: ["https://a:7443", "https://b:7443"])
        try state.saveIdentity(identity)
        #expect(try state.loadIdentity() == identity)
    }
}
