import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Resources
import Subprocess
import Synchronization

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Carries a rendered message to an action's receiver: stdout, a file, a process, an HTTP endpoint.
///
/// Each call is one attempt; it returns on success and throws ``DeliveryFailure`` otherwise. Retries, timeouts
/// between attempts and records are the pipeline's.
public struct DeliveryTransports: Sendable {
    /// Whether `exec` actions may run here (`--allow-exec`).
    public var allowsExec: Bool
    /// `controller`, or the runner's name: given to exec actions and kept in execution records.
    public var location: String
    let httpClient: HTTPClient
    let files: FileAppender
    let standardOutput: StandardOutputWriter

    public init(httpClient: HTTPClient, allowsExec: Bool, location: String) {
        self.httpClient = httpClient
        self.allowsExec = allowsExec
        self.location = location
        self.files = FileAppender()
        self.standardOutput = StandardOutputWriter()
    }

    /// Makes one attempt at `delivery` with `action`, whose secrets are looked up in `table`.
    public func deliver(
        _ delivery: Delivery, action: ActionSpec, table: RouteTable, timeout: Duration
    ) async throws(DeliveryFailure) {
        switch action.type {
        case .stdout:
            standardOutput.write(delivery.message.body + [0x0A])
        case .file:
            try await appendLines(of: [delivery], action: action)
        case .exec:
            guard let exec = action.exec else { throw DeliveryFailure(permanent: "exec: spec.exec is missing") }
            try await runProcess(exec, delivery: delivery, table: table, timeout: timeout)
        case .http:
            guard let http = action.http else { throw DeliveryFailure(permanent: "http: spec.http is missing") }
            let url = try http.urlFrom.map { source throws(DeliveryFailure) in
                try table.secretValue(source.secretKeyRef)
            } ?? http.url ?? ""
            let headers = try (http.headers ?? []).map { value throws(DeliveryFailure) in
                (value.name, try table.resolve(value))
            }
            try await post(
                url: url, method: http.method ?? "POST", headers: headers, contentType: nil, delivery: delivery,
                timeout: timeout)
        case .webhook:
            guard let hook = action.webhook else { throw DeliveryFailure(permanent: "webhook: spec.webhook is missing") }
            let url = try hook.urlFrom.map { source throws(DeliveryFailure) in
                try table.secretValue(source.secretKeyRef)
            } ?? hook.url ?? ""
            let headers = try (hook.headers ?? []).map { value throws(DeliveryFailure) in
                (value.name, try table.resolve(value))
            }
            try await post(
                url: url, method: "POST", headers: headers, contentType: "application/json", delivery: delivery,
                timeout: timeout)
        case .slack, .teams:
            try await deliverChatMessage(delivery, action: action, table: table, timeout: timeout)
        case .pagerduty:
            try await deliverPagerDutyEvent(delivery, action: action, table: table, timeout: timeout)
        case .email:
            try await deliverEmail(delivery, action: action, table: table, timeout: timeout)
        }
    }

    /// One attempt at every delivery of a `file` action: their lines appended with one write and one fsync.
    public func appendLines(of deliveries: [Delivery], action: ActionSpec) async throws(DeliveryFailure) {
        guard let file = action.file else { throw DeliveryFailure(permanent: "file: spec.file is missing") }
        try await files.append(line: deliveries.flatMap(Self.fileLine), to: file.path)
    }

    /// The NDJSON line a `file` action appends: the delivery's identity and the message, as JSON when it is JSON
    /// (as sent when it is printable ASCII, so one line of valid text; else rewritten), members in name order.
    static func fileLine(_ delivery: Delivery) -> [UInt8] {
        let body = delivery.message.body
        var line = JSONObjectWriter(capacity: body.count + 256)
        line.add("action", delivery.action)
        line.add("deliveryId", delivery.deliveryID)
        line.add("eventId", delivery.eventID)
        if let message = try? JSONValue.parse(Data(body)) {
            if body.allSatisfy({ (0x20...0x7E).contains($0) }) {
                line.add("message", json: body)
            } else {
                line.add("message", message)
            }
        } else {
            line.add("message", String(decoding: body, as: UTF8.self))
        }
        line.add("route", delivery.route)
        if let title = delivery.message.title { line.add("title", title) }
        return line.finish() + [0x0A]
    }

    func post(
        url: String, method: String, headers: [(String, String)], contentType: String?, delivery: Delivery,
        body: [UInt8]? = nil, timeout: Duration
    ) async throws(DeliveryFailure) {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method.uppercased())
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let contentType, !request.headers.contains(name: "Content-Type") {
            request.headers.add(name: "Content-Type", value: contentType)
        }
        request.headers.replaceOrAdd(name: "Steady-Delivery-Id", value: delivery.deliveryID)
        if request.method != .GET && request.method != .HEAD {
            request.body = .bytes(body ?? delivery.message.body)
        }
        let status: HTTPResponseStatus
        do {
            let response = try await httpClient.execute(request, timeout: TimeAmount(timeout))
            status = response.status
            // The body is read (up to 64 KiB) so the connection can be reused; its content is not kept.
            _ = try? await response.body.collect(upTo: 64 * 1024)
        } catch {
            throw DeliveryFailure("\(method.uppercased()) \(Self.redacted(url)): \(error)")
        }
        guard (200..<300).contains(status.code) else {
            let message = "\(method.uppercased()) \(Self.redacted(url)): the receiver answered \(status.code)"
            // A 4xx other than a timeout or throttling will be answered the same way again.
            let isPermanent = (400..<500).contains(status.code) && status.code != 408 && status.code != 429
            throw isPermanent ? DeliveryFailure(permanent: message) : DeliveryFailure(message)
        }
    }

    /// A URL without its query and user information, which often hold credentials.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(invalid URL)" }
        components.user = nil
        components.password = nil
        if components.query != nil { components.query = "…" }
        return components.string ?? "(invalid URL)"
    }

    private func runProcess(
        _ exec: ActionSpec.Exec, delivery: Delivery, table: RouteTable, timeout: Duration
    ) async throws(DeliveryFailure) {
        guard allowsExec else {
            throw DeliveryFailure(
                permanent: "exec actions run only where steady was started with --allow-exec (\(location) was not)")
        }
        var variables: [Environment.Key: String?] = [
            "STEADY_EVENT_ID": delivery.eventID, "STEADY_ROUTE": delivery.route, "STEADY_ACTION": delivery.action,
            "STEADY_DELIVERY_ID": delivery.deliveryID, "STEADY_LOCATION": location,
        ]
        for value in exec.env ?? [] {
            variables[Environment.Key(stringLiteral: value.name)] = try table.resolve(value)
        }
        var options = PlatformOptions()
        // A session and process group of its own, so the timeout stops everything it started.
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let timedOut = TimeoutFlag()
        let outcome: (status: TerminationStatus, stderr: [UInt8])
        do {
            let result = try await Subprocess.run(
                .path(FilePath(exec.command[0])), arguments: Arguments(Array(exec.command.dropFirst())),
                environment: .inherit.updating(variables),
                workingDirectory: exec.workingDirectory.map { FilePath($0) },
                platformOptions: options, input: .array(delivery.message.body), output: .discarded, error: .sequence
            ) { execution in
                try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                    group.addTask {
                        var tail: [UInt8] = []
                        for try await buffer in execution.standardError {
                            tail += buffer.withUnsafeBytes { Array($0) }
                            if tail.count > 2048 { tail.removeFirst(tail.count - 2048) }
                        }
                        return tail
                    }
                    group.addTask {
                        try await Task.sleep(for: timeout)
                        timedOut.set()
                        try? execution.send(signal: .terminate, toProcessGroup: true)
                        try await Task.sleep(for: .seconds(2))
                        try? execution.send(signal: .kill, toProcessGroup: true)
                        return nil
                    }
                    var tail: [UInt8] = []
                    while let finished = try await group.next() {
                        if let finished {
                            tail = finished
                            break
                        }
                    }
                    group.cancelAll()
                    return tail
                }
            }
            outcome = (result.terminationStatus, result.closureResult)
        } catch {
            throw DeliveryFailure("cannot run \(exec.command[0]): \(error)")
        }
        let stderr = String(decoding: outcome.stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if timedOut.isSet {
            throw DeliveryFailure("\(exec.command[0]) did not finish within \(timeout) and was killed")
        }
        switch outcome.status {
        case .exited(0):
            return
        case .exited(let code):
            throw DeliveryFailure("\(exec.command[0]) exited with \(code)" + (stderr.isEmpty ? "" : ": \(stderr)"))
        case .signaled(let signal):
            throw DeliveryFailure("\(exec.command[0]) was killed by signal \(signal)")
        }
    }
}

/// Set once an exec action's timeout has fired, read after the process ended.
final class TimeoutFlag: Sendable {
    private let value = Mutex(false)

    func set() { value.withLock { $0 = true } }

    var isSet: Bool { value.withLock { $0 } }
}

extension TimeAmount {
    /// The same span as a NIO time amount.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Appends lines to files, one open descriptor per path. A line counts as written once it is on disk (fsync), and
/// lines that arrive while a file is being synced are written and synced together: one fsync for the lot, on NIO's
/// blocking thread pool, so a slow disk neither holds the threads tasks run on nor limits a file to one line per sync.
final class FileAppender: Sendable {
    private let files = Mutex<[String: AppendedFile]>([:])

    func append(line: [UInt8], to path: String) async throws(DeliveryFailure) {
        let file = files.withLock { files in
            if let file = files[path] { return file }
            let file = AppendedFile(path: path)
            files[path] = file
            return file
        }
        do {
            try await file.lines.submit(line, on: .singleton) { lines in try file.write(lines) }
        } catch let failure as DeliveryFailure {
            throw failure
        } catch {
            throw DeliveryFailure("cannot write \(path): \(error)")
        }
    }

    /// One file: its descriptor, and the lines waiting for the next write.
    private final class AppendedFile: Sendable {
        let path: String
        let lines = GroupCommit<[UInt8]>()
        /// Open while writes succeed; closed after a failure, so the next write opens the file again.
        private let descriptor = Mutex<Int32>(-1)

        init(path: String) { self.path = path }

        /// Writes `lines` at the end of the file and syncs it; only one batch at a time (``GroupCommit``).
        func write(_ lines: [[UInt8]]) throws(DeliveryFailure) {
            let bytes = Array(lines.joined())
            let failure: String? = descriptor.withLock { descriptor in
                if descriptor < 0 {
                    descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
                    guard descriptor >= 0 else { return "cannot open \(path): \(String(cString: strerror(errno)))" }
                }
                var problem: String?
                if !AtomicFile.writeAll(bytes, to: descriptor) {
                    problem = "cannot write \(path): \(String(cString: strerror(errno)))"
                } else if fsync(descriptor) != 0 {
                    problem = "cannot sync \(path): \(String(cString: strerror(errno)))"
                }
                if problem != nil {
                    close(descriptor)
                    descriptor = -1
                }
                return problem
            }
            if let failure { throw DeliveryFailure(failure) }
        }

        deinit {
            descriptor.withLock { if $0 >= 0 { close($0) } }
        }
    }
}

/// Writes whole lines to standard output, one writer at a time so lines never interleave.
final class StandardOutputWriter: Sendable {
    private let lock = Mutex(())

    func write(_ bytes: [UInt8]) {
        lock.withLock { _ in _ = AtomicFile.writeAll(bytes, to: 1) }
    }
}
