import Hummingbird
import NIOCore

/// Named checks behind `/readyz` and `/livez`, answered as kube-apiserver answers them.
///
/// Each check is a closure that returns when the check passes and throws when it fails; the error's description
/// says why. The runtime fills the checks (the store is open, the informers have synced) and the API server runs
/// them on every probe:
///
/// - `GET /readyz`: `200 ok`, or `503` with one line per check (`[+]store ok`, `[-]informers failed: reason
///   withheld`) and `readyz check failed`;
/// - `GET /readyz?verbose`: the lines in either case, with each failure's reason;
/// - `GET /readyz?exclude=NAME`: without that check; `GET /readyz/NAME`: that check alone (404 if unknown).
public struct HealthChecks: Sendable {
    /// One named check: returns when healthy, throws an error naming the problem otherwise.
    public struct Check: Sendable {
        /// The name shown in `[+]NAME ok` and used by `/readyz/NAME` and `?exclude=NAME`.
        public var name: String
        /// Runs the check.
        public var run: @Sendable () async throws -> Void

        /// Creates a check.
        public init(_ name: String, run: @escaping @Sendable () async throws -> Void) {
            self.name = name
            self.run = run
        }
    }

    /// A failed check's reason, for checks that have no error of their own to throw.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// Why the check failed.
        public var description: String

        /// Creates a failure saying why.
        public init(_ description: String) {
            self.description = description
        }
    }

    /// The checks, in the order they are shown.
    public private(set) var checks: [Check]

    /// Checks holding only `ping`, which always passes: the server answers.
    public init() {
        checks = [Check("ping") {}]
    }

    /// Adds a check after the others; a check of the same name is replaced in place.
    public mutating func add(_ name: String, run: @escaping @Sendable () async throws -> Void) {
        let check = Check(name, run: run)
        if let index = checks.firstIndex(where: { $0.name == name }) {
            checks[index] = check
        } else {
            checks.append(check)
        }
    }

    /// The outcome of one check.
    public struct Outcome: Sendable, Equatable {
        /// The check's name.
        public var name: String
        /// Nil when the check passed; why it failed otherwise.
        public var failure: String?
    }

    /// Runs the checks not excluded, concurrently, and returns their outcomes in order.
    public func run(excluding excluded: Set<String> = []) async -> [Outcome] {
        let selected = checks.filter { !excluded.contains($0.name) }
        return await withTaskGroup(of: (Int, Outcome).self) { group in
            for (index, check) in selected.enumerated() {
                group.addTask {
                    do {
                        try await check.run()
                        return (index, Outcome(name: check.name, failure: nil))
                    } catch {
                        return (index, Outcome(name: check.name, failure: "\(error)"))
                    }
                }
            }
            var outcomes = [Outcome?](repeating: nil, count: selected.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes.compactMap { $0 }
        }
    }

    /// Serves `path` (`/readyz`, `/livez`, `/healthz`) and `path/NAME` for each check on `router`.
    func register(_ path: String, on router: Router<APIRequestContext>) {
        let endpoint = String(path.dropFirst())
        router.get(RouterPath(stringLiteral: path)) { request, _ in
            let query = request.uri.queryParameters
            let excluded = Set(query[values: "exclude"].map(String.init))
            return Self.response(
                endpoint: endpoint, outcomes: await run(excluding: excluded), verbose: query["verbose"] != nil)
        }
        router.get(RouterPath(stringLiteral: "\(path)/:check")) { _, context in
            let name = context.parameters.get("check") ?? ""
            guard let check = checks.first(where: { $0.name == name }) else {
                let known = checks.map(\.name).joined(separator: ", ")
                return Self.text("no such check \"\(name)\"; the checks are \(known)\n", .notFound)
            }
            let single = HealthChecks(checks: [check])
            return Self.response(endpoint: endpoint, outcomes: await single.run(), verbose: true)
        }
    }

    private init(checks: [Check]) {
        self.checks = checks
    }

    /// kube-apiserver's answer: `ok` when everything passed and no detail was asked for, else one line per check.
    static func response(endpoint: String, outcomes: [Outcome], verbose: Bool) -> Response {
        let isHealthy = outcomes.allSatisfy { $0.failure == nil }
        if isHealthy && !verbose { return text("ok", .ok) }
        var lines = outcomes.map { outcome in
            guard let failure = outcome.failure else { return "[+]\(outcome.name) ok" }
            return "[-]\(outcome.name) failed: \(verbose ? failure : "reason withheld")"
        }
        lines.append(isHealthy ? "\(endpoint) check passed" : "\(endpoint) check failed")
        return text(lines.joined(separator: "\n") + "\n", isHealthy ? .ok : .serviceUnavailable)
    }

    private static func text(_ body: String, _ status: HTTPResponse.Status) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
