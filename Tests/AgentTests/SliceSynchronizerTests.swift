import Agent
import Resources
import Testing

@Suite(.timeLimit(.minutes(5))) struct SliceSynchronizerTests {
    typealias F = SliceFixtures
    let base = [F.route("alerts", actions: ["notify"], template: "summary"), F.httpAction("notify"), F.template("summary")]

    func synchronizer(allowsExec: Bool = false, lastGood: RunnerSlice? = nil) -> SliceSynchronizer {
        SliceSynchronizer(lastGood: lastGood, validator: SliceValidator(allowsExec: allowsExec))
    }

    /// Applies an `.apply` directive the way the agent does (persisting always works here).
    func run(_ sync: inout SliceSynchronizer, _ message: SliceMessage) -> SliceSynchronizer.Directive {
        let directive = sync.handle(message)
        if case .apply(let slice) = directive { sync.commit(slice) }
        return directive
    }

    @Test func aSnapshotReplacesEverythingAndIsApplied() {
        var sync = synchronizer(lastGood: RunnerSlice(revision: 2, objects: [F.httpAction("old")]))
        sync.startConnection()
        let directive = run(&sync, F.snapshot(5, base))
        #expect(directive == .apply(RunnerSlice(revision: 5, objects: base)))
        #expect(sync.status == .synced)
        #expect(sync.applied.revision == 5)
        #expect(Set(sync.applied.objects.keys.map(\.description)) == ["Route/alerts", "Action/notify", "Template/summary"])
        #expect(sync.resumePoint.revision == 5 && sync.resumePoint.digest == SliceDigest.digest(of: base))
    }

    @Test func aDiffUpsertsAndRemovesAndChecksTheDigest() {
        var sync = synchronizer()
        sync.startConnection()
        _ = run(&sync, F.snapshot(5, base))
        let after = [F.route("alerts", actions: ["notify"]), F.httpAction("notify"), F.secret("creds")]
        let diff = F.diff(
            6, base: 5, upserts: [F.route("alerts", actions: ["notify"]), F.secret("creds")],
            removed: [SliceKey(kind: "Template", name: "summary")], after: after)
        #expect(run(&sync, diff) == .apply(RunnerSlice(revision: 6, objects: after)))
        #expect(sync.applied.digest == SliceDigest.digest(of: after))
        #expect(sync.applied["Template", "summary"] == nil)
        #expect(sync.applied["Secret", "creds"] != nil)
        #expect(sync.status.isSynced)
    }

    @Test func aDigestMismatchKeepsTheLastGoodSliceAndAsksForASnapshot() {
        var sync = synchronizer()
        sync.startConnection()
        _ = run(&sync, F.snapshot(5, base))
        let good = sync.applied
        let diff = F.diff(6, base: 5, upserts: [F.httpAction("other")], after: base, digest: "sha256:" + String(repeating: "a", count: 64))
        #expect(run(&sync, diff) == .resync)
        #expect(sync.applied == good)
        #expect(sync.status.reason == "DigestMismatch")
        #expect(sync.resumePoint.revision == 0 && sync.resumePoint.digest == nil)
        // The snapshot on the next connection repairs it.
        sync.startConnection()
        let fixed = base + [F.httpAction("other")]
        #expect(run(&sync, F.snapshot(6, fixed)) == .apply(RunnerSlice(revision: 6, objects: fixed)))
        #expect(sync.status == .synced)
        #expect(sync.resumePoint.revision == 6)
    }

    @Test func execActionsAreRefusedWithoutAllowExecAndTheLastGoodSliceStays() {
        var sync = synchronizer()
        sync.startConnection()
        _ = run(&sync, F.snapshot(5, base))
        let good = sync.applied
        let after = base + [F.execAction("kill-process"), F.execAction("dump-memory")]
        let diff = F.diff(6, base: 5, upserts: [F.execAction("kill-process"), F.execAction("dump-memory")], after: after)
        #expect(run(&sync, diff) == .report)
        #expect(sync.applied == good)
        #expect(sync.status.reason == "ExecNotAllowed")
        #expect(sync.status.message?.contains("dump-memory, kill-process") == true)
        // Diffs keep coming relative to what was sent; removing the exec actions makes the slice good again.
        let removal = F.diff(
            7, base: 6,
            removed: [SliceKey(kind: "Action", name: "kill-process"), SliceKey(kind: "Action", name: "dump-memory")],
            after: base)
        let directive = run(&sync, removal)
        #expect(directive == .apply(RunnerSlice(revision: 7, objects: base)))
        #expect(sync.status == .synced)
    }

    @Test func execActionsAreAppliedWithAllowExec() {
        var sync = synchronizer(allowsExec: true)
        sync.startConnection()
        let objects = base + [F.execAction("kill-process")]
        #expect(run(&sync, F.snapshot(5, objects)) == .apply(RunnerSlice(revision: 5, objects: objects)))
        #expect(sync.status == .synced)
    }

    @Test func anInvalidObjectIsRefusedWithItsFieldPath() {
        var sync = synchronizer()
        sync.startConnection()
        _ = run(&sync, F.snapshot(5, base))
        let broken = F.route("alerts", input: "input.x ==", actions: ["notify"], template: "summary")
        let after = [broken, F.httpAction("notify"), F.template("summary")]
        #expect(run(&sync, F.diff(6, base: 5, upserts: [broken], after: after)) == .report)
        #expect(sync.applied.revision == 5)
        #expect(sync.status.reason == "InvalidSlice")
        #expect(sync.status.message?.contains("Route/alerts: spec.input") == true, "\(sync.status)")
    }

    @Test func objectsOfOtherKindsOrMislabelledAreInvalid() {
        let validator = SliceValidator(allowsExec: false)
        let run = F.object("RemoteRun", "nightly", field: "spec", [:])
        #expect(validator.problem(with: run.object, key: run.key) == .invalid("kind RemoteRun may not be in a slice"))
        let action = F.httpAction("notify")
        if case .invalid(let message) = validator.problem(with: action.object, key: SliceKey(kind: "Action", name: "other")) {
            #expect(message.contains("metadata.name"))
        } else {
            Issue.record("a name that differs from the key must be invalid")
        }
        #expect(validator.problem(with: action.object, key: action.key) == nil)
    }

    @Test func aKeepaliveWithTheSameDigestAdoptsANewRevision() {
        var sync = synchronizer()
        sync.startConnection()
        _ = run(&sync, F.snapshot(5, base))
        let digest = SliceDigest.digest(of: base)
        #expect(run(&sync, SliceMessage(type: .keepalive, revision: 5, digest: digest)) == .none)
        // The controller restarted and numbers the same content anew.
        #expect(run(&sync, SliceMessage(type: .keepalive, revision: 40, digest: digest)) == .apply(RunnerSlice(revision: 40, objects: base)))
        #expect(sync.resumePoint.revision == 40)
        // A keep-alive for content the agent does not hold means it is out of sync.
        #expect(run(&sync, SliceMessage(type: .keepalive, revision: 41, digest: "sha256:" + String(repeating: "b", count: 64))) == .resync)
    }

    @Test func aSliceThatCouldNotBeSavedIsTriedAgainOnEachKeepalive() {
        var sync = synchronizer()
        sync.startConnection()
        _ = run(&sync, F.snapshot(5, base))
        let after = base + [F.httpAction("other")]
        let diff = F.diff(6, base: 5, upserts: [F.httpAction("other")], after: after)
        let wanted = RunnerSlice(revision: 6, objects: after)
        #expect(sync.handle(diff) == .apply(wanted))
        sync.failToPersist(AgentError(code: .storage, message: "no space left on device"))
        #expect(sync.status.reason == SliceValidator.Reason.storageFailed)
        let keepalive = SliceMessage(type: .keepalive, revision: 6, digest: SliceDigest.digest(of: after))
        // Still no room: tried again, and again.
        #expect(sync.handle(keepalive) == .apply(wanted))
        sync.failToPersist(AgentError(code: .storage, message: "no space left on device"))
        #expect(run(&sync, keepalive) == .apply(wanted))
        #expect(sync.status == .synced)
        #expect(sync.applied == wanted)
        // Saved, a keep-alive is only a keep-alive again.
        #expect(run(&sync, keepalive) == .none)
    }

    @Test func eachConnectionResumesFromTheAppliedSliceNotARejectedOne() {
        var sync = synchronizer()
        sync.startConnection()
        _ = run(&sync, F.snapshot(5, base))
        let rejected = base + [F.execAction("kill-process")]
        _ = run(&sync, F.diff(6, base: 5, upserts: [F.execAction("kill-process")], after: rejected))
        #expect(sync.received.revision == 6)
        sync.startConnection()
        #expect(sync.resumePoint.revision == 5)
        #expect(sync.received == sync.applied)
        // The controller answers the resume with a diff from 5, which applies onto the applied slice; it is
        // still refused, which the agent already reported.
        #expect(run(&sync, F.diff(6, base: 5, upserts: [F.execAction("kill-process")], after: rejected)) == .none)
        #expect(sync.status.reason == "ExecNotAllowed")
        #expect(sync.applied.revision == 5)
        #expect(sync.received.revision == 6)
    }

    @Test func aSavedSliceThatIsNoLongerAllowedIsDropped() {
        let saved = RunnerSlice(revision: 9, objects: base + [F.execAction("kill-process")])
        let sync = synchronizer(allowsExec: false, lastGood: saved)
        #expect(sync.applied == .empty)
        #expect(sync.droppedLoadedSlice?.reason == "ExecNotAllowed")
        #expect(sync.resumePoint.revision == 0)
        let kept = synchronizer(allowsExec: true, lastGood: saved)
        #expect(kept.applied == saved)
        #expect(kept.resumePoint.revision == 9 && kept.resumePoint.digest == saved.digest)
    }

    @Test func theFirstSnapshotOfAnEmptySliceIsApplied() {
        var sync = synchronizer()
        sync.startConnection()
        #expect(sync.resumePoint.digest == nil)
        #expect(run(&sync, F.snapshot(1, [])) == .apply(RunnerSlice(revision: 1, objects: [SliceObject]())))
        #expect(sync.status == .synced)
    }
}
