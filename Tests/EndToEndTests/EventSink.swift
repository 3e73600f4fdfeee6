import Foundation
import Hummingbird
import Synchronization

/// A receiver the event tests start on loopback: records every request and answers 503 while it is "down".
final class EventSink: Sendable {
    struct Received: Sendable {
        var path: String
        var body: String
        var deliveryID: String?
        var contentType: String?
    }

    /// What the handlers share with the test.
    final class Recorder: Sendable {
        let received = Mutex<[Received]>([])
        let down = Mutex(false)
    }

    private let recorder = Recorder()
    private let task = Mutex<Task<Void, any Error>?>(nil)
    let port: Int

    /// Starts the sink on `port` (a free one when 0) and waits until it listens.
    init(port: Int = 0, isDown: Bool = false) async throws {
        let recorder = self.recorder
        recorder.down.withLock { $0 = isDown }
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 4 << 20)
            if recorder.down.withLock({ $0 }) { return Response(status: .serviceUnavailable) }
            recorder.received.withLock {
                $0.append(
                    Received(
                        path: request.uri.path, body: String(buffer: body),
                        deliveryID: request.headers[.init("Steady-Delivery-Id")!],
                        contentType: request.headers[.contentType]))
            }
            return Response(status: .ok)
        }
        router.post("/**", use: handler)
        router.put("/**", use: handler)
        let bound = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in bound.continuation.yield(channel.localAddress?.port ?? 0) })
        task.withLock { $0 = Task { try await app.runService() } }
        var iterator = bound.stream.makeAsyncIterator()
        self.port = await iterator.next() ?? 0
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }

    var requests: [Received] { recorder.received.withLock { $0 } }

    func setDown(_ isDown: Bool) { recorder.down.withLock { $0 = isDown } }

    func stop() {
        task.withLock { $0?.cancel() }
    }
}
