import Foundation
import Testing

@testable import Agent

/// When an agent rotates its credential, with both clocks as parameters: no controller, no sleeping.
@Suite struct CredentialRotationTests {
    let start = ContinuousClock.now
    let wallNow = Date(timeIntervalSince1970: 1_800_000_000)

    /// A credential issued now for 30 minutes.
    func rotation() -> CredentialRotation {
        CredentialRotation(issued: wallNow, expires: wallNow.addingTimeInterval(1800), wallNow: wallNow, now: start)
    }

    @Test func aCredentialIsRotatedWhenAThirdOfItsLifetimeIsLeft() {
        var rotation = rotation()
        #expect(rotation.step(now: start) == .wait(until: start + .seconds(1200)))
        #expect(rotation.step(now: start + .seconds(1200)) == .rotate)
        // The new credential's lifetime starts over from when it arrived.
        let later = wallNow.addingTimeInterval(1200)
        rotation.rotated(
            issued: later, expires: later.addingTimeInterval(1800), wallNow: later, now: start + .seconds(1200))
        #expect(rotation.step(now: start + .seconds(1200)) == .wait(until: start + .seconds(2400)))
    }

    @Test func aCredentialLoadedLaterKeepsItsScheduleAndAnUnknownLifetimeRotatesAtOnce() {
        // Loaded 25 minutes into its 30: overdue, so it rotates at once.
        let loaded = CredentialRotation(
            issued: wallNow, expires: wallNow.addingTimeInterval(1800), wallNow: wallNow.addingTimeInterval(1500),
            now: start)
        #expect(loaded.step(now: start) == .rotate)
        #expect(loaded.expiresAt == start + .seconds(300))
        let unknown = CredentialRotation(
            issued: nil, expires: nil, isLifetimeKnown: false, wallNow: wallNow, now: start)
        #expect(unknown.step(now: start) == .rotate)
        let forever = CredentialRotation(issued: wallNow, expires: nil, wallNow: wallNow, now: start)
        #expect(forever.step(now: start) == .idle)
    }

    @Test func aFailedRotationIsRetriedWithBackoffButNeverPastTheExpiry() {
        var rotation = rotation()
        let due = start + .seconds(1200)
        rotation.failed(now: due, refusal: nil)
        #expect(rotation.step(now: due) == .wait(until: due + .seconds(1)))
        rotation.failed(now: due + .seconds(1), refusal: nil)
        #expect(rotation.step(now: due + .seconds(1)) == .wait(until: due + .seconds(3)))
        for _ in 0..<20 { rotation.failed(now: due, refusal: nil) }
        // Capped at five minutes, and never waiting past the expiry.
        #expect(rotation.step(now: due) == .wait(until: due + .seconds(300)))
        #expect(rotation.step(now: start + .seconds(1700)) == .rotate)
        #expect(rotation.step(now: start + .seconds(1800)) == .expired)
    }

    @Test func aRefusedRotationIsNotTriedAgainAndTheCredentialRunsOut() {
        var rotation = rotation()
        rotation.failed(now: start + .seconds(1200), refusal: "already rotated")
        #expect(rotation.refusal == "already rotated")
        #expect(rotation.step(now: start + .seconds(1300)) == .wait(until: start + .seconds(1800)))
        #expect(rotation.step(now: start + .seconds(1800)) == .expired)
    }
}
