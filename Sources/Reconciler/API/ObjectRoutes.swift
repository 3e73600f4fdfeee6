import Foundation
import Hummingbird
import Logging
import NIOCore
import Resources

/// The Kubernetes REST paths of every kind: list, watch, create, get, update, patch, delete and `status`.
struct ObjectRoutes: Sendable {
    let objects: ObjectService
    let metrics: APIMetrics
    let watchLimits: WatchLimits
    let openWatches: OpenWatches

    func register(on router: Router<APIRequestContext>) {
        let base = "/apis/\(API.group)/\(API.version)"
        router.get("\(base)/:resource") { request, context in
            try await handle("list", request, context) { info in
                if try QueryParameters(request).bool("watch") == true {
                    return try await watch(info, request: request, context: context)
                }
                return try await list(info, request: request, context: context)
            }
        }
        router.post("\(base)/:resource") { request, context in
            try await handle("create", request, context) { info in
                let body = try await readBody(request, context: context)
                let created = try await objects.create(info, body: body, options: try options(request, context))
                return APIResponses.json(created, status: .created)
            }
        }
        for suffix in ["/:name", "/:name/:subresource"] {
            router.get("\(base)/:resource\(suffix)") { request, context in
                try await handle("get", request, context) { info in
                    let name = try checkedName(context)
                    _ = try subresource(context, info: info)
                    let object = try await objects.get(info, name: name, revealSecrets: try reveal(request, context))
                    if TableRendering.isRequested(accept: request.headers[.accept]) {
                        return APIResponses.json(TableRendering.table([object], info: info, resourceVersion: nil))
                    }
                    return APIResponses.json(object)
                }
            }
            router.put("\(base)/:resource\(suffix)") { request, context in
                try await handle("update", request, context) { info in
                    let body = try await readBody(request, context: context)
                    let updated = try await objects.update(
                        info, name: try checkedName(context), body: body,
                        subresource: try subresource(context, info: info), options: try options(request, context))
                    return APIResponses.json(updated)
                }
            }
            router.patch("\(base)/:resource\(suffix)") { request, context in
                try await handle("patch", request, context) { info in
                    let patch = try await readPatch(request, context: context)
                    let result = try await objects.patch(
                        info, name: try checkedName(context), patch: patch,
                        subresource: try subresource(context, info: info), options: try options(request, context))
                    return APIResponses.json(result.object, status: result.created ? .created : .ok)
                }
            }
        }
        router.delete("\(base)/:resource/:name") { request, context in
            try await handle("delete", request, context) { info in
                var expected: Int64?
                if let body = try? await readBody(request, context: context),
                    let revision = body["preconditions"]?["resourceVersion"]?.stringValue
                {
                    expected = Int64(revision)
                }
                let deleted = try await objects.delete(
                    info, name: try checkedName(context), expectedRevision: expected,
                    options: try options(request, context))
                return APIResponses.json(deleted)
            }
        }
    }

    // MARK: Request plumbing

    private func handle(
        _ verb: String, _ request: Request, _ context: APIRequestContext,
        _ body: (KindInfo) async throws -> Response
    ) async throws -> Response {
        let resource = context.parameters.get("resource") ?? ""
        let response: Response
        do {
            guard let info = Kinds.info(forPlural: resource) else {
                throw APIError(.notFound, "the server could not find the requested resource (\(resource).\(API.group))")
            }
            try authorize(
                context.identity, verb: verb, info: info, name: context.parameters.get("name"),
                subresource: context.parameters.get("subresource"))
            response = try await body(info)
        } catch let error as APIError {
            response = APIResponses.error(error)
        } catch {
            response = APIResponses.error(APIError(.internalError, "\(error)"))
        }
        metrics.countRequest(verb: verb, resource: resource, code: Int(response.status.code))
        return response
    }

    /// Admins may do everything. An agent, like a Kubernetes node, may read its own Runner and write its
    /// status, and nothing else: no other runner, no Secret, no other write.
    private func authorize(
        _ identity: Identity?, verb: String, info: KindInfo, name: String?, subresource: String?
    ) throws(APIError) {
        switch identity {
        case .admin:
            return
        case .runner(let runner):
            let isOwnRunner = info.kind == RunnerSpec.kind && name == runner
            let isAllowed = isOwnRunner && (verb == "get" || ((verb == "patch" || verb == "update") && subresource == "status"))
            if isAllowed { return }
            throw APIError(
                .forbidden,
                "runner \"\(runner)\" cannot \(verb) \(info.plural).\(API.group)\(name.map { " \"\($0)\"" } ?? "")\(subresource.map { "/\($0)" } ?? ""): agents may only read their own Runner and write its status",
                kind: info.plural, name: name)
        case .eventIngest:
            throw APIError(.forbidden, "an events token may only post events", kind: info.plural, name: name)
        case nil:
            throw APIError(.unauthorized, "Unauthorized")
        }
    }

    private func checkedName(_ context: APIRequestContext) throws(APIError) -> String {
        let name = context.parameters.get("name") ?? ""
        if let error = Names.validateObjectName(name).first {
            throw APIError(.badRequest, error.message)
        }
        return name
    }

    private func subresource(_ context: APIRequestContext, info: KindInfo) throws(APIError) -> String? {
        guard let subresource = context.parameters.get("subresource") else { return nil }
        guard subresource == "status", info.hasStatus else {
            throw APIError(.notFound, "\(info.plural).\(API.group) has no subresource \"\(subresource)\"")
        }
        return subresource
    }

    private func reveal(_ request: Request, _ context: APIRequestContext) throws(APIError) -> Bool {
        let isAsked = try QueryParameters(request).bool("reveal") == true
        return context.identity == .admin && isAsked
    }

    private func options(_ request: Request, _ context: APIRequestContext) throws(APIError) -> WriteOptions {
        let query = QueryParameters(request)
        let agent = request.headers[.userAgent].map { String($0.prefix { $0 != "/" }) }
        return WriteOptions(
            isDryRun: try query.choice("dryRun", of: ["All"]) != nil,
            fieldManager: query.string("fieldManager") ?? agent ?? "unknown",
            force: try query.bool("force") ?? false,
            revealSecrets: try reveal(request, context))
    }

    private func collect(_ request: Request, context: APIRequestContext) async throws(APIError) -> ByteBuffer {
        var request = request
        do {
            return try await request.collectBody(upTo: context.maxUploadSize)
        } catch is NIOTooManyBytesError {
            throw APIError(.requestEntityTooLarge, "request body is larger than \(context.maxUploadSize) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.requestEntityTooLarge, "request body is larger than \(context.maxUploadSize) bytes")
        } catch {
            throw APIError(.badRequest, "cannot read request body: \(error)")
        }
    }

    private func readBody(_ request: Request, context: APIRequestContext) async throws(APIError) -> JSONValue {
        let buffer = try await collect(request, context: context)
        let contentType = request.headers[.contentType] ?? "application/json"
        return try parse(buffer, isYAML: contentType.contains("yaml"))
    }

    private func readPatch(_ request: Request, context: APIRequestContext) async throws(APIError) -> Patch {
        let contentType = request.headers[.contentType] ?? ""
        let buffer = try await collect(request, context: context)
        if contentType.hasPrefix("application/merge-patch+json") {
            return .merge(try parse(buffer, isYAML: false))
        }
        if contentType.hasPrefix("application/json-patch+json") {
            return .json(try parse(buffer, isYAML: false))
        }
        if contentType.hasPrefix("application/apply-patch+yaml") || contentType.hasPrefix("application/apply-patch+json") {
            return .apply(try parse(buffer, isYAML: true))
        }
        throw APIError(
            .unsupportedMediaType,
            "the patch type \"\(contentType)\" is not supported: use application/merge-patch+json, application/json-patch+json or application/apply-patch+yaml")
    }

    private func parse(_ buffer: ByteBuffer, isYAML: Bool) throws(APIError) -> JSONValue {
        let text = String(buffer: buffer)
        // JSON is YAML too; clients (kubectl, apply) usually send JSON even as apply-patch+yaml, and the
        // JSON parser is much faster.
        let isJSON = text.first { !$0.isWhitespace } == "{"
        if isYAML && !isJSON {
            do {
                let documents = try ManifestDocuments.parse(text, file: "request body")
                guard documents.count == 1, let document = documents.first else {
                    throw APIError(.badRequest, "the request body must hold exactly one object")
                }
                return document.value
            } catch let error as APIError {
                throw error
            } catch {
                throw APIError(.badRequest, "\(error)")
            }
        }
        do {
            return try JSONValue.parse(Data(text.utf8))
        } catch {
            throw APIError(.badRequest, "the request body is not valid JSON: \(error)")
        }
    }

    // MARK: List and watch

    private func selectors(_ request: Request) throws(APIError) -> (labels: LabelQuery, name: String?) {
        let query = QueryParameters(request)
        var labels = LabelQuery()
        if let text = query.string("labelSelector"), !text.isEmpty {
            do {
                labels = try LabelQuery.parse(text)
            } catch {
                throw APIError(.badRequest, "unable to parse labelSelector: \(error.message)")
            }
        }
        var name: String?
        if let text = query.string("fieldSelector"), !text.isEmpty {
            for term in text.split(separator: ",") {
                let parts = term.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, parts[0] == "metadata.name" else {
                    throw APIError(
                        .badRequest, "unsupported fieldSelector \"\(term)\": only metadata.name=NAME is supported")
                }
                name = parts[1]
            }
        }
        return (labels, name)
    }

    private func list(_ info: KindInfo, request: Request, context: APIRequestContext) async throws(APIError) -> Response {
        let selection = try selectors(request)
        // Accepted as kubectl sends it (`limit=500`); every object is returned in one page.
        _ = try QueryParameters(request).integer("limit")
        let result = try await objects.list(
            info, labels: selection.labels, name: selection.name, revealSecrets: try reveal(request, context))
        if TableRendering.isRequested(accept: request.headers[.accept]) {
            return APIResponses.json(TableRendering.table(result.items, info: info, resourceVersion: String(result.revision)))
        }
        return APIResponses.json([
            "apiVersion": .string(API.apiVersion), "kind": .string(info.kind + "List"),
            "metadata": ["resourceVersion": .string(String(result.revision))], "items": .array(result.items),
        ])
    }

    private func watch(_ info: KindInfo, request: Request, context: APIRequestContext) async throws(APIError) -> Response {
        let selection = try selectors(request)
        let query = QueryParameters(request)
        let revealSecrets = try reveal(request, context)
        let timeout = min(try query.integer("timeoutSeconds") ?? watchLimits.maximumSeconds, watchLimits.maximumSeconds)
        let bookmarks = try query.bool("allowWatchBookmarks") == true
        var initial: [JSONValue] = []
        var fromRevision: Int64
        if let text = query.string("resourceVersion"), !text.isEmpty, text != "0" {
            guard let revision = Int64(text) else { throw APIError(.badRequest, "invalid resourceVersion \"\(text)\"") }
            fromRevision = revision
        } else {
            let listed = try await objects.list(info, labels: selection.labels, name: selection.name, revealSecrets: revealSecrets)
            initial = listed.items
            fromRevision = listed.revision
        }
        let events: AsyncThrowingStream<StoreEvent, any Error>
        do {
            events = try await objects.store.watch(kind: info.kind, fromRevision: fromRevision)
        } catch let error as StoreError where error.code == .compacted {
            throw APIError(.gone, "too old resource version: \(fromRevision) (\(error.currentRevision ?? 0))")
        } catch {
            throw APIError(.serviceUnavailable, "cannot watch: \(error)")
        }
        let session = WatchSession(
            info: info, objects: objects, labels: selection.labels, name: selection.name, revealSecrets: revealSecrets,
            asTable: TableRendering.isRequested(accept: request.headers[.accept]),
            bookmarks: bookmarks,
            bookmarkInterval: watchLimits.bookmarkInterval, timeout: .seconds(timeout), openWatches: openWatches)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody { [initial, fromRevision] writer in
                try await session.stream(initial: initial, events: events, startRevision: fromRevision, to: &writer)
            })
    }
}

/// How long watches last and how often they carry bookmarks.
public struct WatchLimits: Sendable {
    public var maximumSeconds: Int
    public var bookmarkInterval: Duration
    public init(maximumSeconds: Int = 1800, bookmarkInterval: Duration = .seconds(10)) {
        self.maximumSeconds = maximumSeconds
        self.bookmarkInterval = bookmarkInterval
    }
}

