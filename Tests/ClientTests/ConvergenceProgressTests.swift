import Resources
import Testing

@testable import Client

@Suite(.timeLimit(.minutes(2))) struct ConvergenceProgressTests {
    static func progress(runners: [ConvergenceReport.RunnerState], pending: [(String, String)] = []) -> ConvergenceWaiter.Progress {
        var progress = ConvergenceWaiter.Progress()
        progress.objectCount = 3
        progress.pendingObjects = pending.map { (name: $0.0, state: $0.1) }
        progress.runners = runners
        progress.isCaughtUp = true
        return progress
    }

    @Test func theSummaryCountsAndNamesTheFirstLaggards() {
        let progress = Self.progress(
            runners: [
                .init(name: "web-1", isSynced: true), .init(name: "web-2", isSynced: false, reason: "Disconnected"),
                .init(name: "web-3", isSynced: false, reason: "SyncPending"),
                .init(name: "web-4", isSynced: false, reason: "SyncPending"),
            ],
            pending: [("route.steady.dev/mixed", "Ready=False (MissingAction): action \"x\" not found")])
        #expect(!progress.isConverged)
        #expect(
            progress.summary
                == "2/3 objects Ready, 1/4 runners synced; waiting for route.steady.dev/mixed (Ready=False "
                + "(MissingAction)), runner/web-2 (Disconnected), runner/web-3 (SyncPending) and 1 more")
    }

    @Test func laggardsSayWhyEachOneLags() {
        let progress = Self.progress(runners: [
            .init(name: "db-1", isSynced: false, reason: "ExecNotAllowed", message: "exec actions are not allowed: kill"),
            .init(name: "web-1", isSynced: true),
        ])
        #expect(progress.laggards == ["runner/db-1: ExecNotAllowed: exec actions are not allowed: kill"])
    }

    @Test func convergedNeedsObjectsRunnersAndACaughtUpController() {
        var progress = Self.progress(runners: [.init(name: "web-1", isSynced: true)])
        #expect(progress.isConverged)
        #expect(progress.summary == "3/3 objects Ready, 1/1 runner synced")
        progress.isCaughtUp = false
        #expect(!progress.isConverged)
        #expect(progress.summary.contains("the controller is still computing slices"))
    }
}
