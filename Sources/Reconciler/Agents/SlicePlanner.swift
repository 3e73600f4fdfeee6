import Resources

/// Computes what each runner is responsible for: the routes and actions Assignments place on it, the
/// templates those routes use, and only the Secrets those actions reference. A pure value: no I/O.
public struct SlicePlanner: Sendable {
    /// The desired state the slices are computed from, keyed by name.
    public struct Inputs: Sendable {
        public var runners: [String: [String: String]] = [:]
        /// The slice form of each Runner that has a `spec.schedule` (name and schedule only): it goes into that
        /// runner's own slice.
        public var scheduledRunners: [String: JSONValue] = [:]
        public var assignments: [String: AssignmentSpec] = [:]
        public var objects: [SliceKey: JSONValue] = [:]

        public init() {}

        /// Records an object of a kind that matters to slices; returns whether it did matter.
        @discardableResult
        public mutating func upsert(kind: String, name: String, object: JSONValue) -> Bool {
            switch kind {
            case RunnerSpec.kind:
                // Only labels and the schedule make slices: a Runner status write (one per agent report) changes
                // nothing here.
                let labels = ObjectService.labels(of: object)
                let scheduled = SlicePlanner.scheduledForm(of: object)
                if runners[name] == labels && scheduledRunners[name] == scheduled { return false }
                runners[name] = labels
                scheduledRunners[name] = scheduled
            case AssignmentSpec.kind:
                assignments[name] = try? object["spec"]?.decode(as: AssignmentSpec.self)
            case _ where AgentProtocol.sliceKinds.contains(kind):
                objects[SliceKey(kind: kind, name: name)] = SlicePlanner.sliceForm(of: object)
            default:
                return false
            }
            return true
        }

        @discardableResult
        public mutating func remove(kind: String, name: String) -> Bool {
            switch kind {
            case RunnerSpec.kind:
                runners[name] = nil
                scheduledRunners[name] = nil
            case AssignmentSpec.kind: assignments[name] = nil
            case _ where AgentProtocol.sliceKinds.contains(kind): objects[SliceKey(kind: kind, name: name)] = nil
            default: return false
            }
            return true
        }
    }

    /// One runner's slice: its objects and their digest. Runners with equal slices share one copy (the gateway
    /// interns them by digest), so a slice costs its objects once, not once per runner.
    public struct Slice: Sendable, Equatable {
        public var objects: [SliceKey: JSONValue]
        public var digest: String

        public init(objects: [SliceKey: JSONValue]) {
            self.objects = objects
            digest = SliceDigest.digest(of: Slice.sorted(objects))
        }

        public static let empty = Slice(objects: [:])

        public var sliceObjects: [SliceObject] { Slice.sorted(objects) }

        static func sorted(_ objects: [SliceKey: JSONValue]) -> [SliceObject] {
            objects.sorted { $0.key < $1.key }.map { SliceObject(kind: $0.key.kind, name: $0.key.name, object: $0.value) }
        }

        /// What changed from `old` to this slice.
        public func changes(since old: Slice) -> (upserts: [SliceObject], removed: [SliceKey]) {
            let upserts = objects.filter { old.objects[$0.key] != $0.value }
            let removed = old.objects.keys.filter { objects[$0] == nil }.sorted()
            return (Slice.sorted(upserts), removed)
        }

        /// The `metadata.generation` this slice holds of an object; nil when it does not hold it.
        public func generation(of key: SliceKey) -> Int64? {
            guard let object = objects[key] else { return nil }
            return object["metadata"]?["generation"]?.intValue ?? 0
        }

        public var names: (routes: [String], actions: [String], templates: [String], secrets: [String]) {
            func names(_ kind: String) -> [String] { objects.keys.filter { $0.kind == kind }.map(\.name).sorted() }
            return (names(RouteSpec.kind), names(ActionSpec.kind), names(TemplateSpec.kind), names(Secret.kind))
        }
    }

    /// Only what a runner needs: identity and desired state, never status or bookkeeping that changes
    /// without the configuration changing.
    static func sliceForm(of object: JSONValue) -> JSONValue {
        var form: JSONValue = [
            "apiVersion": object["apiVersion"] ?? .string(API.apiVersion), "kind": object["kind"] ?? .null,
            "metadata": ["name": object["metadata"]?["name"] ?? .null],
        ]
        if let generation = object["metadata"]?["generation"] { form["metadata"]?["generation"] = generation }
        for field in ["spec", "data", "type"] {
            if let value = object[field] { form[field] = value }
        }
        return form
    }

    /// A Runner's slice form when it has a `spec.schedule`: its name, generation and schedule, nothing else (not
    /// its labels or status, which change without the schedule changing). Nil without a schedule.
    static func scheduledForm(of runner: JSONValue) -> JSONValue? {
        guard let schedule = runner["spec"]?["schedule"], schedule != .null else { return nil }
        var form = sliceForm(of: runner)
        form["spec"] = ["schedule": schedule]
        return form
    }

    public init() {}

    /// The slice of one runner.
    public func slice(runner: String, labels: [String: String], inputs: Inputs) -> Slice {
        slice(
            slice(ofAssignments: assignments(matching: runner, labels: labels, inputs: inputs), inputs: inputs),
            ownedBy: runner, inputs: inputs)
    }

    /// `shared` (the slice of the runner's Assignments) with the runner's own Runner added when it has a schedule.
    /// Only scheduled runners get a slice of their own: the others keep sharing theirs.
    public func slice(_ shared: Slice, ownedBy runner: String, inputs: Inputs) -> Slice {
        guard let own = inputs.scheduledRunners[runner] else { return shared }
        var objects = shared.objects
        objects[SliceKey(kind: RunnerSpec.kind, name: runner)] = own
        return Slice(objects: objects)
    }

    /// The sorted names of the Assignments that match a runner: runners matched by the same ones share a slice.
    public func assignments(matching runner: String, labels: [String: String], inputs: Inputs) -> [String] {
        inputs.assignments.compactMap { name, assignment in
            assignment.matches(runnerName: runner, labels: labels) ? name : nil
        }.sorted()
    }

    /// The slice of a runner that these Assignments match.
    public func slice(ofAssignments names: [String], inputs: Inputs) -> Slice {
        var routes: Set<String> = []
        var actions: Set<String> = []
        for name in names {
            guard let assignment = inputs.assignments[name] else { continue }
            routes.formUnion(assignment.routes ?? [])
            actions.formUnion(assignment.actions ?? [])
        }
        var objects: [SliceKey: JSONValue] = [:]
        for name in routes {
            let key = SliceKey(kind: RouteSpec.kind, name: name)
            guard let route = inputs.objects[key] else { continue }
            objects[key] = route
            if let template = route["spec"]?["template"]?.stringValue {
                let templateKey = SliceKey(kind: TemplateSpec.kind, name: template)
                if let object = inputs.objects[templateKey] { objects[templateKey] = object }
            }
        }
        for name in actions {
            let key = SliceKey(kind: ActionSpec.kind, name: name)
            guard let action = inputs.objects[key] else { continue }
            objects[key] = action
            for reference in SlicePlanner.secretNames(of: action) {
                let secretKey = SliceKey(kind: Secret.kind, name: reference)
                if let secret = inputs.objects[secretKey] { objects[secretKey] = secret }
            }
        }
        return objects.isEmpty ? .empty : Slice(objects: objects)
    }

    /// The Secrets an action's spec references.
    static func secretNames(of action: JSONValue) -> Set<String> {
        guard let spec = try? action["spec"]?.decode(as: ActionSpec.self) else { return [] }
        return Set(spec.secretReferences.map(\.name))
    }
}
