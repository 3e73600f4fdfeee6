import Foundation

/// Finds the executables built by `swift build`, for end-to-end tests that run real processes.
public enum Binaries {
    /// The package root, found from this file's path.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `STEADY_BIN_DIR`, else the directory of the running test bundle, else `.build/debug`.
    public static var directory: URL {
        if let override = ProcessInfo.processInfo.environment["STEADY_BIN_DIR"] {
            return URL(fileURLWithPath: override)
        }
        let bundle = Bundle.main.bundleURL
        for candidate in [bundle, bundle.deletingLastPathComponent()]
        where FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("steady").path) {
            return candidate
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }

    public static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The first executable of that name on PATH, if any (kubectl is optional on a fresh machine).
    public static func onPath(_ name: String) -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        return paths.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
