import Foundation
import Resources
import Testing

@testable import Reconciler

/// The RemoteRun dispatcher as a value: batches, error budgets, delivery timeouts and cancellation, with time
/// passed explicitly.
@Suite(.timeLimit(.minutes(5))) struct RunDispatchTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static func at(_ seconds: TimeInterval) -> Date { t0.addingTimeInterval(seconds) }

    static func runners(_ count: Int) -> [String] { (1...count).map { "r\($0)" } }

    static func dispatched(_ directives: [RunDispatch.Directive]) -> [String] {
        directives.compactMap { if case .dispatch(let runner) = $0 { runner } else { nil } }
    }

    /// Runs the dispatcher with every runner connected, accepting, starting and finishing with `outcome(runner)`,
    /// one runner at a time in dispatch order; records the most runners ever in flight.
    static func drive(
        _ dispatch: inout RunDispatch, outcome: (String) -> RemoteRunSpec.Phase
    ) -> (order: [String], maximumInFlight: Int, directives: [RunDispatch.Directive]) {
        var all = dispatch.start(now: t0)
        var queue = dispatched(all)
        var order: [String] = []
        var inFlight = Set(queue)
        var maximum = inFlight.count
        var clock = 0.0
        while !queue.isEmpty {
            let runner = queue.removeFirst()
            clock += 1
            all += dispatch.handle(.accepted(runner), now: at(clock))
            all += dispatch.handle(.started(runner), now: at(clock))
            order.append(runner)
            let next = dispatch.handle(.finished(runner, outcome(runner)), now: at(clock))
            inFlight.remove(runner)
            all += next
            let more = dispatched(next)
            inFlight.formUnion(more)
            maximum = max(maximum, inFlight.count)
            queue += more
        }
        return (order, maximum, all)
    }

    @Test func withoutABatchSizeEveryRunnerIsDispatchedAtOnce() {
        var dispatch = RunDispatch(runners: Self.runners(5), policy: .init(), connected: Set(Self.runners(5)))
        #expect(Self.dispatched(dispatch.start(now: Self.t0)) == Self.runners(5))
        #expect(dispatch.phase == .running)
        #expect(dispatch.counts[.pending] == 5)
    }

    @Test func batchesNeverOverlapBeyondTheWindowAndASlotFreesOnCompletion() {
        var dispatch = RunDispatch(
            runners: Self.runners(10), policy: .init(batchSize: .count(3)), connected: Set(Self.runners(10)))
        let first = Self.dispatched(dispatch.start(now: Self.t0))
        #expect(first == ["r1", "r2", "r3"])
        // Nothing frees a slot but a final phase: accepting, starting and time passing do not.
        #expect(dispatch.handle(.accepted("r1"), now: Self.at(1)).isEmpty)
        #expect(dispatch.handle(.started("r1"), now: Self.at(1)).isEmpty)
        #expect(dispatch.handle(.timePassed, now: Self.at(30)).isEmpty)
        #expect(dispatch.handle(.finished("r2", .succeeded), now: Self.at(31)) == [.dispatch("r4")])

        var whole = RunDispatch(
            runners: Self.runners(10), policy: .init(batchSize: .count(3)), connected: Set(Self.runners(10)))
        let run = Self.drive(&whole) { _ in .succeeded }
        #expect(run.maximumInFlight == 3)
        #expect(run.order == Self.runners(10))
        #expect(run.directives.last == .complete(.succeeded, reason: nil))
        #expect(whole.counts[.succeeded] == 10)
    }

    @Test func aPercentageWindowRoundsUp() {
        var dispatch = RunDispatch(
            runners: Self.runners(7), policy: .init(batchSize: .percent(25)), connected: Set(Self.runners(7)))
        #expect(dispatch.windowSize == 2)
        #expect(Self.dispatched(dispatch.start(now: Self.t0)) == ["r1", "r2"])
    }

    @Test func connectedRunnersGetSlotsFirst() {
        var dispatch = RunDispatch(
            runners: Self.runners(4), policy: .init(batchSize: .count(2)), connected: ["r3", "r4"])
        #expect(Self.dispatched(dispatch.start(now: Self.t0)) == ["r3", "r4"])
        #expect(dispatch.handle(.finished("r3", .succeeded), now: Self.at(1)) == [.dispatch("r1")])
    }

    @Test func maxErrorsAsAPercentageSkipsTheRunnersNotStarted() {
        // 10% of 20 allows 2 errors: the third stops new starts.
        var dispatch = RunDispatch(
            runners: Self.runners(20), policy: .init(batchSize: .count(2), maxErrors: .percent(10)),
            connected: Set(Self.runners(20)))
        #expect(dispatch.errorAllowance == 2)
        let failing: Set = ["r1", "r3", "r4"]
        let run = Self.drive(&dispatch) { failing.contains($0) ? .failed : .succeeded }
        // r1 fails, r2 succeeds, r3 fails, r4 fails (third error) while r5 is in flight; r5 finishes, no more start.
        #expect(run.order == ["r1", "r2", "r3", "r4", "r5"])
        let skipped = run.directives.compactMap { if case .markSkipped(let runner) = $0 { runner } else { nil } }
        #expect(skipped == (6...20).map { "r\($0)" })
        #expect(run.directives.last == .complete(.failed, reason: "MaxErrorsExceeded"))
        #expect(dispatch.counts[.skipped] == 15)
        #expect(dispatch.counts[.failed] == 3)
        #expect(dispatch.counts[.succeeded] == 2)
    }

    @Test func maxErrorsZeroStopsAtTheFirstErrorAndCancelsDispatchedOnes() {
        var dispatch = RunDispatch(
            runners: Self.runners(4), policy: .init(batchSize: .count(2), maxErrors: .count(0)),
            connected: Set(Self.runners(4)))
        _ = dispatch.start(now: Self.t0)
        _ = dispatch.handle(.started("r1"), now: Self.at(1))
        let directives = dispatch.handle(.finished("r1", .timedOut), now: Self.at(2))
        #expect(directives == [.cancel("r2"), .markSkipped("r3"), .markSkipped("r4")])
        #expect(dispatch.completion == nil)
        #expect(
            dispatch.handle(.finished("r2", .cancelled), now: Self.at(3)) == [
                .complete(.failed, reason: "MaxErrorsExceeded")
            ])
    }

    @Test func aRunnerThatDoesNotTakeTheRunInTimeIsUnreachable() {
        var dispatch = RunDispatch(runners: ["up", "down"], policy: .init(deliveryTimeout: 60), connected: ["up"])
        #expect(Self.dispatched(dispatch.start(now: Self.t0)) == ["up", "down"])
        #expect(dispatch.nextDeadline == Self.at(60))
        _ = dispatch.handle(.accepted("up"), now: Self.at(1))
        #expect(dispatch.handle(.timePassed, now: Self.at(59)).isEmpty)
        #expect(dispatch.handle(.timePassed, now: Self.at(60)) == [.markUnreachable("down", reason: "DeliveryTimeout")])
        #expect(dispatch.phase(of: "up") == .pending)
        #expect(dispatch.nextDeadline == nil)
        #expect(
            dispatch.handle(.finished("up", .succeeded), now: Self.at(70)) == [
                .complete(.failed, reason: "RunnersFailed")
            ])
        #expect(dispatch.counts[.unreachable] == 1)
        // A late result does not change a final phase.
        #expect(dispatch.handle(.finished("down", .succeeded), now: Self.at(80)).isEmpty)
        #expect(dispatch.phase(of: "down") == .unreachable)
    }

    @Test func anAgentThatConnectsInTimeIsSentTheRunAgain() {
        var dispatch = RunDispatch(runners: ["late"], policy: .init(deliveryTimeout: 60))
        #expect(dispatch.start(now: Self.t0) == [.dispatch("late")])
        #expect(dispatch.handle(.connected("late"), now: Self.at(30)) == [.dispatch("late")])
        _ = dispatch.handle(.accepted("late"), now: Self.at(31))
        #expect(dispatch.handle(.timePassed, now: Self.at(120)).isEmpty)
        #expect(
            dispatch.handle(.finished("late", .succeeded), now: Self.at(121)) == [.complete(.succeeded, reason: nil)])
    }

    @Test func aRunningRunnerWhoseAgentIsLostBecomesUnreachableUnlessItReturns() {
        var dispatch = RunDispatch(runners: ["a", "b"], policy: .init(deliveryTimeout: 10), connected: ["a", "b"])
        _ = dispatch.start(now: Self.t0)
        _ = dispatch.handle(.started("a"), now: Self.at(1))
        _ = dispatch.handle(.started("b"), now: Self.at(1))
        _ = dispatch.handle(.disconnected("a"), now: Self.at(2))
        _ = dispatch.handle(.disconnected("b"), now: Self.at(2))
        _ = dispatch.handle(.connected("b"), now: Self.at(5))
        #expect(dispatch.nextDeadline == Self.at(12))
        #expect(dispatch.handle(.timePassed, now: Self.at(12)) == [.markUnreachable("a", reason: "AgentLost")])
        #expect(dispatch.phase(of: "b") == .running)
        #expect(dispatch.nextDeadline == nil)
    }

    @Test func aLossThatEndedDoesNotExpireALaterOne() {
        var dispatch = RunDispatch(runners: ["a"], policy: .init(deliveryTimeout: 10), connected: ["a"])
        _ = dispatch.start(now: Self.t0)
        _ = dispatch.handle(.started("a"), now: Self.at(1))
        _ = dispatch.handle(.disconnected("a"), now: Self.at(2))
        _ = dispatch.handle(.connected("a"), now: Self.at(4))
        _ = dispatch.handle(.disconnected("a"), now: Self.at(8))
        // The first loss (deadline 12) ended at 4; only the second one (deadline 18) counts.
        #expect(dispatch.nextDeadline == Self.at(18))
        #expect(dispatch.handle(.timePassed, now: Self.at(12)).isEmpty)
        #expect(dispatch.phase(of: "a") == .running)
        #expect(dispatch.handle(.timePassed, now: Self.at(18)).first == .markUnreachable("a", reason: "AgentLost"))
    }

    @Test func aThousandRunnersAreDispatchedAndFinishedInOrder() {
        var dispatch = RunDispatch(
            runners: Self.runners(1000), policy: .init(batchSize: .count(100), deliveryTimeout: 100_000),
            connected: Set(Self.runners(1000)))
        let (order, maximumInFlight, directives) = Self.drive(&dispatch) { _ in .succeeded }
        #expect(order == Self.runners(1000))
        #expect(maximumInFlight == 100)
        #expect(directives.last == .complete(.succeeded, reason: nil))
        #expect(dispatch.counts[.succeeded] == 1000)
        #expect(dispatch.nextDeadline == nil)
    }

    @Test func anAcceptedRunnerWhoseAgentIsLostDoesNotHoldTheRunForever() {
        var dispatch = RunDispatch(runners: ["a"], policy: .init(deliveryTimeout: 10), connected: ["a"])
        _ = dispatch.start(now: Self.t0)
        _ = dispatch.handle(.accepted("a"), now: Self.at(1))
        #expect(dispatch.nextDeadline == nil)
        _ = dispatch.handle(.disconnected("a"), now: Self.at(2))
        #expect(
            dispatch.handle(.timePassed, now: Self.at(12)) == [
                .markUnreachable("a", reason: "AgentLost"), .complete(.failed, reason: "RunnersFailed"),
            ])
    }

    @Test func suspendCancelsRunningAndMarksTheRestCancelled() {
        var dispatch = RunDispatch(
            runners: Self.runners(4), policy: .init(batchSize: .count(2)), connected: Set(Self.runners(4)))
        _ = dispatch.start(now: Self.t0)
        _ = dispatch.handle(.started("r1"), now: Self.at(1))
        let directives = dispatch.handle(.stopped(reason: "Suspended"), now: Self.at(2))
        #expect(
            directives == [
                .cancel("r1"), .cancel("r2"), .markCancelled("r3", reason: "Suspended"),
                .markCancelled("r4", reason: "Suspended"),
            ])
        // Nothing new is dispatched when a slot frees; the run ends when the cancelled ones report.
        #expect(dispatch.handle(.finished("r1", .cancelled), now: Self.at(3)).isEmpty)
        #expect(dispatch.handle(.connected("r2"), now: Self.at(3)).isEmpty)
        #expect(
            dispatch.handle(.finished("r2", .cancelled), now: Self.at(4)) == [
                .complete(.cancelled, reason: "Suspended")
            ])
        #expect(dispatch.counts[.cancelled] == 4)
        #expect(dispatch.phase == .cancelled)
    }

    @Test func refusedAndFailedRunnersMakeTheRunFailed() {
        var dispatch = RunDispatch(runners: ["a", "b"], policy: .init(), connected: ["a", "b"])
        _ = dispatch.start(now: Self.t0)
        #expect(dispatch.handle(.finished("a", .refused), now: Self.at(1)).isEmpty)
        #expect(
            dispatch.handle(.finished("b", .succeeded), now: Self.at(1)) == [
                .complete(.failed, reason: "RunnersFailed")
            ])
        #expect(dispatch.counts[.refused] == 1)
    }

    @Test func noRunnersFailsAtOnceAndDuplicatesCountOnce() {
        var empty = RunDispatch(runners: [], policy: .init())
        #expect(empty.start(now: Self.t0) == [.complete(.failed, reason: "NoRunners")])
        var twice = RunDispatch(runners: ["a", "a"], policy: .init(), connected: ["a"])
        #expect(twice.start(now: Self.t0) == [.dispatch("a")])
        #expect(twice.counts.total == 1)
    }

    @Test func thePolicyComesFromTheSpec() throws {
        let json: JSONValue = ["target": ["all": true], "batchSize": "50%", "maxErrors": 2]
        let spec = try json.decode(as: RemoteRunSpec.self)
        let policy = RunDispatch.Policy(spec: spec)
        #expect(policy == .init(batchSize: .percent(50), maxErrors: .count(2), deliveryTimeout: 60))
    }
}
