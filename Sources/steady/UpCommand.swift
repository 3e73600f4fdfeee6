import ArgumentParser
import Client
import Foundation
import Logging
import Reconciler

/// `steady up`: everything on one machine, watching `./manifests`.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run the controller with its embedded store on this machine, applying and watching ./manifests.")

    @Option(name: [.customShort("f"), .customLong("manifests")], help: "The manifests directory to apply and watch.")
    var manifests = "manifests"

    @Option(name: .customLong("data-dir"), help: "Directory for the store, the CA and the admin credentials.")
    var dataDirectory = ".steady"

    @Option(help: "Address and port to serve the API on.")
    var listen = "127.0.0.1:7443"

    @Option(name: .customLong("git"), help: "A Git repository to apply and follow, beside ./manifests.")
    var gitURL: String?

    @Option(name: .customLong("git-ref"), help: "The branch of --git to follow (its default branch otherwise).")
    var gitRef: String?

    @Option(name: .customLong("git-path"), help: "The directory of manifests inside --git (the root otherwise).")
    var gitPath: String?

    @Option(help: "trace, debug, info, notice, warning or error.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        var options = try ControllerOptions.parse([])
        options.dataDirectory = dataDirectory
        options.listen = listen
        options.logLevel = logLevel
        (options.gitURL, options.gitRef, options.gitPath) = (gitURL, gitRef, gitPath)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: manifests, isDirectory: &isDirectory), isDirectory.boolValue {
            options.manifests = manifests
        } else if gitURL == nil {
            throw ValidationError("-f \(manifests): no such directory; create it or point -f at your manifests")
        }
        try options.validate()
        let logger = makeLogger(level: logLevel)
        let kubeconfig = options.kubeconfigURL.path
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let (reporterPorts, reporterPortContinuation) = AsyncStream<Int>.makeStream()
        let runnerName = LocalRunner.defaultName()
        try await options.runController(
            logger: logger,
            extraServices: { runtime in
                [
                    LocalRunner(runtime: runtime, ports: ports, name: runnerName, logger: logger),
                    ConvergenceReporter(ports: reporterPorts, runtime: runtime, logger: logger),
                ]
            }
        ) { _, port in
            portContinuation.yield(port)
            reporterPortContinuation.yield(port)
            Console.out(
                """
                steady is up on port \(port), applying and watching \(manifests)/
                  local runner: \(runnerName) (steady get runner \(runnerName))
                  kubeconfig: \(kubeconfig)
                  try:        steady get routes --kubeconfig \(kubeconfig)
                              kubectl --kubeconfig \(kubeconfig) get routes.steady.dev
                """)
        }
    }
}
