import Foundation
import Logging
import Reconciler
import Resources

/// The cluster identity that every controller on one etcd shares: the CA (certificate and key) and the admin token,
/// kept at `<prefix>/identity`. Join tokens and agent credentials are objects in the store, so they are shared too.
///
/// The first controller creates the identity in its data directory and publishes it with a transaction that
/// succeeds only while the key is absent, so two controllers starting at once cannot both create one: the loser
/// takes the winner's. Every controller writes the shared files into its data directory and then loads its
/// identity from there as a lone controller does; its serving certificate is reissued by the shared CA when it
/// was signed by another. So one `admin.kubeconfig` works against every replica.
public enum EtcdClusterIdentity {
    /// The files of the data directory that make up the shared identity.
    static let sharedFiles = [
        ControllerIdentity.FileName.caCertificate, ControllerIdentity.FileName.caKey,
        ControllerIdentity.FileName.adminToken,
    ]

    /// Takes the identity from etcd, or publishes this data directory's (creating it if needed) when etcd has none.
    public static func loadOrCreate(
        store: EtcdStore, dataDirectory: URL, serverNames: [String], listenHost: String, logger: Logger
    ) async throws -> ControllerIdentity {
        let key = store.keys.identity
        for _ in 0..<3 {
            if let shared = try await store.range(key: key, end: nil, revision: 0).kvs.first {
                try install(shared.value, in: dataDirectory, logger: logger)
                return try ControllerIdentity.loadOrCreate(
                    dataDirectory: dataDirectory, serverName: serverNames, listenHost: listenHost)
            }
            let local = try ControllerIdentity.loadOrCreate(
                dataDirectory: dataDirectory, serverName: serverNames, listenHost: listenHost)
            let value = try encode(from: dataDirectory)
            var request = Etcdserverpb_TxnRequest()
            request.compare = [EtcdCompare(key: key, target: .create, revision: 0).message]
            request.success = [EtcdOperation.put(key: key, value: value, previous: false).message]
            let response = try await store.connection.call("publish identity") {
                try await $0.kv.txn(request, options: $1)
            }
            if response.succeeded {
                logger.info("published this controller's CA and admin token as the cluster's identity in etcd")
                return local
            }
            // Another controller published first: take its identity on the next pass.
        }
        throw StoreError(
            code: .unavailable, message: "the cluster identity at \(String(decoding: key, as: UTF8.self)) kept changing")
    }

    /// The shared files of `dataDirectory` as one JSON document.
    static func encode(from dataDirectory: URL) throws -> Data {
        var document: [String: String] = [:]
        for name in sharedFiles {
            document[name] = try String(contentsOf: dataDirectory.appendingPathComponent(name), encoding: .utf8)
        }
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
    }

    /// Writes the shared files from etcd into `dataDirectory` (mode 0600), replacing any that differ.
    static func install(_ value: Data, in dataDirectory: URL, logger: Logger) throws {
        guard let document = try? JSONSerialization.jsonObject(with: value) as? [String: String],
            sharedFiles.allSatisfy({ document[$0] != nil })
        else {
            throw StoreError(
                code: .unavailable,
                message: "the cluster identity in etcd is not a JSON object with \(sharedFiles.joined(separator: ", "))")
        }
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        _ = chmod(dataDirectory.path, 0o700)
        for name in sharedFiles {
            let url = dataDirectory.appendingPathComponent(name)
            let contents = document[name] ?? ""
            if (try? String(contentsOf: url, encoding: .utf8)) == contents { continue }
            do {
                try AtomicFile.write(Array(contents.utf8), to: url.path, mode: 0o600)
            } catch {
                throw StoreError(code: .unavailable, message: "cannot write \(url.path): \(error)")
            }
            logger.info("took \(name) from the cluster identity in etcd", metadata: ["steady.file": "\(url.path)"])
        }
    }
}
