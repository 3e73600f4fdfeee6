import Foundation

/// A real single-member `etcd` on loopback ports, with its data in a temporary directory, for store tests.
///
/// Tests that need one call `EtcdServer.start()`; it returns nil (after printing why) when no `etcd` binary is
/// installed, so a developer without it sees the tests skipped rather than failed. CI installs `etcd-server`.
public final class EtcdServer: @unchecked Sendable {
    // Only the test that owns it touches it, one call at a time.
    public let directory: TemporaryDirectory
    /// The client port on 127.0.0.1.
    public let clientPort: Int
    private let peerPort: Int
    /// With certificates, etcd serves clients over TLS only and requires a client certificate its CA signed.
    public let tls: TestCertificates?
    private var process: Process?

    /// `HOST:PORT` of the client endpoint.
    public var endpoint: String { "127.0.0.1:\(clientPort)" }

    private init(directory: TemporaryDirectory, clientPort: Int, peerPort: Int, tls: TestCertificates?) {
        self.directory = directory
        self.clientPort = clientPort
        self.peerPort = peerPort
        self.tls = tls
    }

    /// The installed `etcd`, or nil.
    public static var binary: String? {
        Binaries.onPath("etcd") ?? (FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd") ? "/usr/bin/etcd" : nil)
    }

    /// Starts etcd and waits until its client port accepts connections; nil when etcd is not installed.
    /// - Parameter tls: Serve clients over TLS with these certificates (`--client-cert-auth`).
    public static func start(tls: TestCertificates? = nil) throws -> EtcdServer? {
        guard binary != nil else {
            print("skipped: no etcd binary on PATH (install Debian's etcd-server to run the etcd store tests)")
            return nil
        }
        let server = EtcdServer(
            directory: try TemporaryDirectory(prefix: "steady-etcd"), clientPort: try freePort(),
            peerPort: try freePort(), tls: tls)
        try server.start()
        return server
    }

    /// Starts (or starts again, on the same ports and data) the etcd process.
    public func start() throws {
        guard let binary = Self.binary else { throw ControllerProcessError(message: "etcd is not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        let client = "\(tls == nil ? "http" : "https")://127.0.0.1:\(clientPort)"
        let peer = "http://127.0.0.1:\(peerPort)"
        process.arguments = [
            "--name", "steady-test", "--data-dir", directory.file("data").path,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "steady-test=\(peer)", "--log-level", "error", "--logger", "zap",
        ]
        if let tls {
            process.arguments? += [
                "--cert-file", tls.serverCertificate, "--key-file", tls.serverKey, "--trusted-ca-file",
                tls.caCertificate, "--client-cert-auth",
            ]
        }
        let logFile = directory.file("etcd.log")
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: logFile)
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if Self.accepts(port: clientPort) && Self.healthy(port: clientPort, tls: tls) { return }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ControllerProcessError(message: "etcd did not start:\n\(self.log())")
    }

    /// Sends a signal (SIGKILL simulates a crash) and waits for etcd to end.
    public func stop(signal: Int32 = SIGTERM) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        self.process = nil
    }

    /// etcd's own log.
    public func log() -> String { (try? String(contentsOf: directory.file("etcd.log"), encoding: .utf8)) ?? "" }

    /// Stops etcd and deletes its data.
    public func remove() {
        stop(signal: SIGKILL)
        directory.remove()
    }

    /// Whether `GET /health` on the client port answers healthy.
    private static func healthy(port: Int, tls: TestCertificates?) -> Bool {
        let arguments =
            tls.map {
                [
                    "--cacert", $0.caCertificate, "--cert", $0.clientCertificate, "--key", $0.clientKey,
                    "https://127.0.0.1:\(port)/health",
                ]
            } ?? ["http://127.0.0.1:\(port)/health"]
        guard let result = try? CommandResult.run("/usr/bin/env", ["curl", "-sf"] + arguments),
            result.status == 0
        else {
            // Without curl, an accepting port is as close as we get; the store's first call retries.
            return Binaries.onPath("curl") == nil
        }
        return result.output.contains("true")
    }

    private static func accepts(port: Int) -> Bool {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// A port on 127.0.0.1 that nothing listens on at the time of the call.
    public static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw ControllerProcessError(message: "socket() failed: errno \(errno)") }
        defer { close(socket) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw ControllerProcessError(message: "bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The IPv4 socket address 127.0.0.1:`port`.
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
