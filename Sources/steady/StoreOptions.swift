import ArgumentParser
import EtcdStore
import Foundation
import Logging
import Reconciler

/// `--store` and its etcd flags: where the controller keeps its objects, and so whether it runs alone.
struct StoreOptions: ParsableArguments {
    @Option(
        help: """
            sqlite (the default: one controller, its store in --data-dir) or etcd://HOST:PORT[,HOST:PORT...] \
            (several controllers on one etcd, with leader election).
            """)
    var store = "sqlite"

    @Option(name: .customLong("store-prefix"), help: "The etcd key prefix this cluster's keys live under.")
    var storePrefix = "/steady"

    @Option(name: .customLong("etcd-cacert"), help: "The CA certificate (PEM) etcd's serving certificate is signed by.")
    var etcdCACertificate: String?

    @Option(name: .customLong("etcd-cert"), help: "A client certificate (PEM) for etcd with client-cert-auth.")
    var etcdCertificate: String?

    @Option(name: .customLong("etcd-key"), help: "The key (PEM) of --etcd-cert.")
    var etcdKey: String?

    @Option(
        name: .customLong("leader-lease-seconds"),
        help: "The TTL of the leader's etcd lease: a dead leader is replaced within about twice this.")
    var leaderLeaseSeconds = 5

    func validate() throws {
        if store != "sqlite" { _ = try etcdConfiguration() }
        if (etcdCertificate == nil) != (etcdKey == nil) {
            throw ValidationError("--etcd-cert and --etcd-key go together: give both or neither")
        }
        for (flag, path) in [("--etcd-cacert", etcdCACertificate), ("--etcd-cert", etcdCertificate), ("--etcd-key", etcdKey)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw ValidationError("\(flag) \(path): no such readable file")
            }
        }
        guard (2...300).contains(leaderLeaseSeconds) else {
            throw ValidationError("--leader-lease-seconds \(leaderLeaseSeconds): expected 2 to 300")
        }
    }

    func etcdConfiguration() throws -> EtcdConfiguration {
        var configuration: EtcdConfiguration
        do {
            configuration = try EtcdConfiguration(url: store, prefix: storePrefix)
        } catch let error as EtcdConfigurationError {
            throw ValidationError(error.description)
        }
        configuration.caCertificate = etcdCACertificate
        configuration.clientCertificate = etcdCertificate
        configuration.clientKey = etcdKey
        return configuration
    }

    /// The controller runtime on the chosen store: SQLite alone, or etcd with a shared identity and leader election.
    func makeRuntime(configuration: ControllerRuntime.Configuration, logger: Logger) async throws -> ControllerRuntime {
        guard store != "sqlite" else { return try ControllerRuntime(configuration: configuration, logger: logger) }
        let etcd = try await EtcdStore.connect(configuration: try etcdConfiguration())
        do {
            let identity = try await EtcdClusterIdentity.loadOrCreate(
                store: etcd, dataDirectory: configuration.dataDirectory, serverNames: configuration.serverNames,
                listenHost: configuration.host, logger: logger)
            let host = ProcessInfo.processInfo.hostName
            let elector = EtcdLeaderElection(
                store: etcd,
                identity: "\(host) \(configuration.host):\(configuration.port) pid \(getpid())",
                ttl: .seconds(leaderLeaseSeconds), logger: logger)
            logger.info(
                "store: etcd", metadata: ["steady.etcd": "\(etcd.connectionEndpoints)", "steady.prefix": "\(storePrefix)"])
            return try ControllerRuntime(
                configuration: configuration, identity: identity, store: etcd, elector: elector, logger: logger)
        } catch {
            etcd.close()
            throw error
        }
    }
}
