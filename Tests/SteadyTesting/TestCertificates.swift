import Foundation

/// A throwaway CA with a serving certificate for 127.0.0.1 and a client certificate, made with `openssl` in a
/// directory of its own, for tests of TLS to a real server (etcd with `--client-cert-auth`).
public struct TestCertificates: Sendable {
    public let directory: TemporaryDirectory
    public var caCertificate: String { directory.file("ca.crt").path }
    public var serverCertificate: String { directory.file("server.crt").path }
    public var serverKey: String { directory.file("server.key").path }
    public var clientCertificate: String { directory.file("client.crt").path }
    public var clientKey: String { directory.file("client.key").path }

    /// Makes the CA (`commonName`) and its two certificates; throws with openssl's output when a step fails.
    public init(commonName: String = "steady-test-ca") throws {
        directory = try TemporaryDirectory(prefix: "steady-certs")
        let file = { [directory] (name: String) in directory.file(name).path }
        let newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try Self.openssl(
            ["req", "-x509"] + newKey
                + ["-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "2", "-subj", "/CN=\(commonName)"])
        try directory.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", to: "server.ext")
        try directory.write("extendedKeyUsage=clientAuth\n", to: "client.ext")
        for name in ["server", "client"] {
            try Self.openssl(
                ["req"] + newKey
                    + ["-keyout", file("\(name).key"), "-out", file("\(name).csr"), "-subj", "/CN=steady-\(name)"])
            try Self.openssl([
                "x509", "-req", "-in", file("\(name).csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
                "-CAcreateserial", "-out", file("\(name).crt"), "-days", "2", "-extfile", file("\(name).ext"),
            ])
        }
    }

    public func remove() { directory.remove() }

    private static func openssl(_ arguments: [String]) throws {
        let result = try CommandResult.run("/usr/bin/env", ["openssl"] + arguments)
        guard result.status == 0 else {
            throw ControllerProcessError(message: "openssl \(arguments.joined(separator: " ")): \(result)")
        }
    }
}
