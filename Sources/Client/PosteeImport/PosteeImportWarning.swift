/// Something in a Postee configuration that `steady import postee` could not carry over as it was.
public struct PosteeImportWarning: Sendable, Equatable, CustomStringConvertible {
    /// The configuration file, as given.
    public var file: String
    /// The 1-based line of the construct, when known.
    public var line: Int?
    /// What the construct belongs to, such as `route "trivy-alpine"`.
    public var subject: String
    public var message: String

    public init(file: String, line: Int?, subject: String, message: String) {
        self.file = file
        self.line = line
        self.subject = subject
        self.message = message
    }

    /// `cfg.yaml:12: route "trivy-alpine": …`.
    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return "\(place): \(subject): \(message)"
    }
}
