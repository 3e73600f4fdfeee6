import Crypto
import Foundation
import NIOSSL

/// `sha256:` and the lowercase hex SHA-256 of `der`: the CA hash that join tokens carry (kubeadm's
/// `--discovery-token-ca-cert-hash` format).
public func caHash(der: [UInt8]) -> String {
    "sha256:" + Hex.encode(SHA256.hash(data: der))
}

/// The CA hash (see ``caHash(der:)``) of the first certificate in `pem`.
/// - Throws: ``CertificateError`` with code ``CertificateError/Code/invalidCertificate`` when `pem` is not valid
///   PEM or holds no certificate.
public func caHash(pem: String) throws(CertificateError) -> String {
    caHash(der: try firstCertificateDER(pem: pem))
}

/// Whether the first certificate in `pem` has the pinned hash `expected` (`sha256:<hex>`, hex in either case).
/// False when the PEM holds no certificate or `expected` is not in that form.
public func caHashMatches(pem: String, expected: String) -> Bool {
    let pinned = expected.trimmingCharacters(in: .whitespaces).lowercased()
    guard pinned.hasPrefix("sha256:"), pinned.utf8.count == 7 + 64 else { return false }
    guard let actual = try? caHash(pem: pem) else { return false }
    return actual == pinned
}

/// The DER bytes of the first certificate in `pem`.
/// - Throws: ``CertificateError`` with code ``CertificateError/Code/invalidCertificate`` when `pem` is not valid
///   PEM, holds no certificate, or the certificate cannot be encoded.
public func firstCertificateDER(pem: String) throws(CertificateError) -> [UInt8] {
    let certificates: [NIOSSLCertificate]
    do {
        certificates = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
    } catch {
        throw CertificateError(
            code: .invalidCertificate, message: "the CA certificate is not valid PEM", underlying: error)
    }
    guard let first = certificates.first else {
        throw CertificateError(code: .invalidCertificate, message: "the CA PEM holds no certificate")
    }
    do {
        return try first.toDERBytes()
    } catch {
        throw CertificateError(
            code: .invalidCertificate, message: "the CA certificate cannot be encoded", underlying: error)
    }
}
