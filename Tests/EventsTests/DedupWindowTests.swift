import Testing

@testable import Events

@Suite struct DedupWindowTests {
    @Test func aKeyIsNotADuplicateUntilItIsRecorded() {
        let window = DedupWindow()
        #expect(!window.isDuplicate("k", now: 0))
    }

    @Test func aRecordedKeyIsADuplicateUntilExactlyItsExpiry() {
        var window = DedupWindow()
        window.record("k", expiresAt: 1_000)
        #expect(window.isDuplicate("k", now: 0))
        #expect(window.isDuplicate("k", now: 999))
        #expect(!window.isDuplicate("k", now: 1_000))
        #expect(!window.isDuplicate("other", now: 500))
    }

    @Test func expiringDropsOnlyKeysWhoseWindowHasEnded() {
        var window = DedupWindow()
        window.record("old", expiresAt: 100)
        window.record("new", expiresAt: 200)
        #expect(window.expire(now: 100) == ["old"])
        #expect(window.count == 1)
        #expect(window.isDuplicate("new", now: 150))
    }

    @Test func recordingAgainKeepsTheLaterExpiry() {
        var window = DedupWindow()
        window.record("k", expiresAt: 200)
        window.record("k", expiresAt: 100)
        #expect(window.isDuplicate("k", now: 150))
    }
}
