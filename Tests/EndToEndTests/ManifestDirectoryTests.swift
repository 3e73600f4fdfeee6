import Foundation
import SteadyTesting
import Testing

/// `steady controller --manifests DIR`: applies, follows changes, prunes, and never applies a broken file.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ManifestDirectoryTests {
    static func action(_ name: String, type: String = "stdout") -> String {
        "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: \(name)}\nspec: {type: \(type)}\n"
    }

    func names(_ controller: ControllerProcess, _ kind: String) throws -> Set<String> {
        let result = try controller.run("steady", ["get", kind, "-o", "name"])
        return Set(result.output.split(separator: "\n").map(String.init))
    }

    @Test func followsAddChangeRemoveAndKeepsStateOnBrokenFiles() throws {
        let directory = try TemporaryDirectory(prefix: "steady-manifests")
        defer { directory.remove() }
        try directory.write(Self.action("first"), to: "first.yaml")
        let controller = try ControllerProcess(manifests: directory.url)
        defer { controller.remove() }
        try controller.start()

        #expect(try eventually { try names(controller, "actions") == ["action.steady.dev/first"] }, "\(controller.log())")

        // Add a file, in a subdirectory.
        try directory.write(Self.action("second"), to: "more/second.yaml")
        #expect(try eventually { try names(controller, "actions").contains("action.steady.dev/second") })

        // Change a file.
        try directory.write(Self.action("first", type: "file") + "  # changed\n", to: "first.yaml")
        try directory.write(
            "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: first}\nspec: {type: file, file: {path: /tmp/x}}\n",
            to: "first.yaml")
        #expect(
            try eventually {
                try controller.run("steady", ["get", "action", "first", "-o", "json"]).output.contains("/tmp/x")
            })

        // A broken file applies nothing and is reported; the last good state stays.
        try directory.write("apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: third}\nspec: {typo: 1\n", to: "broken.yaml")
        try directory.write(Self.action("fourth"), to: "fourth.yaml")
        #expect(
            try eventually {
                try controller.run("steady", ["describe", "gitrepository/manifests"]).output.contains("InvalidManifest")
            }, "\(controller.log())")
        #expect(try names(controller, "actions") == ["action.steady.dev/first", "action.steady.dev/second"])

        // Fixing it applies everything; removing a file prunes its objects.
        try FileManager.default.removeItem(at: directory.file("broken.yaml"))
        try FileManager.default.removeItem(at: directory.file("more/second.yaml"))
        #expect(
            try eventually {
                try names(controller, "actions") == ["action.steady.dev/first", "action.steady.dev/fourth"]
            }, "\(controller.log())")
    }
}
