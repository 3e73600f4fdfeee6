import Foundation
import GRPCCore
import Logging
import Reconciler
import Synchronization

/// Leader election on an etcd lease, in the manner of Kubernetes' Lease objects and etcd's own election recipe.
///
/// Each term: grant a lease of `ttl`; create `<prefix>/leader` bound to it unless the key exists (a transaction on
/// its create revision), else wait for the key's deletion and try again. The winner leads with a store fenced by
/// the key's create revision, keeps the lease alive, and ends its term (cancelling `lead` and waiting for it) when:
/// - no keep-alive has been answered for `ttl` minus `safetyMargin`, counted from when the last answered one was
///   sent, so the term ends here before etcd can expire the lease and let another replica win;
/// - etcd reports the lease gone; or
/// - the leader key is deleted or replaced.
/// On cancellation (graceful shutdown) the lease is revoked, so another replica takes over at once.
public struct EtcdLeaderElection: LeaderElector {
    let store: EtcdStore
    /// Written into the leader key: who leads, for people and tests (`etcdctl get <prefix>/leader`).
    public let identity: String
    public let ttl: Duration
    let safetyMargin: Duration
    let logger: Logger

    public init(store: EtcdStore, identity: String, ttl: Duration = .seconds(5), logger: Logger) {
        self.store = store
        self.identity = identity
        self.ttl = max(ttl, .seconds(2))
        self.safetyMargin = min(.seconds(1), self.ttl / 4)
        self.logger = logger
    }

    public func run(lead: @escaping @Sendable (any ObjectStore) async -> Void) async throws {
        var delay = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                try await term(lead: lead)
                delay = .milliseconds(100)
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning(
                    "leader election: term ended", metadata: ["steady.error": "\(error)", "steady.retry": "\(delay)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, ttl / 2)
            }
        }
    }

    /// One lease: campaign with it, lead while it holds, revoke it at the end.
    private func term(lead: @escaping @Sendable (any ObjectStore) async -> Void) async throws {
        let clock = ContinuousClock()
        let requested = clock.now
        let lease = try await grant()
        let validity = LeaseValidity(until: requested.advanced(by: ttl - safetyMargin))
        do {
            try await campaignAndLead(lease: lease, validity: validity, lead: lead)
        } catch {
            await revoke(lease)
            throw error
        }
    }

    /// Campaigns with `lease` and leads while it holds; always ends by throwing.
    private func campaignAndLead(
        lease: Int64, validity: LeaseValidity, lead: @escaping @Sendable (any ObjectStore) async -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await keepAlive(lease: lease, validity: validity) }
            group.addTask { try await watchdog(validity) }
            group.addTask {
                let fence = try await campaign(lease: lease)
                logger.info(
                    "elected leader",
                    metadata: ["steady.identity": "\(identity)", "steady.fence": "\(fence.createRevision)"])
                try await withThrowingTaskGroup(of: Void.self) { term in
                    term.addTask {
                        await lead(store.fenced(by: fence))
                        throw LeadershipEnded(reason: "the leader's services returned")
                    }
                    term.addTask { try await followLeaderKey(fence) }
                    // The first to end ends the term; leaving the group waits for `lead` to return.
                    defer { term.cancelAll() }
                    try await term.next()
                }
            }
            defer { group.cancelAll() }
            try await group.next()
            throw LeadershipEnded(reason: "the lease's keep-alive ended")
        }
    }

    private func grant() async throws -> Int64 {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = Int64(ttl.components.seconds)
        let response = try await store.connection.call("lease grant") { try await $0.leases.leaseGrant(request, options: $1) }
        guard response.error.isEmpty, response.id != 0 else {
            throw StoreError(code: .unavailable, message: "etcd refused a lease: \(response.error)")
        }
        return response.id
    }

    /// Becomes leader with `lease`, waiting for the current leader's key to go away as often as needed.
    private func campaign(lease: Int64) async throws -> EtcdFence {
        let key = store.keys.leader
        while true {
            var request = Etcdserverpb_TxnRequest()
            request.compare = [EtcdCompare(key: key, target: .create, revision: 0).message]
            request.success = [EtcdOperation.put(key: key, value: Data(identity.utf8), previous: false, lease: lease).message]
            request.failure = [EtcdOperation.get(key: key).message]
            let response = try await store.connection.call("campaign") { try await $0.kv.txn(request, options: $1) }
            if response.succeeded {
                return EtcdFence(key: key, createRevision: response.header.revision)
            }
            if let holder = response.responses.first?.responseRange.kvs.first {
                if holder.lease == lease { return EtcdFence(key: key, createRevision: holder.createRevision) }
                logger.debug(
                    "leader election: waiting", metadata: ["steady.leader": "\(String(decoding: holder.value, as: UTF8.self))"])
            }
            try await waitForDeletion(of: key, after: response.header.revision)
        }
    }

    /// Returns once `key` is deleted after `revision` (or at once if it already was).
    private func waitForDeletion(of key: Data, after revision: Int64) async throws {
        let deletions = try store.connection.watch(
            range: (key, Data()), after: revision, bufferSize: 16, convert: { $0.type == .delete ? () : nil })
        for try await _ in deletions { return }
    }

    /// Throws when the leader key stops being this term's: deleted, or recreated by someone else.
    private func followLeaderKey(_ fence: EtcdFence) async throws {
        let changes = try store.connection.watch(
            range: (fence.key, Data()), after: fence.createRevision, bufferSize: 16,
            convert: { event in event.type == .delete || event.kv.createRevision != fence.createRevision ? () : nil })
        for try await _ in changes {
            throw LeadershipEnded(reason: "the leader key was deleted or replaced")
        }
        throw LeadershipEnded(reason: "the watch of the leader key ended")
    }

    /// Sends a keep-alive every third of the TTL; each answer extends `validity` from when its request was sent.
    private func keepAlive(lease: Int64, validity: LeaseValidity) async throws {
        var message = Etcdserverpb_LeaseKeepAliveRequest()
        message.id = lease
        let request = message
        let (ttl, margin) = (ttl, safetyMargin)
        var options = CallOptions.defaults
        options.waitForReady = true
        do {
            try await store.connection.leases.leaseKeepAlive(
                options: options,
                requestProducer: { writer in
                    let clock = ContinuousClock()
                    while !Task.isCancelled {
                        validity.sent(at: clock.now)
                        try await writer.write(request)
                        try await Task.sleep(for: ttl / 3)
                    }
                },
                onResponse: { response in
                    for try await answer in response.messages {
                        guard answer.ttl > 0 else { throw LeadershipEnded(reason: "etcd reports the lease expired") }
                        validity.answered(extendingBy: ttl - margin)
                    }
                })
        } catch let error as LeadershipEnded {
            throw error
        } catch {
            throw store.connection.storeError(error, doing: "lease keep-alive")
        }
        throw LeadershipEnded(reason: "etcd ended the lease keep-alive")
    }

    /// Throws once `validity` has passed without being extended.
    private func watchdog(_ validity: LeaseValidity) async throws {
        let clock = ContinuousClock()
        while true {
            let deadline = validity.until
            if clock.now >= deadline {
                throw LeadershipEnded(reason: "no keep-alive answered within the lease's TTL")
            }
            try await Task.sleep(until: deadline, clock: clock)
        }
    }

    /// Revokes the lease (briefly waiting for etcd, even when the caller is cancelled), so that on a graceful stop
    /// another replica takes over at once rather than after the TTL.
    private func revoke(_ lease: Int64) async {
        let connection = store.connection
        var message = Etcdserverpb_LeaseRevokeRequest()
        message.id = lease
        let request = message
        // An unstructured task, so the caller's cancellation does not cancel the revocation.
        await Task {
            _ = try? await connection.call("lease revoke", timeout: .seconds(2)) {
                try await $0.leases.leaseRevoke(request, options: $1)
            }
        }.value
    }
}

/// Why a leader's term ended.
struct LeadershipEnded: Error, CustomStringConvertible {
    var reason: String
    var description: String { "leadership ended: \(reason)" }
}

/// Until when this replica may consider its lease held: extended by each answered keep-alive, counted from when that
/// keep-alive was sent (etcd counts from when it received it, later). Answers come in the order of the requests.
final class LeaseValidity: Sendable {
    private let state: Mutex<(until: ContinuousClock.Instant, unanswered: [ContinuousClock.Instant])>

    init(until: ContinuousClock.Instant) {
        state = Mutex((until, []))
    }

    var until: ContinuousClock.Instant { state.withLock { $0.until } }

    func sent(at instant: ContinuousClock.Instant) {
        state.withLock { state in
            // Requests never answered (etcd was away) no longer matter once a few newer ones are out.
            if state.unanswered.count >= 16 { state.unanswered.removeFirst() }
            state.unanswered.append(instant)
        }
    }

    func answered(extendingBy duration: Duration) {
        state.withLock { state in
            guard !state.unanswered.isEmpty else { return }
            let sent = state.unanswered.removeFirst()
            state.until = max(state.until, sent.advanced(by: duration))
        }
    }
}
