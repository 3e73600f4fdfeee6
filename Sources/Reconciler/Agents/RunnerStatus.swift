import Resources

/// The status the agent gateway writes on a Runner: Connected, Synced and Ready, with what the agent reported.
///
/// Built from typed `Condition`s; `lastTransitionTime` and `observedGeneration` are stamped at write time, against
/// the stored conditions, so two statuses that say the same thing are equal (and hash equally).
struct RunnerStatus: Hashable, Sendable {
    struct Assigned: Hashable, Codable, Sendable {
        var routes: [String]
        var actions: [String]
        var templates: [String]
        var secrets: [String]
    }

    /// Connected, Synced, Ready; their times are left for the writer to set.
    var conditions: [Condition]
    var hostname: String?
    var agentVersion: String?
    var observedSliceRevision: Int64?
    var desiredSliceRevision: Int64?
    var assigned: Assigned?
    /// The latest scheduled run the agent reported; nil keeps the stored `status.lastRun`.
    var lastRun: RunnerSpec.RunSummary?
    /// Whether only the conditions are written, over the rest of the stored status: a controller that never heard
    /// the agent has nothing else to say of it.
    var conditionsOnly = false
    var isConnected: Bool
    var isSynced: Bool

    /// The status of a runner whose agent last reported `report` (nil: none ever did).
    init(
        runner: String, report: AgentReport?, isConnected: Bool, slice: SlicePlanner.Slice, desiredRevision: Int64,
        heartbeatTimeout: Duration
    ) {
        self.isConnected = isConnected
        guard let report else {
            // Declared (in manifests, or by kubectl) before any agent joined as it: say so, rather than nothing.
            let waiting = "no agent has reported as this runner; start one with `steady agent --name \(runner)`"
            conditions = [
                Self.condition("Connected", .false, "NeverConnected", waiting),
                Self.condition("Synced", .unknown, "NeverConnected", waiting),
                Self.condition("Ready", .false, "NeverConnected", waiting),
            ]
            isSynced = false
            return
        }
        let connected =
            isConnected
            ? Self.condition("Connected", .true, "Heartbeat", "the agent reports every few seconds")
            : Self.condition("Connected", .false, "HeartbeatTimeout", "no report from the agent for \(heartbeatTimeout)")
        let isCurrent = report.sliceDigest == slice.digest
        isSynced = report.synced && isCurrent
        let synced: Condition
        if isSynced {
            synced = Self.condition("Synced", .true, "Synced", "applied slice revision \(report.observedSliceRevision ?? 0)")
        } else if !report.synced {
            synced = Self.condition(
                "Synced", .false, report.reason ?? "SyncFailed", report.message ?? "the agent could not apply its slice")
        } else {
            synced = Self.condition("Synced", .false, "SyncPending", "slice revision \(desiredRevision) not yet applied")
        }
        // Ready repeats the reason of the condition that holds it back, so one line tells the whole story.
        let ready: Condition
        if isConnected && isSynced {
            ready = Self.condition("Ready", .true, "Ready", "connected and synced")
        } else {
            let holding = isConnected ? synced : connected
            ready = Self.condition(
                "Ready", .false, isConnected ? "NotSynced" : "Disconnected",
                "\(holding.type)=False (\(holding.reason)): \(holding.message)")
        }
        conditions = [connected, synced, ready]
        hostname = report.hostname
        agentVersion = report.agentVersion
        observedSliceRevision = report.observedSliceRevision
        lastRun = report.lastRun
        desiredSliceRevision = desiredRevision
        let names = slice.names
        assigned = Assigned(
            routes: names.routes, actions: names.actions, templates: names.templates, secrets: names.secrets)
    }

    /// The status of a runner stored as connected whose heartbeat no controller has written for `silence`: its
    /// agent went away with the controller that held it, or is connected nowhere. Synced and the rest stay as the
    /// last controller wrote them.
    init(unheardFor silence: Duration) {
        let message = "no controller has heard from the agent for \(silence); the one that held it is gone"
        conditions = [
            Self.condition("Connected", .false, "NoControllerHears", message),
            Self.condition("Ready", .false, "Disconnected", "Connected=False (NoControllerHears): \(message)"),
        ]
        isConnected = false
        isSynced = false
        conditionsOnly = true
    }

    /// Whether a stored Runner `status` says `Connected=True`.
    static func saysConnected(_ status: JSONValue?) -> Bool {
        (status?["conditions"]?.arrayValue ?? []).contains {
            $0["type"]?.stringValue == "Connected" && $0["status"]?.stringValue == "True"
        }
    }

    private static func condition(_ type: String, _ status: Condition.Status, _ reason: String, _ message: String)
        -> Condition
    {
        Condition(type: type, status: status, reason: reason, message: message, lastTransitionTime: "")
    }

    /// The `status` to write over `current` (the stored Runner): conditions keep their `lastTransitionTime`
    /// unless their status flips, and carry the object's generation.
    func merged(into current: JSONValue, heartbeatTime: String?) throws -> JSONValue {
        let generation = current["metadata"]?["generation"]?.intValue
        var stored = (try? current["status"]?["conditions"]?.decode(as: [Condition].self)) ?? []
        for condition in conditions {
            var stamped = condition
            stamped.observedGeneration = generation
            stamped.lastTransitionTime = Timestamp.now()
            stored.set(stamped)
        }
        if conditionsOnly {
            var status = current["status"] ?? [:]
            status["conditions"] = try JSONValue(encoding: stored)
            return status
        }
        var status: JSONValue = ["conditions": try JSONValue(encoding: stored)]
        status["hostname"] = hostname.map(JSONValue.string)
        status["agentVersion"] = agentVersion.map(JSONValue.string)
        status["observedSliceRevision"] = observedSliceRevision.map(JSONValue.int)
        status["desiredSliceRevision"] = desiredSliceRevision.map(JSONValue.int)
        if let assigned { status["assigned"] = try JSONValue(encoding: assigned) }
        if let heartbeatTime { status["lastHeartbeatTime"] = .string(heartbeatTime) }
        // An agent that restarted reports no run until its next one: the last one written stays.
        if let lastRun {
            status["lastRun"] = try JSONValue(encoding: lastRun)
        } else if let stored = current["status"]?["lastRun"] {
            status["lastRun"] = stored
        }
        status["observedGeneration"] = current["metadata"]?["generation"]
        return status
    }
}
