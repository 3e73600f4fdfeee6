import Foundation
import Resources
import Testing

@testable import Agent

/// Scheduled runs: a stable splay per runner, a fixed grid, no overlap. Time is passed in; nothing sleeps.
@Suite(.timeLimit(.minutes(5))) struct RunScheduleTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)  // a multiple of 300 s
    static func at(_ seconds: TimeInterval) -> Date { t0.addingTimeInterval(seconds) }

    @Test func theOffsetIsStableAndWithinTheSplay() {
        // FNV-1a of known inputs, so a change of hash (or a seeded one) fails here.
        #expect(RunSchedule.fnv1a("") == 0xcbf2_9ce4_8422_2325)
        #expect(RunSchedule.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
        let web = RunSchedule(interval: 300, splay: 60, runner: "web-1", now: Self.t0)
        #expect(web.offset == Double(RunSchedule.fnv1a("web-1") % 60_000) / 1000)
        #expect(RunSchedule(interval: 300, splay: 60, runner: "web-1", now: Self.at(12_345)).offset == web.offset)
        #expect(RunSchedule(interval: 300, splay: 0, runner: "web-1", now: Self.t0).offset == 0)
    }

    @Test func aFleetIsSpreadAcrossTheSplay() {
        let offsets = (1...200).map { RunSchedule(interval: 300, splay: 60, runner: "web-\($0)", now: Self.t0).offset }
        #expect(offsets.allSatisfy { $0 >= 0 && $0 < 60 })
        // 200 runners over 60 s: no second holds more than a small share, and both halves of the splay are used.
        let perSecond = Dictionary(grouping: offsets, by: { Int($0) }).mapValues(\.count)
        #expect(perSecond.values.max() ?? 0 <= 15)
        #expect(offsets.contains { $0 < 30 } && offsets.contains { $0 >= 30 })
    }

    /// Equal to the millisecond: offsets are whole milliseconds, and `Date` arithmetic rounds.
    static func same(_ left: Date?, _ right: Date) -> Bool {
        guard let left else { return false }
        return abs(left.timeIntervalSince(right)) < 0.000_5
    }

    @Test func startsFollowTheGridShiftedByTheOffset() {
        var schedule = RunSchedule(interval: 300, splay: 60, runner: "web-1", now: Self.t0)
        #expect(Self.same(schedule.nextStart, Self.at(schedule.offset > 0 ? schedule.offset : 300)))
        guard case .wait(let until) = schedule.next(now: Self.at(-1)) else {
            Issue.record("started before its time")
            return
        }
        #expect(until == schedule.nextStart)
        let due = schedule.nextStart
        #expect(schedule.next(now: due) == .start)
        #expect(Self.same(schedule.nextStart, due.addingTimeInterval(300)))
        #expect(Self.same(schedule.start(after: due.addingTimeInterval(-0.01)), due))
        #expect(Self.same(schedule.start(after: due), due.addingTimeInterval(300)))
    }

    @Test func aRunStillGoingIsNotStartedAgainAndMissedStartsAreNotMadeUp() {
        var schedule = RunSchedule(interval: 60, runner: "db-1", now: Self.t0)
        #expect(schedule.next(now: Self.at(60)) == .start)
        #expect(schedule.runningSince == Self.at(60))
        // The run overruns two starts (120 and 180): nothing starts meanwhile.
        #expect(schedule.next(now: Self.at(120)) == .wait(until: nil))
        #expect(schedule.next(now: Self.at(185)) == .wait(until: nil))
        schedule.finished(at: Self.at(190))
        #expect(schedule.runningSince == nil)
        #expect(schedule.next(now: Self.at(190)) == .wait(until: Self.at(240)))
        #expect(schedule.next(now: Self.at(240)) == .start)
        schedule.finished(at: Self.at(250))
        #expect(schedule.nextStart == Self.at(300))
    }

    @Test func maxDurationBecomesTheTimeoutAndEachStartHasItsOwnUID() throws {
        let spec = try (["interval": "5m", "splay": "30s", "maxDuration": "2m"] as JSONValue).decode(
            as: RunnerSpec.Schedule.self)
        let schedule = RunSchedule(spec, runner: "web-1", now: Self.t0)
        #expect(schedule.interval == 300 && schedule.splay == 30 && schedule.maxDuration == 120)
        let request = schedule.request(startingAt: Self.at(10))
        #expect(request.timeoutMilliseconds == 120_000)
        #expect(request.command == nil)
        #expect(request.runUID == "schedule.1800000010000")
        #expect(schedule.request(startingAt: Self.at(310)).runUID != request.runUID)
    }
}
