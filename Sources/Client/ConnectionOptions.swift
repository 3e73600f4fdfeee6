import ArgumentParser
import Foundation

/// The flags every command that talks to the controller shares: where the server is and how to authenticate.
///
/// The kubeconfig is found as ``Kubeconfig/locate(explicit:environment:currentDirectory:fileExists:)`` says
/// (`--kubeconfig`, `STEADY_KUBECONFIG`, `KUBECONFIG`, `.steady/admin.kubeconfig`, `~/.kube/config`).
/// `--server` and `--token` override what it holds; with `--server` and no kubeconfig, the server's certificate is
/// verified against the system trust store. There is no way to skip verification.
public struct ConnectionOptions: ParsableArguments, Sendable {
    /// `--server URL`.
    @Option(name: .long, help: ArgumentHelp("The API server URL, e.g. https://127.0.0.1:7443.", valueName: "url"))
    public var server: String?

    /// `--kubeconfig PATH`.
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The kubeconfig file (default: $STEADY_KUBECONFIG, $KUBECONFIG, .steady/admin.kubeconfig, ~/.kube/config).",
            valueName: "path"))
    public var kubeconfig: String?

    /// `--context NAME`.
    @Option(name: .long, help: ArgumentHelp("The kubeconfig context to use.", valueName: "name"))
    public var context: String?

    /// `--token TOKEN`.
    @Option(name: .long, help: ArgumentHelp("The bearer token, instead of the kubeconfig's.", valueName: "token"))
    public var token: String?

    /// Creates options with nothing set.
    public init() {}

    /// The client configuration these flags and the environment describe.
    /// - Throws: ``KubeconfigError`` when the kubeconfig cannot be read or lacks what is needed, or
    ///   ``APIClientError`` when no server is known at all.
    public func makeConfiguration(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> APIClient.Configuration {
        let located = Kubeconfig.locate(explicit: kubeconfig, environment: environment)
        // `--server` alone needs no kubeconfig, unless one was named explicitly.
        let isNamed = kubeconfig != nil || environment["STEADY_KUBECONFIG"].map { !$0.isEmpty } == true
        if let server, located == nil || (!isNamed && !FileManager.default.fileExists(atPath: located?.path ?? "")) {
            return APIClient.Configuration(server: server, caPEM: nil, token: token)
        }
        guard let located else {
            throw APIClientError(
                code: .configuration,
                message: "no server to talk to: pass --server https://HOST:PORT or --kubeconfig PATH, or start "
                    + "`steady up`, which writes \(Kubeconfig.localPath)")
        }
        let cluster = try Kubeconfig.load(from: located).resolve(context: context)
        if cluster.insecureSkipTLSVerify {
            // makeTLSConfiguration() explains why this is refused.
            _ = try cluster.makeTLSConfiguration()
        }
        let url = server ?? cluster.server
        if let name = cluster.tlsServerName, !name.isEmpty, name.lowercased() != URL(string: url)?.host?.lowercased() {
            // Verifying against another name than the one connected to is not possible with this HTTP client;
            // ignoring the setting would weaken verification silently.
            let place = cluster.source.map { " in \($0.path)" } ?? ""
            throw APIClientError(
                code: .configuration,
                message: "cluster \"\(cluster.clusterName)\"\(place) sets tls-server-name \"\(name)\", which this client "
                    + "does not support; use a server URL whose host the certificate names (add names with "
                    + "`steady controller --server-name`)")
        }
        return APIClient.Configuration(server: url, caPEM: cluster.caPEM, token: token ?? cluster.token)
    }

    /// Creates a client from these flags, runs `body`, and shuts the client down.
    public func withClient<Result: Sendable>(_ body: (APIClient) async throws -> Result) async throws -> Result {
        try await APIClient.withClient(try makeConfiguration(), body)
    }
}
