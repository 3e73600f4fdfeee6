import Foundation
import SteadyTesting
import Testing

/// SIGTERM stops the controller even while it serves a watch whose client vanished without closing it.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ShutdownTests {
    @Test func aWatchWhoseClientWasKilledDoesNotHoldTheShutdown() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: Binaries.path("steady"))
        watcher.arguments = ["get", "routes", "-w"]
        watcher.environment = ProcessInfo.processInfo.environment.merging(["STEADY_KUBECONFIG": controller.kubeconfig]) { $1 }
        watcher.standardOutput = FileHandle.nullDevice
        watcher.standardError = FileHandle.nullDevice
        try watcher.run()
        // Wait until the controller serves the watch, as its metrics tell (read with kubectl; where kubectl is not
        // installed, give the watch two seconds to open).
        if controller.metric("steady_api_open_watches") != nil {
            #expect(eventually(timeout: .seconds(20)) { (controller.metric("steady_api_open_watches") ?? 0) >= 1 })
        } else {
            Thread.sleep(forTimeInterval: 2)
        }
        #expect(watcher.isRunning)
        kill(watcher.processIdentifier, SIGKILL)
        watcher.waitUntilExit()

        controller.signal(SIGTERM)
        // Without ending open watches on shutdown this waits for the watch's timeout (up to 30 minutes).
        #expect(eventually(timeout: .seconds(30)) { !controller.isRunning }, "\(controller.log())")
        #expect(controller.log().contains("controller stopped"))
    }
}
