import Resources

/// Which objects must be reconciled after a change, found through the cache's reverse index of references.
///
/// The dependencies:
/// - a Route refers to its Actions and Template; an Action to the Secrets it reads; an Assignment to the
///   Routes, Actions and Runners it names, and to every Runner (`Runner/*`) when it has a selector; a RemoteRun
///   to the Runners it names, or to every Runner when it targets `all` or a selector;
/// - a change to an object re-queues the object itself (for the reconciled kinds) and the objects referring to
///   it: Action → Routes and Assignments, Template → Routes, Secret → Actions, Runner → Assignments, Route →
///   Assignments;
/// - an Assignment change (or a change of its `status.matchedRunners`, which is how Runner changes reach
///   placement) re-queues the Routes and Actions it names, old and new, and the Routes using those Actions.
///
/// A change to an object's status alone re-queues nothing, except the Assignment case above: reconcilers read
/// only spec and metadata, and their own status writes must not wake them again.
public enum ReconcileTriggers {
    /// The kinds that have a status reconciler.
    public static let reconciledKinds: Set<String> = [
        RouteSpec.kind, ActionSpec.kind, TemplateSpec.kind, AssignmentSpec.kind, RemoteRunSpec.kind,
    ]

    /// The kinds the controller's cache holds.
    public static let watchedKinds: Set<String> = reconciledKinds.union([Secret.kind, RunnerSpec.kind])

    /// The name standing for "every Runner" in references; not a valid object name.
    static let everyRunner = ObjectKey(kind: RunnerSpec.kind, name: "*")

    /// What an object refers to, for the cache's reverse index.
    public static func references(kind: String, value: JSONValue) -> [ObjectKey] {
        let spec = value["spec"]
        switch kind {
        case RouteSpec.kind:
            var keys = StatusReport.strings(spec?["actions"]).map { ObjectKey(kind: ActionSpec.kind, name: $0) }
            if let template = spec?["template"]?.stringValue {
                keys.append(ObjectKey(kind: TemplateSpec.kind, name: template))
            }
            return StatusReport.unique(keys)
        case ActionSpec.kind:
            guard let action = try? spec?.decode(as: ActionSpec.self) else { return [] }
            return StatusReport.unique(action.secretReferences.map { ObjectKey(kind: Secret.kind, name: $0.name) })
        case AssignmentSpec.kind:
            var keys = StatusReport.strings(spec?["routes"]).map { ObjectKey(kind: RouteSpec.kind, name: $0) }
            keys += StatusReport.strings(spec?["actions"]).map { ObjectKey(kind: ActionSpec.kind, name: $0) }
            keys += StatusReport.strings(spec?["runners"]).map { ObjectKey(kind: RunnerSpec.kind, name: $0) }
            if spec?["runnerSelector"] != nil && spec?["runnerSelector"]?.isNull == false {
                keys.append(everyRunner)
            }
            return StatusReport.unique(keys)
        case RemoteRunSpec.kind:
            let target = spec?["target"]
            var keys = StatusReport.strings(target?["runners"]).map { ObjectKey(kind: RunnerSpec.kind, name: $0) }
            if target?["runners"] == nil || target?["runners"]?.isNull == true { keys.append(everyRunner) }
            return StatusReport.unique(keys)
        default:
            return []
        }
    }

    /// The keys to reconcile after `change`, which the cache has already applied.
    public static func keys(for change: ObjectChange, in cache: ObjectCache) -> Set<ObjectKey> {
        let key = change.key
        var keys: Set<ObjectKey> = []
        let isStatusOnly =
            change.old != nil && change.new != nil && desiredState(change.old) == desiredState(change.new)
        if isStatusOnly {
            if key.kind == AssignmentSpec.kind,
                change.old?["status"]?["matchedRunners"] != change.new?["status"]?["matchedRunners"]
                    || change.old?["status"]?["matchedRunnerCount"] != change.new?["status"]?["matchedRunnerCount"]
            {
                keys.formUnion(placedBy(assignment: change, in: cache))
            }
            return keys
        }
        if reconciledKinds.contains(key.kind) && change.new != nil {
            keys.insert(key)
        }
        keys.formUnion(cache.referrers(of: key))
        if key.kind == RunnerSpec.kind {
            keys.formUnion(cache.referrers(of: everyRunner))
        }
        if key.kind == AssignmentSpec.kind {
            keys.formUnion(placedBy(assignment: change, in: cache))
        }
        return keys.filter { reconciledKinds.contains($0.kind) }
    }

    /// The Routes and Actions an Assignment names (before or after the change), and the Routes using those Actions.
    private static func placedBy(assignment change: ObjectChange, in cache: ObjectCache) -> Set<ObjectKey> {
        var keys: Set<ObjectKey> = []
        for value in [change.old, change.new].compactMap({ $0 }) {
            for route in StatusReport.strings(value["spec"]?["routes"]) {
                keys.insert(ObjectKey(kind: RouteSpec.kind, name: route))
            }
            for action in StatusReport.strings(value["spec"]?["actions"]) {
                let actionKey = ObjectKey(kind: ActionSpec.kind, name: action)
                keys.insert(actionKey)
                keys.formUnion(cache.referrers(of: actionKey).filter { $0.kind == RouteSpec.kind })
            }
        }
        return keys
    }

    /// Everything but status and the metadata that every write changes.
    static func desiredState(_ value: JSONValue?) -> JSONValue? {
        guard var copy = value else { return nil }
        copy["status"] = nil
        copy["metadata"]?["managedFields"] = nil
        copy["metadata"]?["resourceVersion"] = nil
        return copy
    }
}
