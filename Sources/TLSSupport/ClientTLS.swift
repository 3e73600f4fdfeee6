import NIOSSL

/// Client TLS for talking to the controller: TLS 1.2 or later and full certificate verification (chain and host
/// name).
///
/// When `caPEM` is given, exactly the certificates in it are trusted, not the system store; otherwise the system's
/// default trust store is used.
/// - Throws: ``CertificateError`` with code ``CertificateError/Code/invalidCertificate`` when `caPEM` holds no
///   valid certificate.
public func makeClientTLSConfiguration(caPEM: String?) throws(CertificateError) -> TLSConfiguration {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.minimumTLSVersion = .tlsv12
    configuration.certificateVerification = .fullVerification
    if let caPEM {
        let roots: [NIOSSLCertificate]
        do {
            roots = try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8))
        } catch {
            throw CertificateError(
                code: .invalidCertificate, message: "the CA certificate to trust is not valid PEM", underlying: error)
        }
        guard !roots.isEmpty else {
            throw CertificateError(code: .invalidCertificate, message: "the CA PEM to trust holds no certificate")
        }
        configuration.trustRoots = .certificates(roots)
        configuration.additionalTrustRoots = []
    } else {
        configuration.trustRoots = .default
    }
    return configuration
}
