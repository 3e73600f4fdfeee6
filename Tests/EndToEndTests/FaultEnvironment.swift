import Foundation
import Resources
import SteadyTesting

/// What the fault-injection tests need from the machine, checked once, and the faults they set up and take down.
enum FaultEnvironment {
    /// Whether this process may mount a tmpfs: root, with a kernel and a sandbox that allow it (tried for real).
    static let canMountTmpfs: Bool = {
        guard geteuid() == 0, let probe = try? TemporaryDirectory(prefix: "steady-tmpfs-probe") else { return false }
        defer { probe.remove() }
        guard let mount = try? TmpfsMount(at: probe.path, megabytes: 1) else { return false }
        mount.unmount()
        return true
    }()

    /// Whether `curl` is installed (the full-disk test reads HTTP codes and `Status` bodies with it).
    static let hasCurl = Binaries.onPath("curl") != nil

    /// The `status` of the condition `type` of a Runner (`True`, `False`), read with `steady get -o json`.
    static func runnerCondition(_ controller: ControllerProcess, _ runner: String, _ type: String) -> String? {
        guard let result = try? controller.run("steady", ["get", "runner", runner, "-o", "json"]), result.status == 0,
            let runner = try? JSONValue.parse(Data(result.output.utf8))
        else { return nil }
        return runner["status"]?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == type }?["status"]?
            .stringValue
    }

    /// The lines of a file, empty when it does not exist.
    static func lines(of file: URL) -> [Substring] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n")
    }

    /// The names in `directory` that start with `prefix`.
    static func files(in directory: String, startingWith prefix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix(prefix) }
    }
}
