import Foundation

/// Removes a password, in clear and in the base64 forms AUTH sends it, from text quoted in errors and logs.
struct SMTPRedactor: Sendable {
    private let secrets: [String]

    init(credentials: SMTPCredentials?) {
        guard let credentials, !credentials.password.isEmpty else {
            secrets = []
            return
        }
        let password = credentials.password
        let plain = Data(([0] + Array(credentials.username.utf8) + [0] + Array(password.utf8))).base64EncodedString()
        // Longest first, so that a secret inside another is not left half-replaced.
        secrets = [plain, Data(password.utf8).base64EncodedString(), password].sorted { $0.count > $1.count }
    }

    func scrub(_ text: String) -> String {
        secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "<redacted>") }
    }
}
