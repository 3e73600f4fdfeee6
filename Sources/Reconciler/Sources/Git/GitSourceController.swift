import Apply
import Foundation
import Logging
import Resources
import ServiceLifecycle

/// Follows every GitRepository: asks the remote for its revision on the interval (one `git ls-remote`), and on a
/// new revision, a spec change, a webhook or a `steady.dev/requestedAt` request fetches the tree and applies it
/// through the same pipeline as `apply -f`, pruning what this source applied before and no longer declares.
///
/// The decisions are ``GitSourceState``'s; this actor does the I/O. A poll that finds nothing new writes nothing.
public actor GitSourceController: Service {
    /// What wakes the controller.
    enum Event: Sendable {
        case changed(ObjectChange)
        case webhook(String)
        case finished(String, GitSourceState.Sync, GitSync.Result)
        case timer
    }

    let objects: ObjectService
    let logger: Logger
    let runner: GitCommandRunner
    let cacheDirectory: URL
    private var states: [String: GitSourceState] = [:]
    private var caches: [String: GitRepositoryCache] = [:]
    private let snapshots = ManifestSnapshots()
    private let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let wake = WakeSignal()

    /// The git processes started so far, by subcommand.
    public nonisolated var gitCommands: [String: Int] { runner.counter.snapshot }

    /// Creates the controller; git's caches and private HOME live under `directory`.
    /// - Parameter git: the git executable; by default the one on PATH (none: every source is `GitUnavailable`).
    public init(objects: ObjectService, directory: URL, logger: Logger, git: String? = findGit()) {
        self.objects = objects
        self.logger = logger
        cacheDirectory = directory.appendingPathComponent("cache")
        let home = directory.appendingPathComponent("home")
        try? FileManager.default.createDirectory(
            at: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        runner = GitCommandRunner(executable: git, home: home, counter: GitCommandCounter(), logger: logger)
        (events, continuation) = AsyncStream.makeStream(of: Event.self)
    }

    /// The git executable on PATH, if any.
    public static func findGit() -> String? { GitCommandRunner.findGit() }

    /// The path on the controller's HTTPS port whose POST syncs `name` at once.
    public static func webhookPath(_ name: String) -> String { "/hooks/gitrepositories/\(name)" }

    /// Syncs `name` now (a webhook that passed authentication). Bursts coalesce: one sync runs, one waits.
    public nonisolated func trigger(_ name: String) {
        continuation.yield(.webhook(name))
    }

    public func run() async throws {
        let cache = ObjectCache(kinds: [GitRepositorySpec.kind])
        let informer = Informer(store: objects.store, cache: cache, logger: logger)
        let continuation = self.continuation
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await informer.run { change in continuation.yield(.changed(change)) }
                }
                group.addTask { await self.timerLoop() }
                for await event in self.events {
                    if case .changed(let change) = event, change.new == nil {
                        // A deleted source claims nothing any more: the owners it conflicted with are told.
                        group.addTask { await self.withdrawClaims(of: change.key.name) }
                    }
                    for (name, sync) in await self.handle(event) {
                        group.addTask { await self.perform(sync, of: name) }
                    }
                }
                group.cancelAll()
            }
        }
        continuation.finish()
    }

    /// Applies one event to the states; returns the syncs to start.
    private func handle(_ event: Event) -> [(String, GitSourceState.Sync)] {
        var started: [(String, GitSourceState.Sync)] = []
        switch event {
        case .changed(let change):
            let name = change.key.name
            guard let value = change.new, let repository = try? value.decode(as: GitRepository.self) else {
                states[name] = nil
                snapshots.record(nil, of: name)
                return []
            }
            var state = states[name] ?? GitSourceState()
            let sync = state.observe(
                spec: repository.spec, generation: value["metadata"]?["generation"]?.intValue,
                requestedAt: repository.metadata.annotations?[GitRepositorySpec.requestedAtAnnotation],
                status: repository.status)
            states[name] = state
            if let sync { started.append((name, sync)) }
        case .webhook(let name):
            if let sync = states[name]?.webhook() { started.append((name, sync)) }
        case .finished(let name, let sync, let result):
            if let next = states[name]?.finished(
                sync, result: result, now: .now, jitter: Double.random(in: 0...1))
            {
                started.append((name, next))
            }
        case .timer:
            let now = ContinuousClock.now
            for name in states.keys.sorted() {
                if let sync = states[name]?.pollDue(now: now) { started.append((name, sync)) }
            }
        }
        wake.signal()
        return started
    }

    /// Sleeps until the earliest poll is due (or the deadlines change), then says so.
    private func timerLoop() async {
        while !Task.isCancelled {
            let deadline = states.values.compactMap(\.nextPoll).min()
            await wake.wait(until: deadline)
            if let deadline, deadline <= .now {
                continuation.yield(.timer)
                // handle(.timer) moves the deadlines on and signals: wait for it before looking again.
                await wake.wait()
            }
        }
    }

    private func cache(for url: String) -> GitRepositoryCache {
        if let cache = caches[url] { return cache }
        let cache = GitRepositoryCache(url: url, parent: cacheDirectory, runner: runner)
        caches[url] = cache
        return cache
    }

    /// Removes what a deleted source claimed from the other sources' `status.conflicts`.
    private func withdrawClaims(of name: String) async {
        await SourceConflicts(objects: objects, logger: logger).record(claimant: name, claims: [], inventory: nil)
    }

    /// Runs one sync and reports its end.
    private func perform(_ sync: GitSourceState.Sync, of name: String) async {
        guard let state = states[name], let spec = state.spec else { return }
        let cache = cache(for: spec.url)
        let result = await GitSync(
            name: name, spec: spec, objects: objects, runner: runner, cache: cache,
            workDirectory: cacheDirectory, logger: logger, snapshots: snapshots
        ).run(sync, needsApply: { commit in state.needsApply(sync, commit: commit) })
        continuation.yield(.finished(name, sync, result))
    }
}

extension GitSourceController {
    /// The GitRepository `git` that `--git URL [--git-ref BRANCH] [--git-path DIR]` declares, and its errors.
    public static func declaration(url: String, branch: String?, path: String?) -> (object: JSONValue, errors: [String]) {
        var spec: [String: JSONValue] = ["url": .string(url)]
        if let branch { spec["ref"] = ["branch": .string(branch)] }
        if let path { spec["path"] = .string(path) }
        let object: JSONValue = [
            "apiVersion": .string(API.apiVersion), "kind": .string(GitRepositorySpec.kind),
            "metadata": ["name": "git"], "spec": .object(spec),
        ]
        let errors = GitRepositorySpec(url: url, ref: branch.map { .init(branch: $0) }, path: path).validate()
        return (object, errors.map { "spec.\($0.path): \($0.message)" })
    }

    /// Applies a GitRepository declared on the command line (as its own field manager: a later `apply` of the
    /// same object by a person takes the fields over).
    public func declare(_ object: JSONValue) async throws {
        _ = try await objects.patch(
            Kinds.gitRepository, name: object["metadata"]?["name"]?.stringValue ?? "git", patch: .apply(object),
            subresource: nil, options: WriteOptions(fieldManager: "steady-git-flags", force: true))
    }
}
