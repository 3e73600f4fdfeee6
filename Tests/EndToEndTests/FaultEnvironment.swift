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

/// A tmpfs of a fixed size mounted over a directory, for a test that fills a disk; `unmount()` takes it down.
struct TmpfsMount {
    let path: String

    /// Mounts a tmpfs of `megabytes` MiB at `path` (an existing directory, whose contents it hides).
    init(at path: String, megabytes: Int) throws {
        let mounted = try CommandResult.run(
            "/usr/bin/env", ["mount", "-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", path])
        guard mounted.status == 0 else {
            throw ControllerProcessError(message: "cannot mount a tmpfs at \(path): \(mounted)")
        }
        self.path = path
    }

    /// Unmounts it (lazily, so a process still holding a file does not keep it mounted).
    func unmount() {
        _ = try? CommandResult.run("/usr/bin/env", ["umount", "-l", path])
    }

    /// Writes zeros to `name` until the file system is full; returns the bytes written.
    func fill(_ name: String) -> Int {
        let file = URL(fileURLWithPath: path).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: file.path, contents: nil),
            let handle = try? FileHandle(forWritingTo: file)
        else { return 0 }
        defer { try? handle.close() }
        var written = 0
        // Large writes first, then small ones to take the last blocks too.
        for size in [1 << 20, 64 << 10, 4 << 10, 512] {
            let chunk = Data(count: size)
            while (try? handle.write(contentsOf: chunk)) != nil { written += size }
        }
        return written
    }
}
