/// One complete SMTP reply: a three-digit code and its text lines (RFC 5321 §4.2).
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    /// The text of each line, without the code and separator.
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// 2xx: the command succeeded.
    public var isPositiveCompletion: Bool { (200..<300).contains(code) }
    /// 3xx: the server waits for more (DATA's 354, AUTH's 334).
    public var isIntermediate: Bool { (300..<400).contains(code) }

    /// `250 first line / second line`, as errors quote it.
    public var description: String { "\(code) " + lines.joined(separator: " / ") }

    /// The EHLO keywords (upper-cased) and their parameters, from every line after the greeting line.
    public var extensions: [String: [String]] {
        var result: [String: [String]] = [:]
        for line in lines.dropFirst() {
            let words = line.split(separator: " ").map(String.init)
            guard let keyword = words.first else { continue }
            result[keyword.uppercased()] = Array(words.dropFirst())
        }
        return result
    }
}
