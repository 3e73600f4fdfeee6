import Resources
import Testing

@Suite(.timeLimit(.minutes(5))) struct FieldSetTests {
    static let applied: JSONValue = [
        "apiVersion": "steady.dev/v1", "kind": "Route", "metadata": ["name": "r", "labels": ["tier": "a"]],
        "spec": ["input": "", "actions": ["a", "b"]],
    ]

    /// The object as the server stores it after `manager` applied `applied`, plus what others wrote.
    static func live(owned: JSONValue, manager: String = "steady", extra: [String: JSONValue] = [:]) -> JSONValue {
        var live = applied
        live["metadata"]?["resourceVersion"] = "7"
        live["metadata"]?["managedFields"] = [
            ["manager": .string(manager), "operation": "Apply", "fieldsV1": FieldSet(leavesOf: owned).fieldsV1]
        ]
        for (key, value) in extra { live["spec"]?[key] = value }
        return live
    }

    @Test func applyingWhatIsAlreadyAppliedChangesNothing() {
        #expect(FieldSet.applyChangesNothing(Self.applied, live: Self.live(owned: Self.applied), manager: "steady"))
        // Fields that others set do not matter.
        let shared = Self.live(owned: Self.applied, extra: ["serializeActions": true])
        #expect(FieldSet.applyChangesNothing(Self.applied, live: shared, manager: "steady"))
    }

    @Test func anyDifferenceMeansTheApplyMustBeSent() {
        // Another manager applied it.
        #expect(!FieldSet.applyChangesNothing(Self.applied, live: Self.live(owned: Self.applied, manager: "kubectl"), manager: "steady"))
        // A value differs.
        var changed = Self.applied
        changed["spec"]?["actions"] = ["a"]
        #expect(!FieldSet.applyChangesNothing(changed, live: Self.live(owned: Self.applied), manager: "steady"))
        // The manager stops applying a field it owned: the server must remove it.
        var fewer = Self.applied
        fewer["metadata"]?["labels"] = nil
        #expect(!FieldSet.applyChangesNothing(fewer, live: Self.live(owned: Self.applied), manager: "steady"))
        // A new field.
        var more = Self.applied
        more["spec"]?["template"] = "raw-json"
        #expect(!FieldSet.applyChangesNothing(more, live: Self.live(owned: Self.applied), manager: "steady"))
    }
}
