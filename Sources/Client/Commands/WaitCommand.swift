import ArgumentParser
import Foundation
import Resources

/// `steady wait --for=condition=Ready[=true|false] KIND/NAME... [--timeout 30s]`, `--for=delete`, or
/// `--for=converged` (Ready, and synced by every runner the objects affect, with progress): watches objects
/// until each meets the condition. Objects are named as arguments or with `-f PATH` as `apply` reads them.
///
/// Exit status: 0 when every object met it, 1 on timeout (naming the objects that did not and their current
/// condition, or the runners that lag and why) or error. Waiting for `Complete` on an object whose `Failed`
/// condition is True (a RemoteRun that failed) ends at once with 1 instead of waiting for the timeout.
public struct WaitCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait until objects meet a condition, or are deleted.")

    @OptionGroup public var connection: ConnectionOptions

    @Argument(help: ArgumentHelp("KIND/NAME... or KIND NAME...", valueName: "object"))
    public var objects: [String] = []

    @OptionGroup public var manifests: ManifestFileOptions

    @Option(
        name: .customLong("for"),
        help: ArgumentHelp(
            "condition=TYPE, condition=TYPE=true|false|unknown, delete, or converged (Ready and synced by every "
                + "runner affected).", valueName: "condition"))
    public var condition: String

    @Option(help: "How long to wait, such as 30s, 5m or 1h; 0 checks once.")
    public var timeout = "30s"

    /// Creates the command with default flags.
    public init() {}

    /// Checks the arguments.
    public func validate() throws {
        _ = try WaitCondition.parse(condition)
        _ = try CommandSupport.seconds(timeout)
        if objects.isEmpty && manifests.files.isEmpty {
            throw ValidationError("name the objects to wait for: KIND/NAME... or -f PATH")
        }
    }

    /// The objects named as arguments and declared in the `-f` manifests.
    private func targets() throws -> [ConvergenceWaiter.Target] {
        var targets: [ConvergenceWaiter.Target] = []
        if !objects.isEmpty {
            for reference in try CommandSupport.references(objects, allowKindOnly: false) {
                targets += reference.names.map { .init(info: reference.info, name: $0) }
            }
        }
        if !manifests.files.isEmpty {
            targets += try manifests.validatedObjects().map { .init(info: $0.info, name: $0.name) }
        }
        return targets
    }

    /// Watches every object at once until all meet the condition or time runs out.
    public func run() async throws {
        try await CommandSupport.run {
            let condition = try WaitCondition.parse(self.condition)
            let seconds = try CommandSupport.seconds(timeout)
            let targets = try self.targets()
            if condition == .converged {
                try await connection.withClient { client in
                    try await ConvergenceWaiter(client: client).waitPrintingProgress(
                        for: targets, timeout: .milliseconds(Int64(seconds * 1000)))
                }
                return
            }
            let progress = WaitProgress()
            let isComplete = try await connection.withClient { client in
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for target in targets {
                        group.addTask {
                            let isMet = try await Self.wait(
                                for: target.info, name: target.name, condition: condition, once: seconds == 0,
                                client: client, progress: progress)
                            if isMet { Console.out("\(target.info.qualifiedName)/\(target.name) condition met") }
                            return isMet
                        }
                    }
                    if seconds > 0 {
                        // The timer is the only task that returns false when waiting.
                        group.addTask {
                            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                            return false
                        }
                    }
                    var met = 0
                    var finished = 0
                    for try await isMet in group {
                        finished += 1
                        if isMet { met += 1 }
                        if met == targets.count || (!isMet && seconds > 0) || finished == targets.count && seconds == 0 {
                            break
                        }
                    }
                    group.cancelAll()
                    return met == targets.count
                }
            }
            if !isComplete {
                for target in targets {
                    let key = "\(target.info.qualifiedName)/\(target.name)"
                    guard let state = await progress.state(of: key), !condition.isMet(state.object) else { continue }
                    Console.error(
                        "error: timed out waiting for the condition on \(key): \(condition.describe(state.object))")
                }
                for target in targets {
                    let key = "\(target.info.qualifiedName)/\(target.name)"
                    if await progress.state(of: key) == nil {
                        Console.error("error: timed out waiting for the condition on \(key): not checked yet")
                    }
                }
                throw ExitCode.failure
            }
        }
    }

    /// Returns true once the object meets the condition; with `once`, checks once and returns whether it did.
    /// Otherwise it waits until cancelled (the caller's timer does that).
    /// A condition that cannot be met any more (`Complete` on a run that `Failed`) is thrown as an error.
    static func wait(
        for info: KindInfo, name: String, condition: WaitCondition, once: Bool, client: APIClient,
        progress: WaitProgress
    ) async throws -> Bool {
        try await wait(for: info, name: name, once: once, client: client, progress: progress) { object in
            if let failure = condition.failure(object) {
                throw CommandError("\(info.qualifiedName)/\(name) will not meet the condition: \(failure)")
            }
            return condition.isMet(object)
        }
    }

    /// Returns true once `isMet` is true of the object (nil when it does not exist), looked at each time it
    /// changes; with `once`, looks once. Otherwise it waits until cancelled, or until `isMet` throws.
    static func wait(
        for info: KindInfo, name: String, once: Bool, client: APIClient, progress: WaitProgress,
        until isMet: @Sendable (JSONValue?) throws -> Bool
    ) async throws -> Bool {
        let key = "\(info.qualifiedName)/\(name)"
        var isFirstLook = true
        var quietWatches = 0
        while true {
            let list = try await client.list(info, fieldSelector: "metadata.name=\(name)")
            let current = list.items.first
            await progress.record(key, current)
            if try isMet(current) { return true }
            if current == nil && isFirstLook {
                // As kubectl: waiting for a condition on an object that does not exist is an error at once.
                _ = try await client.get(info, name: name)
            }
            isFirstLook = false
            if once { return false }
            var delivered = false
            do {
                for try await event in client.watch(info, name: name, resourceVersion: list.resourceVersion) {
                    delivered = true
                    guard event.type != "BOOKMARK" else { continue }
                    let object: JSONValue? = event.type == "DELETED" ? JSONValue?.none : event.object
                    await progress.record(key, object)
                    if try isMet(object) { return true }
                }
            } catch let error as APIClientError where error.isGone {
                // Too old to resume: list again.
            }
            // A server ending watches at once is not hammered: the pause grows while watches bring nothing.
            quietWatches = delivered ? 0 : quietWatches + 1
            try await Task.sleep(for: Backoff.watchRestart.jitteredDelay(attempt: quietWatches))
        }
    }
}

/// The last state seen of each object a wait follows, for the timeout message.
actor WaitProgress {
    struct State {
        var object: JSONValue?
    }

    private var states: [String: State] = [:]
    private var lookouts: [String: [CheckedContinuation<Void, Never>]] = [:]

    func record(_ key: String, _ object: JSONValue?) {
        states[key] = State(object: object)
        for lookout in lookouts.removeValue(forKey: key) ?? [] { lookout.resume() }
    }

    func state(of key: String) -> State? {
        states[key]
    }

    /// Returns once the object `key` has been looked at (listed or seen in a watch) at least once.
    func waitUntilSeen(_ key: String) async {
        if states[key] != nil { return }
        await withCheckedContinuation { lookouts[key, default: []].append($0) }
    }
}
