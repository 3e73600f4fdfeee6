/// A fixed CA certificate for tests that need real PEM: made once with OpenSSL, so its hash is known.
public enum FixtureCA {
    /// A self-signed P-256 CA made with `openssl req -x509`, and the SHA-256 of its DER computed by
    /// `openssl x509 -outform der | sha256sum`.
    public static let pem = """
        -----BEGIN CERTIFICATE-----
        MIIBgTCCASegAwIBAgIUHV99YPSye3qAIBZbii7nRiP+E4AwCgYIKoZIzj0EAwIw
        FTETMBEGA1UEAwwKZml4dHVyZS1jYTAgFw0yNjExMjMwOTE4NTZaGA8yMTI2MTAz
        MDA5MTg1NlowFTETMBEGA1UEAwwKZml4dHVyZS1jYTBZMBMGByqGSM49AgEGCCqG
        SM49AwEHA0IABC2o2cKWl0ak9zIdwZzWYPtgyKLzZ3T/SYBJMm3CYwVJpDbsXcE/
        ZE9O77cMI6w/XWe4wU1ygRPTDjYKA9ssE2ijUzBRMB0GA1UdDgQWBBSdkv0hsb2V
        nS5VetVWkdpreDHDcjAfBgNVHSMEGDAWgBSdkv0hsb2VnS5VetVWkdpreDHDcjAP
        BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDjhSfXv8YutU/1/btY
        URSGasgVKu2uWBLSHjHgs6cuZwIgK9CaMjX2J2gXDYOJ1dsFNryD6PEnmK5qW2eQ
        ZCjqf0g=
        -----END CERTIFICATE-----

        """
    public static let hash = "sha256:a8788aa39e4263e133afe0b1c463fe8a072e04cb286446f4aa83cbe72c789051"
}
