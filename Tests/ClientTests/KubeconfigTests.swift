import Client
import Foundation
import SteadyTesting
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

private let fixtureCAPEM = FixtureCA.pem

private struct KubeconfigTemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("steady-kubeconfig-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func cleanup() {
        try? FileManager.default.removeItem(at: url)
    }
}

private func fileMode(of url: URL) -> mode_t? {
    var info = stat()
    guard stat(url.path, &info) == 0 else { return nil }
    return info.st_mode & 0o777
}

@Suite(.timeLimit(.minutes(2))) struct KubeconfigTests {
    @Test func writeThenLoadRoundTrips() throws {
        let temporary = try KubeconfigTemporaryDirectory()
        defer { temporary.cleanup() }
        let url = temporary.url.appendingPathComponent("nested/.steady/admin.kubeconfig")
        let config = Kubeconfig.make(server: "https://127.0.0.1:6443", caPEM: fixtureCAPEM, token: "secret-token")
        try config.write(to: url)

        #expect(fileMode(of: url) == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        #expect(leftovers == ["admin.kubeconfig"])

        var loaded = try Kubeconfig.load(from: url)
        #expect(loaded.source == url)
        loaded.source = nil
        #expect(loaded == config)

        let resolved = try loaded.currentCluster
        #expect(resolved.server == "https://127.0.0.1:6443")
        #expect(resolved.caPEM == fixtureCAPEM)
        #expect(resolved.token == "secret-token")
        #expect(resolved.contextName == "steady")
        #expect(resolved.clusterName == "steady")
        #expect(resolved.userName == "steady-admin")
        #expect(!resolved.description.contains("secret-token"))
        #expect(!loaded.description.contains("secret-token"))

        // Rewriting replaces the file atomically and keeps it private.
        var changed = loaded
        changed.clusters[0].cluster.server = "https://10.0.0.1:6443"
        try changed.write(to: url)
        #expect(try Kubeconfig.load(from: url).currentCluster.server == "https://10.0.0.1:6443")
        #expect(fileMode(of: url) == 0o600)
    }

    @Test func writtenYAMLUsesKubectlFieldNames() throws {
        let yaml = try Kubeconfig.make(server: "https://h:1", caPEM: fixtureCAPEM, token: "t", name: "lab").yaml()
        for field in [
            "apiVersion: v1", "kind: Config", "current-context: lab", "certificate-authority-data: ",
            "server: https://h:1", "name: lab-admin", "token: t", "cluster: lab", "user: lab-admin",
        ] {
            #expect(yaml.contains(field), "missing \(field) in\n\(yaml)")
        }
    }

    @Test func kubectlStyleFilesWithUnknownFieldsLoad() throws {
        let caData = Data(fixtureCAPEM.utf8).base64EncodedString()
        let yaml = """
            apiVersion: v1
            kind: Config
            preferences: {}
            clusters:
            - cluster:
                certificate-authority-data: \(caData)
                server: https://steady.example.com:6443
                extensions:
                - name: client.authentication.k8s.io/exec
                  extension:
                    audience: foo
                proxy-url: http://proxy:3128
              name: prod
            - cluster:
                server: https://other:6443
                insecure-skip-tls-verify: true
              name: other
            contexts:
            - context:
                cluster: prod
                user: admin
                namespace: apps
                extensions: []
              name: prod-admin
            - context:
                cluster: other
                user: exec-user
              name: other
            current-context: prod-admin
            users:
            - name: admin
              user:
                token: abc.def
                client-certificate-data: Zm9v
                client-key-data: YmFy
            - name: exec-user
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: aws
                  args: ["eks", "get-token"]
                  env: null
            """
        let config = try Kubeconfig.parse(yaml)
        #expect(config.clusters.count == 2)
        let resolved = try config.currentCluster
        #expect(resolved.server == "https://steady.example.com:6443")
        #expect(resolved.caPEM == fixtureCAPEM)
        #expect(resolved.token == "abc.def")
        #expect(resolved.namespace == "apps")
        #expect(!resolved.insecureSkipTLSVerify)
        _ = try resolved.makeTLSConfiguration()

        let other = try config.resolve(context: "other")
        #expect(other.token == nil)
        #expect(other.caPEM == nil)
        #expect(other.insecureSkipTLSVerify)
        let error = try #require(throws: KubeconfigError.self) { try other.makeTLSConfiguration() }
        #expect(error.code == .unsupported)
    }

    @Test func minimalFilesDecodeLeniently() throws {
        let config = try Kubeconfig.parse(
            """
            clusters:
            - name: c
              cluster: {server: "https://x:1"}
            contexts:
            - name: only
              context: {cluster: c}
            users: null
            """
        )
        #expect(config.apiVersion == "v1")
        #expect(config.kind == "Config")
        #expect(config.users.isEmpty)
        // No current-context but a single context: that one is used.
        let resolved = try config.currentCluster
        #expect(resolved.contextName == "only")
        #expect(resolved.token == nil)
    }

    @Test func tokenFileAndCertificateAuthorityPathsResolveAgainstTheKubeconfig() throws {
        let temporary = try KubeconfigTemporaryDirectory()
        defer { temporary.cleanup() }
        try "file-token\n".write(to: temporary.url.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        try fixtureCAPEM.write(to: temporary.url.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
        let url = temporary.url.appendingPathComponent("config")
        try """
        apiVersion: v1
        kind: Config
        clusters:
        - name: c
          cluster:
            server: https://x:1
            certificate-authority: ca.crt
        users:
        - name: u
          user:
            tokenFile: token
        - name: both
          user:
            token: inline
            tokenFile: token
        - name: dashed
          user:
            token-file: \(temporary.url.appendingPathComponent("token").path)
        contexts:
        - {name: a, context: {cluster: c, user: u}}
        - {name: b, context: {cluster: c, user: both}}
        - {name: d, context: {cluster: c, user: dashed}}
        current-context: a
        """.write(to: url, atomically: true, encoding: .utf8)

        let config = try Kubeconfig.load(from: url)
        let resolved = try config.currentCluster
        #expect(resolved.token == "file-token")
        #expect(resolved.caPEM == fixtureCAPEM)
        #expect(try config.resolve(context: "b").token == "inline")
        #expect(try config.resolve(context: "d").token == "file-token")

        try FileManager.default.removeItem(at: temporary.url.appendingPathComponent("token"))
        let error = try #require(throws: KubeconfigError.self) { try config.currentCluster }
        #expect(error.code == .fileSystem)
        #expect(error.message.contains(temporary.url.appendingPathComponent("token").path))
        #expect(error.message.contains(url.path))
    }

    @Test func errorsNameTheFileAndWhatIsMissing() throws {
        let temporary = try KubeconfigTemporaryDirectory()
        defer { temporary.cleanup() }
        let url = temporary.url.appendingPathComponent("config")

        let absent = try #require(throws: KubeconfigError.self) { try Kubeconfig.load(from: url) }
        #expect(absent.code == .notFound)
        #expect(absent.message.contains(url.path))

        func loadError(_ yaml: String) throws -> KubeconfigError {
            try yaml.write(to: url, atomically: true, encoding: .utf8)
            return try #require(throws: KubeconfigError.self) { try Kubeconfig.load(from: url).currentCluster }
        }

        let empty = try loadError("\n")
        #expect(empty.code == .invalidFormat)
        #expect(empty.message.contains("\(url.path) is empty"))

        let broken = try loadError("users:\n- name: u\n  user: {token: \"s3cr3t-value\n")
        #expect(broken.code == .invalidFormat)
        #expect(broken.message.contains(url.path))
        #expect(broken.message.contains("line"))
        #expect(!broken.description.contains("s3cr3t-value"))

        let wrongType = try loadError("clusters:\n- name: c\n  cluster:\n    server: [1, 2]\n")
        #expect(wrongType.code == .invalidFormat)
        #expect(wrongType.message.contains("clusters[0].cluster.server"))

        let noContext = try loadError("clusters: []\ncurrent-context: prod\n")
        #expect(noContext.code == .missing)
        #expect(noContext.message.contains("context \"prod\""))
        #expect(noContext.message.contains(url.path))

        let noCluster = try loadError("contexts:\n- {name: a, context: {cluster: gone, user: u}}\ncurrent-context: a\n")
        #expect(noCluster.message.contains("cluster \"gone\""))

        let noServer = try loadError(
            "clusters:\n- {name: c, cluster: {}}\ncontexts:\n- {name: a, context: {cluster: c}}\ncurrent-context: a\n"
        )
        #expect(noServer.message.contains("has no server"))

        let noUser = try loadError(
            "clusters:\n- {name: c, cluster: {server: 'https://x'}}\n"
                + "contexts:\n- {name: a, context: {cluster: c, user: me}}\n"
        )
        #expect(noUser.message.contains("user \"me\""))

        let ambiguous = try loadError(
            "contexts:\n- {name: a, context: {cluster: c}}\n- {name: b, context: {cluster: c}}\n"
        )
        #expect(ambiguous.message.contains("current-context is not set"))

        let badCA = try loadError(
            "clusters:\n- {name: c, cluster: {server: 'https://x', certificate-authority-data: bm90IGEgY2VydA==}}\n"
                + "contexts:\n- {name: a, context: {cluster: c}}\n"
        )
        #expect(badCA.code == .invalidCertificate)
    }

    @Test func locatePrecedence() throws {
        let temporary = try KubeconfigTemporaryDirectory()
        defer { temporary.cleanup() }
        let home = temporary.url.appendingPathComponent("home", isDirectory: true)
        let work = temporary.url.appendingPathComponent("work", isDirectory: true)
        let local = work.appendingPathComponent(".steady/admin.kubeconfig")
        let kube = home.appendingPathComponent(".kube/config")
        var existing: Set<String> = [local.path, kube.path, "/etc/k2"]
        func locate(_ explicit: String?, _ environment: [String: String]) -> String? {
            Kubeconfig.locate(explicit: explicit, environment: environment, currentDirectory: work) {
                existing.contains($0)
            }?.path
        }
        let environment = ["HOME": home.path, "STEADY_KUBECONFIG": "/etc/steady", "KUBECONFIG": "/etc/k1:/etc/k2"]

        #expect(locate("/flag/config", environment) == "/flag/config")
        #expect(locate("relative/config", environment) == work.appendingPathComponent("relative/config").path)
        #expect(locate("~/x", environment) == home.appendingPathComponent("x").path)
        #expect(locate(nil, environment) == "/etc/steady")
        #expect(locate("", environment) == "/etc/steady")
        var withoutSteady = environment
        withoutSteady["STEADY_KUBECONFIG"] = nil
        #expect(locate(nil, withoutSteady) == "/etc/k2")
        withoutSteady["KUBECONFIG"] = "/missing/a::/missing/b"
        #expect(locate(nil, withoutSteady) == "/missing/a")
        withoutSteady["KUBECONFIG"] = nil
        #expect(locate(nil, withoutSteady) == local.path)
        existing.remove(local.path)
        #expect(locate(nil, withoutSteady) == kube.path)
        existing.remove(kube.path)
        #expect(locate(nil, withoutSteady) == nil)
    }

    @Test func locateChecksTheRealFileSystemByDefault() throws {
        let temporary = try KubeconfigTemporaryDirectory()
        defer { temporary.cleanup() }
        let local = temporary.url.appendingPathComponent(".steady/admin.kubeconfig")
        let environment = ["HOME": temporary.url.appendingPathComponent("nohome").path]
        #expect(Kubeconfig.locate(explicit: nil, environment: environment, currentDirectory: temporary.url) == nil)
        try Kubeconfig.make(server: "https://x", caPEM: fixtureCAPEM, token: "t").write(to: local)
        #expect(
            Kubeconfig.locate(explicit: nil, environment: environment, currentDirectory: temporary.url)?.path
                == local.path
        )
    }
}
