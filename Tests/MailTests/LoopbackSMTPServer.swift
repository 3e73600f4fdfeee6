import Foundation
import Reconciler
import SteadyTesting

/// An `aiosmtpd` server on a free loopback port, run by Tests/Fixtures/smtp_server.py, and what it received.
final class LoopbackSMTPServer: @unchecked Sendable {
    /// One message as the server received and Python's email parser decoded it.
    struct Received: Decodable {
        var mail_from: String
        var rcpt_tos: [String]
        var raw: String
        var subject: String
        var body: String
        var content_type: String
        var charset: String?
        var date: String
        var message_id: String
        var tls: Bool
        var authenticated: Bool
    }

    /// Why the servers cannot run here, or nil when python3 and aiosmtpd are installed.
    static let unavailableReason: String? = {
        let check = try? CommandResult.run("/usr/bin/env", ["python3", "-c", "import aiosmtpd"], timeout: .seconds(30))
        guard let check, check.status == 0 else {
            let reason =
                "skipping the SMTP server tests: python3 with aiosmtpd is missing "
                + "(python3 -m pip install aiosmtpd): \(check?.error ?? "python3 not found")"
            print(reason)
            return reason
        }
        return nil
    }()

    static var isAvailable: Bool { unavailableReason == nil }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/smtp_server.py").path

    let directory: TemporaryDirectory
    let port: Int
    /// The CA that issued the server's certificate, when it offers STARTTLS.
    let certificateAuthority: CertificateAuthority?
    private let process: Process
    private let input: Pipe

    /// Starts a server; with `tls`, it offers (and requires) STARTTLS with a certificate for 127.0.0.1. With
    /// `injecting`, a bare server that follows its 220 to STARTTLS with plaintext answers.
    ///
    /// The wait for the server runs on a thread of its own, not on the tests' cooperative threads.
    static func start(
        tls: Bool, user: String? = nil, password: String? = nil, reject: String? = nil, injecting: Bool = false
    ) async throws -> LoopbackSMTPServer {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result {
                        try LoopbackSMTPServer(
                            tls: tls, user: user, password: password, reject: reject, injecting: injecting)
                    })
            }
        }
    }

    private init(tls: Bool, user: String?, password: String?, reject: String?, injecting: Bool) throws {
        directory = try TemporaryDirectory(prefix: "steady-smtp")
        var arguments = [Self.script, "--out", directory.file("received.jsonl").path]
        if tls {
            let authority = try CertificateAuthority.create()
            let serving = try authority.issueServingCertificate(names: .loopback)
            try directory.write(serving.certificatePEM, to: "cert.pem")
            try directory.write(serving.privateKeyPEM, to: "key.pem")
            arguments += ["--cert", directory.file("cert.pem").path, "--key", directory.file("key.pem").path]
            certificateAuthority = authority
        } else {
            certificateAuthority = nil
        }
        if let user, let password { arguments += ["--user", user, "--password", password] }
        if let reject { arguments += ["--reject", reject] }
        if injecting { arguments.append("--inject") }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let output = Pipe()
        let errors = Pipe()
        input = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input
        try process.run()
        // The first line is `READY <port>`; end of file instead means the server could not start.
        var line: [UInt8] = []
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard let first = byte.first, first != 0x0A else { break }
            line.append(first)
        }
        let words = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard words.count == 2, words[0] == "READY", let port = Int(words[1]) else {
            process.terminate()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw ServerFailure(message: "the SMTP server did not start: \(message)")
        }
        self.port = port
    }

    struct ServerFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// The messages received so far.
    func received() throws -> [Received] {
        let file = directory.file("received.jsonl")
        guard FileManager.default.fileExists(atPath: file.path) else { return [] }
        return try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Received.self, from: Data($0.utf8))
        }
    }

    /// Stops the server (closing its standard input, on which it exits) and removes its files.
    func stop() {
        try? input.fileHandleForWriting.close()
        directory.remove()
    }
}
