import SteadyTesting
import TLSSupport
import Testing

@Suite(.timeLimit(.minutes(5))) struct PEMTests {
    /// OpenSSL wrote the fixture; re-encoding its DER must give the same text, 64-column lines and final newline.
    @Test func encodesAsOpenSSLDoes() throws {
        let der = try firstCertificateDER(pem: FixtureCA.pem)
        #expect(PEM.encode(der: der, label: "CERTIFICATE") == FixtureCA.pem)
        #expect(caHash(der: der) == FixtureCA.hash)
    }

    @Test func wrapsAtSixtyFourColumns() {
        let text = PEM.encode(der: Array(repeating: 0xAB, count: 96), label: "TEST")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first == "-----BEGIN TEST-----")
        #expect(lines.dropFirst().first?.count == 64)
        #expect(lines[2].count == 64)
        #expect(lines[3] == "-----END TEST-----")
        #expect(lines.last == "")
    }

    @Test func refusesTextWithoutACertificate() {
        let error = #expect(throws: CertificateError.self) { try firstCertificateDER(pem: "no certificate here") }
        #expect(error?.code == .invalidCertificate)
    }
}
