import Resources
import Testing

@testable import Reconciler

/// When the controller rebuilds its event route table: on configuration changes, not on status writes.
@Suite struct EventTableSourceTests {
    func change(_ kind: String, old: JSONValue?, new: JSONValue?) -> ObjectChange {
        ObjectChange(key: ObjectKey(kind: kind, name: "a"), old: old, new: new)
    }

    @Test func onlySpecDataAdditionsAndDeletionsRebuildTheTable() {
        let route: JSONValue = [
            "metadata": ["name": "a"], "spec": ["actions": ["hook"]], "status": ["matchedEvents": 1],
        ]
        var counted = route
        counted["status"]?["matchedEvents"] = 2
        counted["metadata"]?["resourceVersion"] = "7"
        #expect(!EventTableSource.changesTheTable(change(RouteSpec.kind, old: route, new: counted)))
        var edited = route
        edited["spec"]?["actions"] = ["hook", "mail"]
        #expect(EventTableSource.changesTheTable(change(RouteSpec.kind, old: route, new: edited)))
        #expect(EventTableSource.changesTheTable(change(RouteSpec.kind, old: nil, new: route)))
        #expect(EventTableSource.changesTheTable(change(ActionSpec.kind, old: route, new: nil)))
        let secret: JSONValue = ["metadata": ["name": "a"], "data": ["k": "dg=="]]
        var rotated = secret
        rotated["data"]?["k"] = "dw=="
        #expect(EventTableSource.changesTheTable(change(Secret.kind, old: secret, new: rotated)))
        #expect(!EventTableSource.changesTheTable(change(RunnerSpec.kind, old: nil, new: route)))
    }
}
