import Foundation

/// What an enrolled agent needs to talk to its controller: its runner name, its credential and the CA it pinned.
///
/// The description never shows the credential.
public struct AgentIdentity: Sendable, Equatable, CustomStringConvertible {
    /// The Runner this agent acts as.
    public var runner: String
    /// The bearer credential enrolment issued. Secret: never log it.
    public var credential: String
    /// The controller's CA certificate (PEM), checked against the join token's hash when it was discovered.
    public var caPEM: String
    /// The controllers the join token named, kept so that later starts know every replica without the token.
    public var controllers: [String]
    /// When the credential was issued and when it expires (nil: it does not, or the controller did not say).
    public var credentialIssued: Date?
    public var credentialExpires: Date?
    /// False for a credential whose lifetime the agent never learnt (enrolled before credentials expired).
    public var isCredentialLifetimeKnown = true

    /// Creates an identity.
    public init(
        runner: String, credential: String, caPEM: String, controllers: [String] = [], credentialIssued: Date? = nil,
        credentialExpires: Date? = nil
    ) {
        self.runner = runner
        self.credential = credential
        self.caPEM = caPEM
        self.controllers = controllers
        self.credentialIssued = credentialIssued
        self.credentialExpires = credentialExpires
    }

    /// The runner name; never the credential.
    public var description: String { "AgentIdentity(runner: \(runner), credential: <redacted>)" }
}
