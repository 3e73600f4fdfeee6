/// Assembles SMTP replies from the bytes a server sends: lines ended by CRLF (a bare LF is accepted), `250-` for
/// a line that continues the reply and `250 ` (or a bare `250`) for its last line.
///
/// A value type fed by the connection; it holds at most one line and one reply under construction, both bounded.
public struct SMTPReplyParser: Sendable {
    /// What makes the server's bytes not an SMTP reply.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The longest line accepted, in bytes (RFC 5321 allows 512; servers print longer texts).
    public static let maximumLineLength = 4096
    /// The most lines in one reply.
    public static let maximumLines = 256

    private var pending: [UInt8] = []
    private var lines: [String] = []
    private var code: Int?
    private var ready: [SMTPReply] = []
    private var failure: Failure?

    public init() {}

    /// Adds bytes read from the server.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        guard failure == nil else { return }
        for byte in bytes {
            if byte == 0x0A {
                var line = pending
                if line.last == 0x0D { line.removeLast() }
                pending.removeAll(keepingCapacity: true)
                take(line)
                if failure != nil { return }
            } else {
                pending.append(byte)
                if pending.count > Self.maximumLineLength {
                    failure = Failure(message: "a reply line is longer than \(Self.maximumLineLength) bytes")
                    return
                }
            }
        }
    }

    /// Whether bytes beyond the replies taken with ``next()`` have arrived: after STARTTLS's 220 there must be
    /// none, or they could be plaintext injected to pass for answers given under TLS.
    public var hasPendingInput: Bool { !pending.isEmpty || !lines.isEmpty || !ready.isEmpty }

    /// The next complete reply, if one has arrived.
    /// - Throws: ``Failure`` when the server sent something that is not a reply.
    public mutating func next() throws(Failure) -> SMTPReply? {
        if !ready.isEmpty { return ready.removeFirst() }
        if let failure { throw failure }
        return nil
    }

    private mutating func take(_ line: [UInt8]) {
        let digits = line.prefix(3)
        guard digits.count == 3, digits.allSatisfy({ (0x30...0x39).contains($0) }),
            (0x32...0x35).contains(line[0])
        else {
            failure = Failure(message: "malformed reply line \"\(Self.printable(line))\": expected a 3-digit code")
            return
        }
        let lineCode = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        let separator = line.count > 3 ? line[3] : 0x20
        guard separator == 0x20 || separator == 0x2D else {
            failure = Failure(
                message: "malformed reply line \"\(Self.printable(line))\": expected a space or - after the code")
            return
        }
        if let code, code != lineCode {
            failure = Failure(message: "a multi-line reply changed its code from \(code) to \(lineCode)")
            return
        }
        code = lineCode
        lines.append(String(decoding: line.dropFirst(4), as: UTF8.self))
        if separator == 0x20 {
            ready.append(SMTPReply(code: lineCode, lines: lines))
            lines = []
            code = nil
        } else if lines.count >= Self.maximumLines {
            failure = Failure(message: "a reply has more than \(Self.maximumLines) lines")
        }
    }

    /// The line with control characters shown as `?`, cut to 80 characters, for error messages.
    private static func printable(_ line: [UInt8]) -> String {
        String(String(decoding: line.prefix(80).map { $0 < 0x20 || $0 == 0x7F ? 0x3F : $0 }, as: UTF8.self))
    }
}
