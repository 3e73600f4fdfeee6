import Crypto
import Foundation
import TLSSupport

/// Checks that a webhook request was sent by someone who knows the repository's webhook token, in one of the
/// forms Git hosts use:
/// - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`;
/// - GitLab: `X-Gitlab-Token: <token>`;
/// - any other sender: `X-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
///
/// Comparisons take the same time whatever the bytes, so the signature cannot be guessed byte by byte.
enum GitWebhookSignature {
    static let githubHeader = "X-Hub-Signature-256"
    static let gitlabHeader = "X-Gitlab-Token"
    static let genericHeader = "X-Signature-256"

    /// Whether one of the headers authenticates `body` with `token`; `header` looks a header up by name.
    static func isValid(body: Data, token: String, header: (String) -> String?) -> Bool {
        guard !token.isEmpty else { return false }
        if let sent = header(gitlabHeader) {
            return constantTimeEqual(Array(sent.utf8), Array(token.utf8))
        }
        for name in [githubHeader, genericHeader] {
            guard let sent = header(name) else { continue }
            return constantTimeEqual(Array(sent.utf8), Array(signature(of: body, token: token).utf8))
        }
        return false
    }

    /// `sha256=<hex>` of the body.
    static func signature(of body: Data, token: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(token.utf8)))
        return "sha256=" + Hex.encode(Data(mac))
    }

    private static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(left, right) { difference |= a ^ b }
        return difference == 0
    }
}
