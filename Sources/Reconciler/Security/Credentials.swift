import Crypto
import Foundation
import TLSSupport

/// The SHA-256 digest of a bearer token, in lowercase hex: what the controller keeps instead of the token itself.
///
/// Compare digests with ``matches(_:)`` or ``==``; both run in time independent of where the digests differ.
public struct TokenDigest: Hashable, Sendable, CustomStringConvertible {
    /// 64 lowercase hex characters.
    public let hex: String

    /// The digest of `token`.
    public init(token: String) {
        self.hex = Credentials.digest(token)
    }

    /// A digest read back from storage; nil unless `hex` is 64 hex characters (either case).
    public init?(hex: String) {
        let lowered = hex.lowercased()
        guard lowered.utf8.count == 64, lowered.utf8.allSatisfy(Hex.isDigit) else { return nil }
        self.hex = lowered
    }

    /// Whether `token` hashes to this digest, compared in constant time.
    public func matches(_ token: String) -> Bool {
        Credentials.constantTimeEquals(hex, Credentials.digest(token))
    }

    /// Constant-time equality of two digests.
    public static func == (lhs: TokenDigest, rhs: TokenDigest) -> Bool {
        Credentials.constantTimeEquals(lhs.hex, rhs.hex)
    }

    /// Hashes the digest (already uniformly distributed) for use in sets and dictionaries.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(hex)
    }

    /// A short prefix of the digest, safe to log to tell credentials apart.
    public var description: String { "sha256:\(hex.prefix(12))…" }
}

/// Bearer-token helpers: random token generation, hashing and constant-time comparison.
///
/// Tokens are compared by digest so that stored credentials need not be the tokens themselves, and so the
/// comparison does not leak through timing how much of a guess was right.
public enum Credentials {
    /// A new random token: `bytes` bytes from the system's cryptographic random source, as lowercase hex
    /// (`2 * bytes` characters).
    public static func makeToken(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<max(bytes, 0)).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// The SHA-256 of the token's UTF-8 bytes in lowercase hex (64 characters).
    public static func digest(_ token: String) -> String {
        Hex.encode(SHA256.hash(data: Array(token.utf8)))
    }

    /// Whether two strings are byte-for-byte equal, in time that depends only on their lengths.
    ///
    /// Meant for digests, whose length is public; comparing digests rather than raw tokens keeps token lengths
    /// private too.
    public static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices {
            difference |= left[index] ^ right[index]
        }
        return difference == 0
    }

    /// Whether `token` hashes to `digest` (hex, either case), compared in constant time.
    public static func verify(token: String, digest: String) -> Bool {
        constantTimeEquals(Self.digest(token), digest.lowercased())
    }

    /// The token from an HTTP `Authorization: Bearer <token>` header value, or nil when the header is not a
    /// bearer credential. The scheme is matched case-insensitively; surrounding whitespace is ignored.
    public static func bearerToken(fromAuthorization header: String) -> String? {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else { return nil }
        guard trimmed[..<space].lowercased() == "bearer" else { return nil }
        let token = trimmed[space...].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
