import Resources
import Routing

/// Reports whether a Route can run: its Actions and Template exist and its input compiles; and where its
/// actions run.
///
/// `status.placement` lists the route's actions that some Assignment places on runners (`runnerActions`), the
/// others, which run on the controller (`controllerActions`), the Runners that take part (`runners`, the first 100
/// by name, and `runnerCount`): those
/// matched by Assignments naming the route or one of its runner actions, and how many of them hold the route and
/// their runner actions at their current generation (`syncedRunners`). The `Synced` condition is True once every
/// one does.
public struct RouteReconciler: StatusReconciler {
    /// Resolves which Assignments and Runners place the route's actions.
    public let placements: PlacementResolver
    /// Compiled expressions, shared with admission so a stored route is not compiled again.
    public let compiled: CompiledCache

    /// Creates a reconciler sharing `placements` with the other reconcilers, and `compiled` with admission.
    public init(placements: PlacementResolver, compiled: CompiledCache = CompiledCache()) {
        self.placements = placements
        self.compiled = compiled
    }

    public var info: KindInfo { Kinds.route }

    public func status(of object: JSONValue, in cache: ObjectCache) throws -> JSONValue {
        let spec = object["spec"]
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        var problems: [ReadinessProblem] = []
        if let input = spec?["input"]?.stringValue {
            do {
                _ = try compiled.expression(input)
            } catch {
                problems.append(
                    ReadinessProblem(reason: "InvalidExpression", message: "spec.input: \(error.description)"))
            }
        }
        let actions = StatusReport.unique(StatusReport.strings(spec?["actions"]))
        let missingActions = actions.filter { !cache.contains(kind: ActionSpec.kind, name: $0) }
        if !missingActions.isEmpty {
            problems.append(.missing("action", missingActions, reason: "MissingAction"))
        }
        if let template = spec?["template"]?.stringValue, !cache.contains(kind: TemplateSpec.kind, name: template) {
            problems.append(.missing("template", [template], reason: "MissingTemplate"))
        }

        var controllerActions: [String] = []
        var runnerActions: [String] = []
        var assignments = Set(placements.assignments(naming: ObjectKey(kind: RouteSpec.kind, name: name), in: cache))
        for action in actions {
            let placing = placements.assignments(naming: ObjectKey(kind: ActionSpec.kind, name: action), in: cache)
            if placing.isEmpty {
                controllerActions.append(action)
            } else {
                runnerActions.append(action)
                assignments.formUnion(placing)
            }
        }
        var placed = Set(runnerActions.map { ObjectKey(kind: ActionSpec.kind, name: $0) })
        placed.insert(ObjectKey(kind: RouteSpec.kind, name: name))
        let placement = placements.placement(of: placed, by: assignments, in: cache)
        var fields: JSONValue = [
            "controllerActions": StatusReport.array(controllerActions),
            "runnerActions": StatusReport.array(runnerActions),
            "runners": placement.listedRunners, "runnerCount": .int(Int64(placement.runners.count)),
        ]
        fields["syncedRunners"] = placement.syncedRunners.map { .int(Int64($0)) }
        let synced = placement.syncedCondition(
            generation: StatusReport.generation(of: object), what: "the route and its runner actions")
        return try StatusReport.status(
            of: object, problems: problems, readyMessage: "all actions and the template exist",
            fields: ["placement": fields], conditions: synced.map { [$0] } ?? [])
    }
}
