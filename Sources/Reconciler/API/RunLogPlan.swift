import Resources

/// Where a RemoteRun's `log` subresource is answered from, when several controller replicas share the store: each
/// runner's output is kept on the replica its agent streamed it to, which the run's `status.results[].outputReplica`
/// names. A value with no I/O.
///
/// - A request another replica passed on (it carries ``ReplicaPeers/proxiedHeader``) is answered here, from what this
///   replica holds, whatever the status says: a request is passed on at most once, so it can never loop.
/// - One runner (`?runner=`): here when this replica holds its output (or nobody is named yet), else the whole
///   request goes to the replica that does.
/// - Every runner: this replica's own runners, and each other replica named in the results is asked once for its own.
/// - A lone controller (no advertised URL) answers everything here.
struct RunLogPlan: Sendable, Equatable {
    enum Source: Sendable, Equatable {
        /// From this replica's run output.
        case local
        /// The whole request, passed on to this replica.
        case proxy(replica: String)
        /// This replica's runners, then those of each of these replicas, asked once each.
        case merge(replicas: [String])
    }

    /// This replica's advertised URL; nil for a lone controller.
    var ownURL: String?
    /// Whether the request was passed on by another replica.
    var isProxied: Bool
    /// The replica holding each runner's output, from `status.results`, where one is named.
    var holders: [String: String]

    /// Each runner's `outputReplica` in a RemoteRun's `status.results`.
    static func holders(of run: JSONValue) -> [String: String] {
        var holders: [String: String] = [:]
        for result in run["status"]?["results"]?.arrayValue ?? [] {
            if let runner = result["runner"]?.stringValue, let replica = result["outputReplica"]?.stringValue {
                holders[runner] = replica
            }
        }
        return holders
    }

    /// Where to answer a request for `runner` (every runner when nil).
    func source(runner: String?) -> Source {
        guard let ownURL, !isProxied else { return .local }
        if let runner {
            guard let holder = holders[runner], holder != ownURL else { return .local }
            return .proxy(replica: holder)
        }
        let others = Set(holders.values).subtracting([ownURL]).sorted()
        return others.isEmpty ? .local : .merge(replicas: others)
    }

    /// Whether this replica serves `runner`'s output in a request for every runner: no other replica holds it.
    func servesHere(_ runner: String) -> Bool {
        guard let ownURL, let holder = holders[runner] else { return true }
        return holder == ownURL
    }

    /// Whether a follow of `runner` must wait to learn where its output goes: several replicas, a request not passed
    /// on, and no replica named for it yet.
    func awaitsHolder(of runner: String) -> Bool {
        ownURL != nil && !isProxied && holders[runner] == nil
    }

    /// Whether a follow of every runner must look out for replicas named later (as runners start on them), even when
    /// none is named yet: several replicas, and a request not passed on. `steady run` follows from the run's creation.
    var followsHoldersAsNamed: Bool {
        ownURL != nil && !isProxied
    }
}
