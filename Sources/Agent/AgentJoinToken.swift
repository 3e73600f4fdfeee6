import TLSSupport

/// A join token as an agent reads it: `<caHash>::<tokenID>.<tokenSecret>[::<controller URL>,...]`.
///
/// The optional last part lists the controllers of a cluster with several (`steady token create --controller`), so
/// an agent enrolled with the token knows every replica and fails over between them, with or without `--controller`.
///
/// `caHash` is `sha256:` and the lowercase hex SHA-256 of the controller CA's DER; the agent pins the CA it
/// discovers to it. The id and secret become the bearer token of the enrolment request. The description never
/// shows the secret.
public struct AgentJoinToken: Sendable, Equatable, CustomStringConvertible {
    /// `sha256:<64 lowercase hex>`.
    public var caHash: String
    /// Six lowercase letters or digits.
    public var id: String
    /// The secret part. Never log it.
    public var secret: String
    /// The controllers the token names (`https://HOST:PORT`), in order; empty for a token that names none.
    public var controllers: [String]

    /// A token from its parts; ``text`` writes it out.
    public init(caHash: String, id: String, secret: String, controllers: [String] = []) {
        self.caHash = caHash
        self.id = id
        self.secret = secret
        self.controllers = controllers
    }

    /// The token as `steady token create` prints it (with the secret: show it only to its owner).
    public var text: String {
        "\(caHash)::\(id).\(secret)" + (controllers.isEmpty ? "" : "::" + controllers.joined(separator: ","))
    }

    /// What enrolment sends as its bearer token: `<id>.<secret>`.
    public var bearerToken: String { "\(id).\(secret)" }

    /// Parses a join token.
    ///
    /// - Throws: ``AgentError`` with code ``AgentError/Code/malformedJoinToken`` naming the part that is wrong;
    ///   the message never repeats the token.
    public init(parsing text: String) throws(AgentError) {
        let token = text.trimmingWhitespace()
        func malformed(_ detail: String) -> AgentError {
            AgentError(
                code: .malformedJoinToken,
                message: "malformed join token: \(detail); expected sha256:<64 hex digits>::<id>.<secret>"
                    + "[::https://HOST:PORT,...] as printed by `steady token create`")
        }
        guard let separator = token.range(of: "::") else {
            throw malformed("no \"::\" between the CA hash and the token")
        }
        let hash = token[..<separator.lowerBound].lowercased()
        var credential = token[separator.upperBound...]
        var controllers: [String] = []
        // The credential holds no colon, so the next "::" starts the controller list (whose IPv6 hosts may hold more).
        if let listSeparator = credential.range(of: "::") {
            let list = String(credential[listSeparator.upperBound...])
            credential = credential[..<listSeparator.lowerBound]
            if let problem = AgentConfiguration.controllerURLProblem(list, source: "the controller list") {
                throw malformed(problem)
            }
            controllers = list.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        }
        guard hash.hasPrefix("sha256:") else { throw malformed("the CA hash does not start with \"sha256:\"") }
        let hex = hash.dropFirst("sha256:".count)
        guard hex.utf8.count == 64, hex.utf8.allSatisfy(Hex.isDigit) else {
            throw malformed("the CA hash is not 64 hex digits after \"sha256:\"")
        }
        let parts = credential.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw malformed("no \".\" between the token id and secret") }
        guard parts[0].utf8.count == 6, parts[0].utf8.allSatisfy(Self.isLowercaseAlphanumeric) else {
            throw malformed("the token id is not six lowercase letters or digits")
        }
        guard parts[1].utf8.count >= 16, parts[1].utf8.allSatisfy(Self.isLowercaseAlphanumeric) else {
            throw malformed("the token secret is not at least 16 lowercase letters or digits")
        }
        self.init(caHash: hash, id: String(parts[0]), secret: String(parts[1]), controllers: controllers)
    }

    /// The CA hash, token id and controllers; never the secret.
    public var description: String {
        "\(caHash)::\(id).<redacted>" + (controllers.isEmpty ? "" : "::" + controllers.joined(separator: ","))
    }

    private static func isLowercaseAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
