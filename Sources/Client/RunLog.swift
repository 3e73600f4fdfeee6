import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Resources

/// The text of a RemoteRun's `log` subresource, as it arrives: the stored output, then, when following, live
/// output until the run is over. Or a Runner's: the output of its latest scheduled run.
///
/// The request starts on the first `next()` and runs in the iterating task, so cancelling that task ends it.
/// An error answer (unknown run or runner, 403) is thrown as ``APIClientError``.
public struct RunLog: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let client: APIClient
    let path: String
    let query: [(String, String)]

    /// The log of the RemoteRun `name`: one runner's (no prefixes) or every runner's, followed or not; or, with
    /// `kind` ``Kinds/runner``, of the Runner `name`.
    public init(
        client: APIClient, kind: KindInfo = Kinds.remoteRun, name: String, runner: String? = nil, follow: Bool = false
    ) {
        self.client = client
        path = client.itemPath(kind, name, subresource: "log")
        var query: [(String, String)] = []
        if let runner { query.append(("runner", runner)) }
        if follow { query.append(("follow", "true")) }
        self.query = query
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(log: self)
    }

    /// Reads the streamed body chunk by chunk.
    public struct Iterator: AsyncIteratorProtocol {
        let log: RunLog
        private var body: HTTPClientResponse.Body.AsyncIterator?

        init(log: RunLog) {
            self.log = log
        }

        /// The next bytes of text, or nil at the end.
        public mutating func next() async throws -> [UInt8]? {
            let client = log.client
            if body == nil {
                let response = try await client.execute(
                    .GET, path: log.path, query: log.query, body: nil, contentType: nil, accept: "text/plain",
                    deadline: .distantFuture)
                guard response.status == .ok else {
                    let data = try await client.collect(response)
                    throw APIClientError.decoding(status: Int(response.status.code), body: data, server: client.server)
                }
                body = response.body.makeAsyncIterator()
            }
            do {
                return try await body?.next().map { Array($0.readableBytesView) }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw APIClientError.connection(error, server: client.server)
            }
        }
    }
}
