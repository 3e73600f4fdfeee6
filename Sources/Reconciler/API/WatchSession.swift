import Hummingbird
import NIOCore
import Resources

/// One watch request: initial events, then store events filtered by selector, with bookmarks and a timeout.
struct WatchSession: Sendable {
    let info: KindInfo
    let objects: ObjectService
    let labels: LabelQuery
    let name: String?
    let revealSecrets: Bool
    /// kubectl get -w asks for each event's object as a one-row Table.
    let asTable: Bool
    let bookmarks: Bool
    let bookmarkInterval: Duration
    let timeout: Duration
    /// Where the session registers so that a graceful shutdown ends it.
    let openWatches: OpenWatches

    private enum Item: Sendable {
        case event(StoreEvent)
        case bookmark
        case end
    }

    func stream(
        initial: [JSONValue], events: AsyncThrowingStream<StoreEvent, any Error>, startRevision: Int64,
        to writer: inout any ResponseBodyWriter
    ) async throws {
        for object in initial {
            try await writer.write(encode(type: "ADDED", object: object))
        }
        var lastRevision = startRevision
        let isResumed = initial.isEmpty
        // Objects currently inside the selection, so that leaving it is reported as DELETED.
        var selected = Set(initial.compactMap { $0["metadata"]?["name"]?.stringValue })
        let (items, continuation) = AsyncStream<Item>.makeStream(bufferingPolicy: .bufferingOldest(4096))
        let registration = openWatches.register { continuation.yield(.end) }
        defer { openWatches.unregister(registration) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await event in events {
                        if case .dropped = continuation.yield(.event(event)) { break }
                    }
                } catch {}
                continuation.yield(.end)
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                continuation.yield(.end)
            }
            if bookmarks {
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: bookmarkInterval)
                        continuation.yield(.bookmark)
                    }
                }
            }
            defer { group.cancelAll() }
            loop: for await item in items {
                switch item {
                case .end:
                    break loop
                case .bookmark:
                    let marker: JSONValue = [
                        "apiVersion": .string(API.apiVersion), "kind": .string(info.kind),
                        "metadata": ["resourceVersion": .string(String(lastRevision))],
                    ]
                    try await writer.write(encode(type: "BOOKMARK", object: marker))
                case .event(let event):
                    lastRevision = event.revision
                    guard name == nil || event.object.name == name,
                        let object = try? objects.present(event.object, info: info, revealSecrets: revealSecrets)
                    else { continue }
                    let matches = labels.terms.isEmpty || labels.matches(ObjectService.labels(of: object))
                    let wasSelected = selected.contains(event.object.name)
                    let type: String
                    switch (event.type, matches, wasSelected) {
                    case (.deleted, _, _):
                        selected.remove(event.object.name)
                        type = "DELETED"
                    case (_, true, true): type = "MODIFIED"
                    case (_, true, false):
                        selected.insert(event.object.name)
                        // A watch resumed from a resourceVersion has no initial list, so an object it has not
                        // seen may already exist: report its changes as MODIFIED, as the store saw them.
                        type = event.type == .modified && isResumed ? "MODIFIED" : "ADDED"
                    case (_, false, true):
                        selected.remove(event.object.name)
                        type = "DELETED"
                    case (_, false, false): continue
                    }
                    if event.type == .deleted && !matches && !wasSelected { continue }
                    try await writer.write(encode(type: type, object: object))
                }
            }
        }
        continuation.finish()
        try await writer.finish(nil)
    }

    private func encode(type: String, object: JSONValue) -> ByteBuffer {
        let rendered = asTable && type != "BOOKMARK" ? TableRendering.table([object], info: info, resourceVersion: nil) : object
        var data = JSONValue.object(["type": .string(type), "object": rendered]).jsonData()
        data.append(0x0A)
        return ByteBuffer(bytes: data)
    }
}
