import ArgumentParser
import Foundation
import Resources

/// Waits until objects are Ready for their current generation and every runner they affect has applied them:
/// what `apply --wait` and `steady wait --for=converged` do.
///
/// Objects are read with one LIST per kind; runners through the controller's convergence query, which knows
/// which runners hold each object in their slice and what each agent last reported.
public struct ConvergenceWaiter: Sendable {
    /// An object to wait for.
    public struct Target: Sendable {
        public var info: KindInfo
        public var name: String

        public init(info: KindInfo, name: String) {
            self.info = info
            self.name = name
        }

        /// `route.steady.dev/NAME`.
        public var displayName: String { "\(info.qualifiedName)/\(name)" }
    }

    /// One look at how far things are.
    public struct Progress: Sendable {
        /// Objects not yet Ready for their current generation, with their state in words.
        public var pendingObjects: [(name: String, state: String)] = []
        public var objectCount = 0
        /// Every runner the objects affect.
        public var runners: [ConvergenceReport.RunnerState] = []
        /// False while the controller has not yet computed slices from the applied revision.
        public var isCaughtUp = false

        public var syncedRunners: Int { runners.count { $0.isSynced } }
        public var isConverged: Bool { pendingObjects.isEmpty && isCaughtUp && runners.allSatisfy(\.isSynced) }

        /// `4/5 objects Ready, 998/1000 runners synced; waiting for runner/web-1 (Disconnected), ...`
        public var summary: String {
            var text =
                "\(objectCount - pendingObjects.count)/\(Wording.count(objectCount, "object")) Ready, "
                + "\(syncedRunners)/\(Wording.count(runners.count, "runner")) synced"
            if !isCaughtUp { text += ", the controller is still computing slices" }
            let waiting =
                pendingObjects.map { "\($0.name) (\(Self.headline($0.state)))" }
                + runners.filter { !$0.isSynced }.map { "runner/\($0.name) (\($0.reason ?? "Pending"))" }
            if !waiting.isEmpty {
                text += "; waiting for " + waiting.prefix(3).joined(separator: ", ")
                if waiting.count > 3 { text += " and \(waiting.count - 3) more" }
            }
            return text
        }

        /// One line per object or runner that has not converged, saying why.
        public var laggards: [String] {
            pendingObjects.map { "\($0.name): \($0.state)" }
                + runners.filter { !$0.isSynced }.map { runner in
                    var line = "runner/\(runner.name): \(runner.reason ?? "Pending")"
                    if let message = runner.message, !message.isEmpty { line += ": \(message)" }
                    return line
                }
        }

        /// `Ready=False (MissingAction)` from `Ready=False (MissingAction): route refers to ...`.
        private static func headline(_ state: String) -> String {
            state.split(separator: ":", maxSplits: 1).first.map(String.init) ?? state
        }
    }

    let client: APIClient

    public init(client: APIClient) {
        self.client = client
    }

    /// Looks until everything converged or `timeout` passed (zero: looks once); calls `report` whenever the
    /// summary changes, and returns the last look.
    ///
    /// It looks again when a watched object changes (the targets' kinds, and Runners, whose status says what
    /// their agents hold), never on a timer; only while the controller has not yet caught up with the applied
    /// revision, which no object change announces, does it look again after a short delay.
    /// - Parameter revision: the store revision that must reach the runners; the newest resourceVersion of the
    ///   targets when nil.
    public func wait(
        for targets: [Target], revision: Int64? = nil, timeout: Duration, report: (Progress) -> Void = { _ in }
    ) async throws -> Progress {
        var look = Look(targets: targets, revision: revision ?? 0)
        guard timeout > .zero else { return try await look.next(client) }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let kinds = Kinds.all.filter { info in
            info.kind == RunnerSpec.kind || targets.contains { $0.info.kind == info.kind }
        }
        return try await ObjectChangeSignal.watching(client, kinds: kinds, until: deadline) { nextChange in
            var lastSummary = ""
            var catchUpDelay = Duration.milliseconds(20)
            while true {
                let progress = try await look.next(client)
                if progress.summary != lastSummary {
                    lastSummary = progress.summary
                    report(progress)
                }
                if progress.isConverged || clock.now >= deadline { return progress }
                if progress.isCaughtUp {
                    await nextChange()
                } else {
                    try await Task.sleep(for: min(catchUpDelay, deadline - clock.now))
                    catchUpDelay = min(catchUpDelay * 2, .seconds(1))
                }
            }
        }
    }

    /// Successive looks at the same targets: objects once Ready stay counted, and the revision only grows.
    struct Look {
        let targets: [Target]
        var revision: Int64
        var ready: Set<String> = []
        var isFirst = true

        init(targets: [Target], revision: Int64) {
            self.targets = targets
            self.revision = revision
        }

        mutating func next(_ client: APIClient) async throws -> Progress {
            var progress = Progress()
            progress.objectCount = targets.count
            let waiter = ConvergenceWaiter(client: client)
            revision = max(revision, try await waiter.lookAtObjects(targets, ready: &ready, into: &progress, all: isFirst))
            isFirst = false
            let keys = targets.map { SliceKey(kind: $0.info.kind, name: $0.name) }
            let convergence = try await client.convergence(revision: revision, objects: keys)
            progress.runners = convergence.runners
            progress.isCaughtUp = convergence.isCaughtUp
            return progress
        }
    }

    /// Lists the kinds that still have objects to look at, records which are Ready (once Ready, an object stays
    /// counted), and returns the newest resourceVersion seen. Kinds without status (Secret) only need to exist.
    func lookAtObjects(
        _ targets: [Target], ready: inout Set<String>, into progress: inout Progress, all: Bool
    ) async throws -> Int64 {
        let isReady = WaitCondition.condition(type: "Ready", status: "True")
        var newest: Int64 = 0
        for info in Kinds.all {
            let ofKind = targets.filter { $0.info.kind == info.kind && (all || !ready.contains($0.displayName)) }
            guard !ofKind.isEmpty else { continue }
            var live: [String: JSONValue] = [:]
            for item in try await client.list(info).items {
                if let name = item["metadata"]?["name"]?.stringValue { live[name] = item }
            }
            for target in ofKind {
                let object = live[target.name]
                if let version = object?["metadata"]?["resourceVersion"]?.stringValue.flatMap({ Int64($0) }) {
                    newest = max(newest, version)
                }
                if object != nil && (!info.hasStatus || isReady.isMet(object)) {
                    ready.insert(target.displayName)
                } else if !ready.contains(target.displayName) {
                    progress.pendingObjects.append((target.displayName, isReady.describe(object)))
                }
            }
        }
        return newest
    }
}

extension ConvergenceWaiter {
    /// Every object the controller holds.
    public func allObjects() async throws -> [Target] {
        var targets: [Target] = []
        for info in Kinds.all {
            for item in try await client.list(info).items {
                if let name = item["metadata"]?["name"]?.stringValue { targets.append(Target(info: info, name: name)) }
            }
        }
        return targets
    }

    /// Looks at every object and the runners they affect whenever an object changes, calling `report` whenever
    /// the summary changes, until cancelled: how `steady up` shows convergence as it happens.
    ///
    /// With many objects a look is costly, so after a change it waits five times as long as the last look took
    /// (at least `minimumSpacing`) to gather the changes that follow.
    public func follow(minimumSpacing: Duration = .milliseconds(100), report: (Progress) -> Void) async throws {
        try await ObjectChangeSignal.watching(client, kinds: Kinds.all) { nextChange in
            var lastSummary = ""
            let clock = ContinuousClock()
            while !Task.isCancelled {
                let started = clock.now
                let progress = try await wait(for: try await allObjects(), timeout: .zero)
                if progress.summary != lastSummary {
                    lastSummary = progress.summary
                    report(progress)
                }
                let spacing = max(minimumSpacing, (clock.now - started) * 5)
                if progress.isCaughtUp { await nextChange() }
                try await Task.sleep(for: spacing)
            }
        }
    }

    /// Waits as ``wait(for:revision:timeout:report:)`` does, printing progress to standard error as it changes;
    /// prints the outcome, and on timeout names every laggard and exits non-zero.
    func waitPrintingProgress(for targets: [Target], revision: Int64? = nil, timeout: Duration) async throws {
        let started = ContinuousClock.now
        let progress = try await wait(for: targets, revision: revision, timeout: timeout) { progress in
            if !progress.isConverged { Console.error("waiting: \(progress.summary)") }
        }
        let elapsed = ContinuousClock.now - started
        let seconds = String(format: "%.2fs", Double(elapsed.nanoseconds) / 1e9)
        if progress.isConverged {
            Console.error(
                "converged in \(seconds): \(Wording.count(progress.objectCount, "object")) Ready, "
                    + "\(Wording.count(progress.runners.count, "runner")) synced")
            return
        }
        Console.error("error: timed out after \(seconds) waiting for convergence: \(progress.summary)")
        for line in progress.laggards { Console.error("  \(line)") }
        throw ExitCode.failure
    }
}
