import ArgumentParser
import Foundation
import Resources
import Synchronization

/// `steady run [--name NAME] (--all | --runners a,b | -l k=v) [--condition C]... [--timeout D]
/// [--delivery-timeout D] [--batch-size N|P%] [--max-errors N|P%] [--keep-output] [--async] [-- COMMAND ARGS...]`:
/// creates a RemoteRun and, unless `--async`, follows it to the end.
///
/// While it runs, each runner's output goes to standard output, a line at a time prefixed `runner | ` (stderr
/// lines `runner (stderr) | `), and the phase counts go to standard error each time they change (from a watch of
/// the RemoteRun). It ends with one summary line on standard output, such as
/// `run-x: 19/20 succeeded, 1 failed (web-3: exit 2)`.
///
/// Exit status: 0 only if every targeted runner Succeeded (a run that targets no runner fails); with `--async`,
/// 0 once the run is created, and its name is printed.
public struct RunCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agents' run command (or a command) on runners, and collect their results.")

    @OptionGroup public var connection: ConnectionOptions

    @Option(help: "The RemoteRun's name (default: run-<timestamp>-<random>).")
    public var name: String?

    @Flag(help: "Run on every runner.")
    public var all = false

    @Option(help: ArgumentHelp("Run on these runners, comma-separated.", valueName: "a,b"))
    public var runners: String?

    @Option(
        name: [.customShort("l"), .customLong("selector")],
        help: ArgumentHelp("Run on runners with these labels.", valueName: "k=v"))
    public var selector: String?

    @Option(name: .customLong("condition"), help: "A condition passed to the run command (repeatable).")
    public var conditions: [String] = []

    @Option(help: "How long each runner's run may take, such as 30s or 5m; then it is killed (TimedOut).")
    public var timeout: String?

    @Option(help: "How long an agent has to take the run before its runner is Unreachable (default 1m).")
    public var deliveryTimeout: String?

    @Option(help: ArgumentHelp("How many runners run at once: a count or a percentage.", valueName: "N|P%"))
    public var batchSize: String?

    @Option(help: ArgumentHelp("How many runners may fail before the rest are skipped.", valueName: "N|P%"))
    public var maxErrors: String?

    @Flag(help: "Keep each runner's output after the run, for steady logs.")
    public var keepOutput = false

    @Flag(name: .customLong("async"), help: "Create the run, print its name and return at once.")
    public var isAsynchronous = false

    @Argument(
        parsing: .postTerminator,
        help: ArgumentHelp(
            "After --, a command with an absolute path to run instead of the agents' run command (agents started "
                + "with --allow-exec only).", valueName: "command"))
    public var command: [String] = []

    /// Creates the command with default flags.
    public init() {}

    /// Checks the arguments: every error names the flag to fix.
    public func validate() throws {
        _ = try makeObject(name: name ?? "run")
    }

    /// The RemoteRun to create.
    func makeObject(name: String) throws -> JSONValue {
        if let error = Names.validateObjectName(name).first {
            throw ValidationError("--name \(name): \(error.message)")
        }
        let target = RemoteRunSpec.Target.make(
            all: all ? true : nil, runners: try runners.map(Self.runnerList),
            runnerSelector: try selector.map(Self.labelSelector))
        if [target.all != nil, target.runners != nil, target.runnerSelector != nil].filter({ $0 }).count != 1 {
            throw ValidationError("choose the runners with exactly one of --all, --runners a,b or -l key=value")
        }
        var spec = RemoteRunSpec(target: target, conditions: conditions.isEmpty ? nil : conditions)
        spec.command = command.isEmpty ? nil : command
        spec.keepOutput = keepOutput ? true : nil
        spec.asynchronous = isAsynchronous ? true : nil
        spec.timeout = try timeout.map { try Self.duration($0, flag: "--timeout") }
        spec.deliveryTimeout = try deliveryTimeout.map { try Self.duration($0, flag: "--delivery-timeout") }
        spec.batchSize = try batchSize.map { try Self.countOrPercent($0, flag: "--batch-size") }
        spec.maxErrors = try maxErrors.map { try Self.countOrPercent($0, flag: "--max-errors") }
        if let error = spec.validate().first {
            throw ValidationError("\(Self.flag(for: error.path)): \(error.message)")
        }
        var object: JSONValue = [
            "apiVersion": .string(API.apiVersion), "kind": .string(RemoteRunSpec.kind),
            "metadata": ["name": .string(name)],
        ]
        object["spec"] = try JSONValue(encoding: spec)
        return object
    }

    /// The flag that sets the spec field at `path`.
    static func flag(for path: String) -> String {
        let field = path.prefix { $0 != "[" && $0 != "." }
        switch field {
        case "target": return "--all, --runners or -l"
        case "conditions": return "--condition"
        case "command": return "the command after --"
        case "timeout": return "--timeout"
        case "deliveryTimeout": return "--delivery-timeout"
        case "batchSize": return "--batch-size"
        case "maxErrors": return "--max-errors"
        default: return String(field)
        }
    }

    static func runnerList(_ text: String) throws -> [String] {
        let names = text.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        if let empty = names.firstIndex(where: \.isEmpty) {
            throw ValidationError("--runners \(text): runner \(empty + 1) is empty; write names like web-1,web-2")
        }
        return names
    }

    /// `-l role=web,site in (paris,lyon),!legacy` as a `runnerSelector`.
    static func labelSelector(_ text: String) throws -> LabelSelector {
        let query: LabelQuery
        do {
            query = try LabelQuery.parse(text)
        } catch {
            throw ValidationError("-l \(text): \(error.message)")
        }
        guard !query.terms.isEmpty else { throw ValidationError("-l: give at least one label, like -l role=web") }
        var selector = LabelSelector()
        for term in query.terms {
            switch term {
            case .equals(let key, let value):
                selector.matchLabels = (selector.matchLabels ?? [:]).merging([key: value]) { $1 }
            case .notEquals(let key, let value): selector.add(.init(key: key, operator: .notIn, values: [value]))
            case .in(let key, let values): selector.add(.init(key: key, operator: .in, values: values))
            case .notIn(let key, let values): selector.add(.init(key: key, operator: .notIn, values: values))
            case .exists(let key): selector.add(.init(key: key, operator: .exists))
            case .doesNotExist(let key): selector.add(.init(key: key, operator: .doesNotExist))
            }
        }
        return selector
    }

    static func duration(_ text: String, flag: String) throws -> DurationString {
        do {
            return try DurationString(text)
        } catch {
            throw ValidationError("\(flag) \(text): not a duration; use a number with a unit, like 30s, 5m or 1h")
        }
    }

    static func countOrPercent(_ text: String, flag: String) throws -> CountOrPercent {
        if text.hasSuffix("%"), let percent = Int(text.dropLast()), (0...100).contains(percent) {
            return .percent(percent)
        }
        if let count = Int(text), count >= 0 { return .count(count) }
        throw ValidationError("\(flag) \(text): use a count like 5 or a percentage like 20%")
    }

    /// `run-20261201-192000-3fa9c1`: sorts by creation time, and two runs started in the same second differ.
    static func generatedName(now: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let random = (0..<6).map { _ in String(Int.random(in: 0..<16), radix: 16) }.joined()
        return "run-\(formatter.string(from: now))-\(random)"
    }

    /// Creates the run, then follows it unless `--async`.
    public func run() async throws {
        try await CommandSupport.run {
            let name = self.name ?? Self.generatedName()
            let object = try makeObject(name: name)
            let final: JSONValue? = try await connection.withClient { client in
                _ = try await client.create(Kinds.remoteRun, object)
                if isAsynchronous { return nil }
                return try await Self.follow(
                    name: name, client: client, output: { FileHandle.standardOutput.write(Data($0)) },
                    progress: { Console.error("\(name): \($0)") })
            }
            guard let final else {
                Console.out(name)
                return
            }
            Console.out(RemoteRunSummary.line(name: name, final))
            if !RemoteRunSummary.isSuccess(final) { throw ExitCode.failure }
        }
    }

    /// How long the output may lag behind the run's end before it is no longer waited for.
    static let outputGrace: Duration = .seconds(10)

    /// Streams the run's output to `output` and its phase counts to `progress` (each time they change) until the
    /// run is over; returns the run as it ended.
    static func follow(
        name: String, client: APIClient, output: @escaping @Sendable ([UInt8]) -> Void,
        progress: @escaping @Sendable (String) -> Void
    ) async throws -> JSONValue {
        enum Step: Sendable {
            case outputEnded
            case over(JSONValue)
            case graceEnded
        }
        return try await withThrowingTaskGroup(of: Step.self) { group in
            group.addTask {
                do {
                    for try await text in RunLog(client: client, name: name, follow: true) { output(text) }
                } catch let error as APIClientError where error.code == .server {
                    // A server that keeps no output (or an old one): the results still come.
                    progress("output not shown: \(error.message)")
                }
                return .outputEnded
            }
            group.addTask {
                let seen = WaitProgress()
                let shown = ShownLine()
                _ = try await WaitCommand.wait(
                    for: Kinds.remoteRun, name: name, once: false, client: client, progress: seen
                ) { object in
                    guard let object else { throw CommandError("remoterun/\(name) was deleted before it finished") }
                    let ready = WaitCondition.condition(type: "Ready", status: "False")
                    if RemoteRunSummary.runners(of: object).isEmpty && ready.isMet(object) {
                        // The target resolves to no runner: nothing will run until it does.
                        throw CommandError(
                            "remoterun/\(name) has no runner to run on: \(ready.describe(object)); fix the target, "
                                + "or delete the run with steady delete remoterun/\(name)")
                    }
                    let line = RemoteRunSummary.progress(object)
                    if shown.changes(to: line) { progress(line) }
                    return RemoteRunSummary.isOver(object)
                }
                guard let object = await seen.state(of: "\(Kinds.remoteRun.qualifiedName)/\(name)")?.object else {
                    throw CommandError("remoterun/\(name) was deleted before it finished")
                }
                return .over(object)
            }
            var final: JSONValue?
            var isOutputDone = false
            while let step = try await group.next() {
                switch step {
                case .outputEnded: isOutputDone = true
                case .over(let object):
                    final = object
                    group.addTask {
                        try await Task.sleep(for: RunCommand.outputGrace)
                        return .graceEnded
                    }
                case .graceEnded: isOutputDone = true
                }
                if let final, isOutputDone {
                    group.cancelAll()
                    return final
                }
            }
            throw CommandError("remoterun/\(name): the watch ended before the run did")
        }
    }
}

/// The last progress line shown, so that a line is printed only when it changes.
private final class ShownLine: Sendable {
    private let line = Mutex("")

    func changes(to text: String) -> Bool {
        line.withLock { line in
            guard line != text else { return false }
            line = text
            return true
        }
    }
}

extension LabelSelector {
    fileprivate mutating func add(_ requirement: Requirement) {
        matchExpressions = (matchExpressions ?? []) + [requirement]
    }
}
