import Foundation
import SteadyTesting

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

    /// Writes zeros to `name` until the file system is full; returns the file's size then.
    func fill(_ name: String) -> Int {
        let file = URL(fileURLWithPath: path).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: file.path, contents: nil),
            let handle = try? FileHandle(forWritingTo: file)
        else { return 0 }
        // Large writes first, then small ones to take the last blocks too (a failed write may still write a part).
        for size in [1 << 20, 64 << 10, 4 << 10, 512] {
            let chunk = Data(count: size)
            while (try? handle.write(contentsOf: chunk)) != nil {}
        }
        try? handle.close()
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        return (attributes?[.size] as? Int) ?? 0
    }
}
