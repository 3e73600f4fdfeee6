import Foundation
import Resources
import SteadyTesting
import Synchronization
import Testing

@testable import Reconciler

/// Agent credential lifetimes and rotation: the stored record's decisions with time as a parameter, the credential
/// store with an injected wall clock, and the gateway closing a stream at its credential's expiry.
@Suite(.timeLimit(.minutes(1))) struct AgentCredentialExpiryTests {
    static let issued = Date(timeIntervalSince1970: 1_800_000_000)
    static let ttl = Duration.seconds(3600)

    func record() -> AgentCredentialRecord {
        AgentCredentialRecord(
            current: .init(digest: "old", expires: AgentCredentialRecord.expiry(issued: Self.issued, ttl: Self.ttl)),
            issued: Self.issued)
    }

    @Test func aCredentialIsAcceptedUntilItsExpiryAndRefusedWithTheReasonFromThen() {
        let record = record()
        let expires = Self.issued.addingTimeInterval(3600)
        #expect(
            record.verdict(digest: "old", runner: "web-1", now: expires.addingTimeInterval(-1))
                == .accepted(expires: expires, confirmsRotation: false))
        let refused = record.verdict(digest: "old", runner: "web-1", now: expires)
        #expect(
            refused
                == .refused(reason: "the credential of runner web-1 expired at 2027-01-15T09:00:00Z", hasExpired: true))
        #expect(record.verdict(digest: "other", runner: "web-1", now: Self.issued) == nil)
    }

    @Test func theReplacedCredentialWorksUntilTheNewOneIsUsedAndIsThenRefused() {
        let now = Self.issued.addingTimeInterval(2400)
        let rotated = record().rotated(to: "new", now: now, ttl: Self.ttl)
        #expect(rotated.current.expires == now.addingTimeInterval(3600))
        // Until the agent uses the new one, the old one still works (the answer may have been lost)...
        #expect(
            rotated.verdict(digest: "old", runner: "web-1", now: now)
                == .accepted(expires: Self.issued.addingTimeInterval(3600), confirmsRotation: false))
        // ...and the first use of the new one confirms the rotation.
        #expect(
            rotated.verdict(digest: "new", runner: "web-1", now: now)
                == .accepted(expires: now.addingTimeInterval(3600), confirmsRotation: true))
        let confirmed = rotated.confirmed()
        #expect(
            confirmed.verdict(digest: "new", runner: "web-1", now: now)
                == .accepted(expires: now.addingTimeInterval(3600), confirmsRotation: false))
        guard case .refused(let reason, let hasExpired)? = confirmed.verdict(digest: "old", runner: "web-1", now: now)
        else {
            Issue.record("the replaced credential is still accepted")
            return
        }
        #expect(!hasExpired)
        #expect(reason.contains("replaced by a rotated one"))
        // Past its own expiry the replaced one is refused as expired.
        #expect(
            confirmed.verdict(digest: "old", runner: "web-1", now: Self.issued.addingTimeInterval(3600))
                == .refused(reason: "the credential of runner web-1 expired at 2027-01-15T09:00:00Z", hasExpired: true))
    }

    @Test func onlyTheCurrentUnexpiredCredentialRotates() {
        let now = Self.issued.addingTimeInterval(2400)
        #expect(record().rotationRefusal(digest: "old", runner: "web-1", now: now) == nil)
        let rotated = record().rotated(to: "new", now: now, ttl: Self.ttl)
        // A copy of the replaced credential cannot rotate it again, and so cannot take the runner over.
        #expect(rotated.rotationRefusal(digest: "old", runner: "web-1", now: now)?.contains("already rotated") == true)
        #expect(rotated.rotationRefusal(digest: "new", runner: "web-1", now: now) == nil)
        #expect(
            record().rotationRefusal(digest: "old", runner: "web-1", now: Self.issued.addingTimeInterval(3600))?
                .contains("expired") == true)
    }

    @Test func theStoredFormRoundTripsAndAnOldRecordDoesNotExpire() throws {
        let rotated = record().rotated(to: "new", now: Self.issued.addingTimeInterval(2400), ttl: Self.ttl).confirmed()
        #expect(AgentCredentialRecord(try JSONValue.parse(rotated.json.jsonData())) == rotated)
        let old = try #require(AgentCredentialRecord(["digest": "d", "issued": "2020-01-01T00:00:00Z"]))
        #expect(old.current.expires == nil)
        #expect(old.verdict(digest: "d", runner: "r", now: Date()) == .accepted(expires: nil, confirmsRotation: false))
        // An expiry that cannot be read fails closed.
        let unreadable = try #require(AgentCredentialRecord(["digest": "d", "expires": "soon"]))
        #expect(unreadable.verdict(digest: "d", runner: "r", now: Self.issued)?.isAccepted == false)
    }

    // MARK: The credential store

    /// A wall clock the test sets; a quarter second past the issue time, as real clocks are, while expiries are
    /// stored to the second.
    final class TestWallClock: Sendable {
        let date = Mutex(AgentCredentialExpiryTests.issued.addingTimeInterval(0.25))
        var now: Date { date.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { date.withLock { $0 = $0.addingTimeInterval(seconds) } }
    }

    @Test func rotationKeepsAnAgentInAndTheExpiredOrReplacedCredentialIsRefusedAtConnect() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let clock = TestWallClock()
        let credentials = AgentCredentials(
            store: fixture.store, adminToken: "admin-token", ttl: Self.ttl, now: { clock.now })
        let first = try await credentials.issue(runner: "web-1")
        #expect(first.expires == Self.issued.addingTimeInterval(3600))
        #expect(
            await credentials.streamAccess(forToken: first.credential, runner: "web-1")
                == .granted(runner: "web-1", expires: first.expires))
        #expect(await credentials.identity(forToken: first.credential) == .runner("web-1"))

        clock.advance(2400)
        let (runner, second) = try await credentials.rotate(token: first.credential)
        #expect(runner == "web-1")
        #expect(second.expires == Self.issued.addingTimeInterval(2400 + 3600))
        // A copy of the first credential may not rotate it a second time.
        await #expect(throws: APIError.self) { try await credentials.rotate(token: first.credential) }
        // The old one opens streams until the new one is used; then it is refused at connect.
        #expect(
            await credentials.streamAccess(forToken: first.credential, runner: "web-1")
                == .granted(runner: "web-1", expires: first.expires))
        #expect(
            await credentials.streamAccess(forToken: second.credential, runner: "web-1")
                == .granted(runner: "web-1", expires: second.expires))
        guard case .refused(let replaced) = await credentials.streamAccess(forToken: first.credential, runner: "web-1")
        else {
            Issue.record("the replaced credential still opens a stream")
            return
        }
        #expect(replaced.refused == 401)
        #expect(await credentials.identity(forToken: first.credential) == nil)

        // A credential never rotated is refused at connect once expired, saying when it expired.
        clock.advance(3600)
        let expired = await credentials.streamAccess(forToken: second.credential, runner: "web-1")
        #expect(
            expired
                == .refused(
                    AgentStreamRefusal(
                        refused: 401,
                        message: "Unauthorized: the credential of runner web-1 expired at 2027-01-15T09:40:00Z",
                        reason: AgentStreamRefusal.credentialExpired)))
        #expect(await credentials.identity(forToken: second.credential) == nil)
        await #expect(throws: APIError.self) { try await credentials.rotate(token: second.credential) }
    }

    @Test func anotherReplicaSeesARotationThroughTheStore() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let clock = TestWallClock()
        let one = AgentCredentials(store: fixture.store, adminToken: "admin-token", ttl: Self.ttl, now: { clock.now })
        let other = AgentCredentials(store: fixture.store, adminToken: "admin-token", ttl: Self.ttl, now: { clock.now })
        let first = try await one.issue(runner: "web-1")
        #expect(await other.identity(forToken: first.credential) == .runner("web-1"))
        let (_, second) = try await one.rotate(token: first.credential)
        // The new credential opens a stream on the other replica at once (it reads the record it does not know),
        // and confirms the rotation there.
        #expect(
            await other.streamAccess(forToken: second.credential, runner: "web-1")
                == .granted(runner: "web-1", expires: second.expires))
        let fresh = AgentCredentials(store: fixture.store, adminToken: "admin-token", ttl: Self.ttl, now: { clock.now })
        #expect(await fresh.identity(forToken: first.credential) == nil)
        #expect(await fresh.identity(forToken: second.credential) == .runner("web-1"))
    }

    // MARK: The gateway's timer

    @Test func aStreamIsClosedAtItsCredentialsExpiryAndTheOthersStayOpen() {
        let start = ContinuousClock.now
        var state = GatewayState(configuration: .init(heartbeatTimeout: .seconds(15)))
        let copy = UUID()
        let rotated = UUID()
        let forever = UUID()
        let expiredAt = Self.issued
        _ = state.attach(
            runner: "web-1", revision: 0, digest: nil, connection: copy,
            credentialExpiry: .init(runner: "web-1", instant: start + .seconds(20), wallClock: expiredAt))
        _ = state.attach(
            runner: "web-1", revision: 0, digest: nil, connection: rotated,
            credentialExpiry: .init(runner: "web-1", instant: start + .seconds(60), wallClock: expiredAt))
        _ = state.attach(runner: "db-1", revision: 0, digest: nil, connection: forever)
        #expect(state.nextCredentialExpiry() == start + .seconds(20))
        #expect(state.expireCredentials(now: start + .seconds(20) - .milliseconds(1)).isEmpty)
        #expect(
            state.expireCredentials(now: start + .seconds(20))
                == [.closeExpired(runner: "web-1", connection: copy, expired: expiredAt)])
        #expect(state.runners["web-1"]?.connections == [rotated])
        #expect(state.nextCredentialExpiry() == start + .seconds(60))
        // A connection that went away is forgotten, and nothing is left to wake for.
        _ = state.connectionFailed(runner: "web-1", connection: rotated, overflowed: false)
        #expect(state.nextCredentialExpiry() == nil)
        #expect(state.runners["db-1"]?.connections == [forever])
    }
}

extension AgentCredentialRecord.Verdict {
    var isAccepted: Bool {
        if case .accepted = self { return true }
        return false
    }
}
