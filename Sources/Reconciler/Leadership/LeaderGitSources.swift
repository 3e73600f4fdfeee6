import Foundation
import Logging
import Resources
import ServiceLifecycle
import Synchronization

/// GitRepository sources on one replica of a cluster with several controllers: only the elected leader follows
/// them, with a fresh ``GitSourceController`` over each term's fenced store, stopped when the term ends.
///
/// A signed webhook may reach any replica. The leader syncs at once; a follower passes the request on through the
/// store, setting the `steady.dev/requestedAt` annotation (as `steady reconcile` does), which the leader answers.
public final class LeaderGitSources: GitSourceTriggering, Sendable {
    /// The unfenced objects: a follower's annotation is a request, not a reconciler's write.
    let objects: ObjectService
    let directory: URL
    let logger: Logger
    /// The controller of the term this replica leads now, if it leads.
    private let current = Mutex<GitSourceController?>(nil)

    /// - Parameter directory: Where git's caches live (one term at a time uses them).
    public init(objects: ObjectService, directory: URL, logger: Logger) {
        self.objects = objects
        self.directory = directory
        self.logger = logger
    }

    /// The service that follows the sources for one term, writing through `objects` (the term's fenced view).
    public func termService(objects: ObjectService) -> any Service {
        Term(controller: GitSourceController(objects: objects, directory: directory, logger: logger), sources: self)
    }

    public func trigger(_ name: String) async {
        if let controller = current.withLock({ $0 }) {
            controller.trigger(name)
            return
        }
        let request = "\(Timestamp.now())-webhook-\(UInt32.random(in: 0...UInt32.max))"
        do {
            _ = try await objects.patch(
                Kinds.gitRepository, name: name,
                patch: .merge(["metadata": ["annotations": [GitRepositorySpec.requestedAtAnnotation: .string(request)]]]),
                subresource: nil, options: WriteOptions(fieldManager: "steady-git-webhook"))
        } catch {
            logger.warning(
                "cannot pass a webhook on to the leader",
                metadata: ["steady.object": "GitRepository/\(name)", "steady.error": "\(error)"])
        }
    }

    /// One term's controller, the webhooks' target while it runs.
    struct Term: Service {
        let controller: GitSourceController
        let sources: LeaderGitSources

        func run() async throws {
            sources.current.withLock { $0 = controller }
            defer { sources.current.withLock { if $0 === controller { $0 = nil } } }
            try await controller.run()
        }
    }
}
