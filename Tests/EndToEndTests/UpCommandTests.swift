import Foundation
import SteadyTesting
import Testing

/// `steady up`: the README's main command, on the example manifests.
@Suite(.serialized, .timeLimit(.minutes(5))) struct UpCommandTests {
    @Test func upAppliesTheExamplesAndRunsALocalRunner() throws {
        let directory = try TemporaryDirectory(prefix: "steady-up")
        defer { directory.remove() }
        try FileManager.default.copyItem(
            at: Binaries.packageRoot.appendingPathComponent("manifests"), to: directory.file("manifests"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("steady"))
        process.arguments = ["up", "--listen", "127.0.0.1:0"]
        process.currentDirectoryURL = directory.url
        let log = directory.file("up.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let kubeconfig = directory.file(".steady/admin.kubeconfig").path
        func steady(_ arguments: [String]) throws -> CommandResult {
            try CommandResult.run(Binaries.path("steady"), arguments, environment: ["STEADY_KUBECONFIG": kubeconfig])
        }
        let text = { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        #expect(eventually(timeout: .seconds(30)) { FileManager.default.fileExists(atPath: kubeconfig) }, "\(text())")
        // Every route of the examples becomes Ready, and the local runner connects and syncs.
        let routes = try steady(["wait", "--for=condition=Ready", "route/trc-2-mixed", "route/runner-only", "route/controller-only", "--timeout", "30s"])
        #expect(routes.status == 0, "\(routes)\n\(text())")
        #expect(
            try eventually(timeout: .seconds(30)) {
                try steady(["get", "runners", "-l", "steady.dev/local=true", "-o", "json"]).output.contains("\"Synced\"")
            }, "\(text())")
        // Convergence shows as it happens, naming the example runners that have no agent.
        #expect(eventually(timeout: .seconds(15)) { text().contains("runners synced") }, "\(text())")
        #expect(text().contains("(NeverConnected)"), "\(text())")
        // SIGTERM shuts it down gracefully.
        kill(process.processIdentifier, SIGTERM)
        #expect(eventually(timeout: .seconds(20)) { !process.isRunning })
    }
}
