import Resources

/// The discovery documents kubectl reads before anything else.
enum Discovery {
    /// The core group's versions. steady serves no core kinds, but kubectl maps `kind: List` only in a group
    /// version that discovery lists: without `v1` here, `kubectl apply -f list.json` fails with
    /// `no matches for kind "List" in version "v1"`.
    static let apiVersions: JSONValue = [
        "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [],
    ]

    /// `/api/v1`: the core group version, with no resources.
    static let coreResourceList: JSONValue = [
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [],
    ]

    static var groupVersion: JSONValue {
        ["groupVersion": .string(API.apiVersion), "version": .string(API.version)]
    }

    static var group: JSONValue {
        [
            "name": .string(API.group), "versions": [groupVersion], "preferredVersion": groupVersion,
        ]
    }

    static var groupList: JSONValue {
        ["kind": "APIGroupList", "apiVersion": "v1", "groups": [group]]
    }

    static var apiGroup: JSONValue {
        var value = group
        value["kind"] = "APIGroup"
        value["apiVersion"] = "v1"
        return value
    }

    static var resourceList: JSONValue {
        var resources: [JSONValue] = []
        let verbs: JSONValue = ["create", "delete", "get", "list", "patch", "update", "watch"]
        for info in Kinds.all {
            resources.append([
                "name": .string(info.plural), "singularName": .string(info.singular), "namespaced": false,
                "kind": .string(info.kind), "verbs": verbs, "shortNames": .array(info.shortNames.map(JSONValue.string)),
                "categories": ["steady"],
            ])
            if info.hasStatus {
                resources.append([
                    "name": .string("\(info.plural)/status"), "singularName": "", "namespaced": false,
                    "kind": .string(info.kind), "verbs": ["get", "patch", "update"],
                ])
            }
            if info.kind == RemoteRunSpec.kind {
                // Like `pods/log`: the output, as text, read with GET only.
                resources.append([
                    "name": .string("\(info.plural)/log"), "singularName": "", "namespaced": false,
                    "kind": .string(info.kind), "verbs": ["get"],
                ])
            }
        }
        // Execution records of the event pipeline: read-only and not stored objects, like Kubernetes Events.
        resources.append([
            "name": "executions", "singularName": "execution", "namespaced": false, "kind": "Execution",
            "verbs": ["get", "list"], "categories": ["steady"],
        ])
        return [
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(API.apiVersion),
            "resources": .array(resources),
        ]
    }

    static let version: JSONValue = [
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-steady", "platform": "linux/amd64",
        "goVersion": "swift6", "compiler": "swift", "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
    ]
}
