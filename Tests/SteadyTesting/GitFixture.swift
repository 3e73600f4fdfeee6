import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A Git repository for end-to-end tests: a working copy whose commits are pushed to a bare repository, which
/// the controller reads through `file://`, `git daemon` (`git://`), smart HTTP with basic or bearer authentication
/// (`git http-backend` behind a small Python server) or `sshd`, all on loopback and started by the test.
public final class GitFixture: @unchecked Sendable {
    // Only the test that owns it touches it, one call at a time.
    public let root: TemporaryDirectory
    public var work: URL { root.file("work") }
    /// The bare repository, `repos/fleet.git`.
    public var bare: URL { root.file("repos/fleet.git") }
    private var servers: [Int32] = []

    public init() throws {
        root = try TemporaryDirectory(prefix: "steady-git")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try git(["init", "--quiet", "--bare", "--initial-branch=main", bare.path], in: root.url)
        try git(["init", "--quiet", "--initial-branch=main"], in: work)
        try git(["config", "user.email", "test@steady.dev"], in: work)
        try git(["config", "user.name", "steady test"], in: work)
        try git(["remote", "add", "origin", bare.path], in: work)
    }

    /// `file:///…/repos/fleet.git`.
    public var fileURL: String { "file://\(bare.path)" }

    /// Runs git with a private HOME and no system configuration; throws when it fails.
    @discardableResult
    public func git(_ arguments: [String], in directory: URL? = nil) throws -> String {
        let result = try CommandResult.run(
            "/usr/bin/git", ["-C", (directory ?? work).path] + arguments,
            environment: ["HOME": root.path, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"])
        guard result.status == 0 else {
            throw ControllerProcessError(message: "git \(arguments.joined(separator: " ")): \(result)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes a file of the working copy.
    public func write(_ text: String, to path: String) throws {
        let url = work.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// Removes a file or directory of the working copy.
    public func remove(_ path: String) throws {
        try FileManager.default.removeItem(at: work.appendingPathComponent(path))
    }

    /// Commits everything and pushes `main` (and tags); returns the commit's SHA-1.
    @discardableResult
    public func commit(_ message: String) throws -> String {
        try git(["add", "-A"])
        try git(["commit", "--quiet", "--allow-empty", "-m", message])
        try git(["push", "--quiet", "--tags", "origin", "main"])
        return try git(["rev-parse", "HEAD"])
    }

    /// Tags HEAD (annotated) and pushes the tag.
    public func tag(_ name: String) throws {
        try git(["tag", "-a", "-m", name, name])
        try git(["push", "--quiet", "origin", name])
    }

    /// Starts `git daemon` on a free loopback port; returns `git://127.0.0.1:PORT/fleet.git`.
    public func startDaemon() throws -> String {
        let port = try Self.freePort()
        try start(
            try git(["--exec-path"]) + "/git-daemon",
            [
                "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)",
                "--base-path=\(root.file("repos").path)", root.file("repos").path,
            ])
        try Self.waitForPort(port)
        return "git://127.0.0.1:\(port)/fleet.git"
    }

    /// Starts `git http-backend` behind a Python HTTP server that asks for basic authentication
    /// (`username`:`password`); returns `http://127.0.0.1:PORT/fleet.git`. Every request's Authorization header
    /// is logged to `http.log`.
    public func startHTTP(username: String, password: String) throws -> String {
        try startHTTP(authorization: "Basic " + Data("\(username):\(password)".utf8).base64EncodedString())
    }

    /// Starts `git http-backend` behind a Python HTTP server that wants `Authorization: Bearer TOKEN`; returns
    /// `http://127.0.0.1:PORT/fleet.git`.
    public func startHTTP(bearerToken: String) throws -> String {
        try startHTTP(authorization: "Bearer \(bearerToken)")
    }

    /// Starts the smart-HTTP server answering 401 to any request whose Authorization header is not
    /// `authorization`.
    private func startHTTP(authorization: String) throws -> String {
        let port = try Self.freePort()
        let script = root.file("git-http.py")
        try Self.httpServer.write(to: script, atomically: true, encoding: .utf8)
        try start(
            "/usr/bin/python3",
            [script.path, String(port), root.file("repos").path, authorization, root.file("http.log").path])
        try Self.waitForPort(port)
        return "http://127.0.0.1:\(port)/fleet.git"
    }

    /// Why `sshd` cannot serve the tests here, or nil when it can: it must be installed (Debian's
    /// `openssh-server`), with `ssh-keygen`, and the tests must run as root (sshd logs in as the user that runs it,
    /// and a root sshd needs its privilege separation directory, `/run/sshd`, which the fixture makes).
    public static var sshUnavailableReason: String? {
        let fileManager = FileManager.default
        guard fileManager.isExecutableFile(atPath: sshd) else {
            return "no \(sshd) (install Debian's openssh-server to run the SSH end-to-end tests)"
        }
        guard fileManager.isExecutableFile(atPath: sshKeygen) else { return "no \(sshKeygen)" }
        guard getuid() == 0 else { return "sshd serves the tests as root only; these tests run as uid \(getuid())" }
        return nil
    }

    static let sshd = "/usr/sbin/sshd"
    static let sshKeygen = "/usr/bin/ssh-keygen"

    /// An `sshd` serving the bare repository, with what a GitRepository's Secret needs to reach it.
    public struct SSHServer: Sendable {
        /// `ssh://root@127.0.0.1:PORT/…/repos/fleet.git`.
        public var url: String
        /// The client's private key (OpenSSH format), the Secret's `identity`.
        public var identity: String
        /// `[127.0.0.1]:PORT ssh-ed25519 …`: the server's host key, the Secret's `knownHosts`.
        public var knownHosts: String
        /// A known_hosts line for the same host with another key: a host key mismatch.
        public var wrongKnownHosts: String
    }

    /// Starts `sshd -D -e` on a free loopback port as root, with a host key, a client key and an
    /// authorized_keys file made in the fixture's directory (no PAM, no passwords, no StrictModes). `remove()`
    /// stops it.
    public func startSSH() throws -> SSHServer {
        if let reason = Self.sshUnavailableReason { throw ControllerProcessError(message: reason) }
        let fileManager = FileManager.default
        let directory = root.file("ssh")
        try fileManager.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if !fileManager.fileExists(atPath: "/run/sshd") {
            try fileManager.createDirectory(
                atPath: "/run/sshd", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        func file(_ name: String) -> String { directory.appendingPathComponent(name).path }
        func read(_ name: String) throws -> String { try String(contentsOfFile: file(name), encoding: .utf8) }
        for name in ["host", "client", "other"] {
            let made = try CommandResult.run(
                Self.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-C", "steady-test-\(name)", "-f", file(name)])
            guard made.status == 0 else { throw ControllerProcessError(message: "ssh-keygen: \(made)") }
        }
        try read("client.pub").write(toFile: file("authorized_keys"), atomically: true, encoding: .utf8)
        let port = try Self.freePort()
        let config = """
            ListenAddress 127.0.0.1
            HostKey \(file("host"))
            PidFile \(file("sshd.pid"))
            AuthorizedKeysFile \(file("authorized_keys"))
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            StrictModes no
            UsePAM no

            """
        try config.write(toFile: file("sshd_config"), atomically: true, encoding: .utf8)
        try start(Self.sshd, ["-D", "-e", "-f", file("sshd_config"), "-p", String(port)])
        try Self.waitForPort(port)
        func hostLine(_ name: String) throws -> String {
            "[127.0.0.1]:\(port) " + (try read("\(name).pub").split(separator: " ").prefix(2).joined(separator: " "))
                + "\n"
        }
        return SSHServer(
            url: "ssh://root@127.0.0.1:\(port)\(bare.path)", identity: try read("client"),
            knownHosts: try hostLine("host"), wrongKnownHosts: try hostLine("other"))
    }

    /// What the HTTP server logged.
    public var httpLog: String { (try? String(contentsOf: root.file("http.log"), encoding: .utf8)) ?? "" }

    /// A loopback port that accepts connections and never answers: `git://127.0.0.1:PORT/fleet.git`.
    public func startSilentServer() throws -> String {
        let port = try Self.freePort()
        try start(
            "/usr/bin/python3",
            ["-c",
             "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                + "s.bind(('127.0.0.1',\(port)))\ns.listen(16)\nc=[]\nwhile True:\n c.append(s.accept())\n"])
        try Self.waitForPort(port)
        return "git://127.0.0.1:\(port)/fleet.git"
    }

    /// Starts a server with posix_spawn, in a session of its own, output appended to `servers.log`. Not through
    /// Foundation's Process: a server outlives the calls that wait for Foundation's children, and Foundation's
    /// reaping must not wait on it.
    private func start(_ program: String, _ arguments: [String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let log = root.file("servers.log").path
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, 0x80)  // POSIX_SPAWN_SETSID (glibc), not imported into Swift
        let environment = ProcessInfo.processInfo.environment.merging(["HOME": root.path]) { $1 }
            .map { "\($0.key)=\($0.value)" }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard status == 0 else { throw ControllerProcessError(message: "cannot start \(program): error \(status)") }
        servers.append(pid)
    }

    /// What the servers printed (sshd's log among it).
    public var serversLog: String { (try? String(contentsOf: root.file("servers.log"), encoding: .utf8)) ?? "" }

    /// Stops the servers, each with its process group (its children with it), and deletes everything.
    public func remove() {
        for server in servers {
            kill(-server, SIGKILL)
            kill(server, SIGKILL)
            var status: Int32 = 0
            waitpid(server, &status, 0)
        }
        servers = []
        root.remove()
    }

    /// A port nothing listens on now (bound to 0, read, closed).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw ControllerProcessError(message: "cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until something accepts connections on the port.
    static func waitForPort(_ port: Int) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let descriptor = LoopbackSocket.connect(port: port) {
                close(descriptor)
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ControllerProcessError(message: "nothing listens on port \(port)")
    }

    /// A smart-HTTP server: one expected Authorization header (basic or bearer), then `git http-backend` as a CGI.
    static let httpServer = #"""
        import http.server, os, subprocess, sys
        port, root, expected, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_any(self):
                with open(log, "a") as f:
                    f.write("%s %s auth=%s\n" % (self.command, self.path, self.headers.get("Authorization", "")))
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", expected.split(" ")[0] + ' realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                           QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_USER="user",
                           CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)),
                           GIT_PROTOCOL=self.headers.get("Git-Protocol", ""))
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers.get("Content-Encoding")
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.split(b"\r\n"):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = handle_any
            do_POST = handle_any
            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """#
}
