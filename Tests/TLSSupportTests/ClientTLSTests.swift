import NIOSSL
import SteadyTesting
import TLSSupport
import Testing

@Suite(.timeLimit(.minutes(5))) struct ClientTLSTests {
    @Test func trustsExactlyTheGivenCA() throws {
        let configuration = try makeClientTLSConfiguration(caPEM: FixtureCA.pem)
        #expect(configuration.certificateVerification == .fullVerification)
        #expect(configuration.minimumTLSVersion == .tlsv12)
        #expect(configuration.additionalTrustRoots.isEmpty)
        let expected = try NIOSSLCertificate.fromPEMBytes(Array(FixtureCA.pem.utf8))
        #expect(configuration.trustRoots == .certificates(expected))
    }

    @Test func usesTheSystemStoreWithoutACA() throws {
        let configuration = try makeClientTLSConfiguration(caPEM: nil)
        #expect(configuration.trustRoots == .default)
        #expect(configuration.certificateVerification == .fullVerification)
    }

    @Test func rejectsAnInvalidCA() throws {
        let error = try #require(throws: CertificateError.self) { try makeClientTLSConfiguration(caPEM: "nonsense") }
        #expect(error.code == .invalidCertificate)
    }

    @Test func caHashMatchesOpenSSL() throws {
        #expect(try caHash(pem: FixtureCA.pem) == FixtureCA.hash)
        #expect(caHashMatches(pem: FixtureCA.pem, expected: FixtureCA.hash))
        #expect(
            caHashMatches(
                pem: FixtureCA.pem,
                expected: FixtureCA.hash.uppercased().replacingOccurrences(of: "SHA256", with: "sha256")
            )
        )
        #expect(!caHashMatches(pem: FixtureCA.pem, expected: "sha256:" + String(repeating: "0", count: 64)))
        #expect(!caHashMatches(pem: FixtureCA.pem, expected: String(FixtureCA.hash.dropFirst(7))))
        #expect(!caHashMatches(pem: "junk", expected: FixtureCA.hash))
    }
}
