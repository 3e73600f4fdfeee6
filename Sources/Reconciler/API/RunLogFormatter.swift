import Resources

/// Turns RemoteRun output into the `text/plain` lines of the `log` subresource.
///
/// Bytes are cut into lines per runner and stream, so that interleaved chunks never mix inside a line:
/// - with every runner shown, a stdout line is `runner | line` and a stderr line `runner (stderr) | line`;
/// - with one runner (`?runner=`), a stdout line has no prefix and a stderr line is `(stderr) | line`;
/// - where a runner's middle output was dropped, a line `--- N bytes of output dropped ---` (prefixed as its
///   stdout lines) stands between the head and the tail.
///
/// A line longer than ``maximumLineLength`` is cut there, so a process writing no newline costs bounded memory.
/// A value with no I/O.
struct RunLogFormatter {
    /// The longest line kept whole before it is cut.
    static let maximumLineLength = 64 * 1024

    /// Whether lines carry the runner's name.
    let showsRunner: Bool
    private var partial: [Key: [UInt8]] = [:]

    private struct Key: Hashable {
        var runner: String
        var stream: RunOutputStream
    }

    init(showsRunner: Bool) {
        self.showsRunner = showsRunner
    }

    /// The prefix of one line of `runner`'s `stream`.
    func prefix(runner: String, stream: RunOutputStream) -> String {
        switch (showsRunner, stream) {
        case (true, .stdout): "\(runner) | "
        case (true, .stderr): "\(runner) (stderr) | "
        case (false, .stdout): ""
        case (false, .stderr): "(stderr) | "
        }
    }

    /// The whole lines `bytes` completes; the rest waits for its newline.
    mutating func feed(runner: String, stream: RunOutputStream, bytes: [UInt8]) -> [UInt8] {
        let key = Key(runner: runner, stream: stream)
        var pending = partial.removeValue(forKey: key) ?? []
        var result: [UInt8] = []
        let linePrefix = Array(prefix(runner: runner, stream: stream).utf8)
        for byte in bytes {
            pending.append(byte)
            if byte == 0x0A || pending.count >= Self.maximumLineLength {
                result += linePrefix + pending
                if byte != 0x0A { result.append(0x0A) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        if !pending.isEmpty { partial[key] = pending }
        return result
    }

    /// The note for `bytes` dropped from `runner`'s middle, after its unfinished lines.
    mutating func dropped(runner: String, bytes: Int64) -> [UInt8] {
        flush(runner: runner)
            + Array("\(prefix(runner: runner, stream: .stdout))--- \(bytes) bytes of output dropped ---\n".utf8)
    }

    /// The unfinished lines of `runner` (of every runner when nil), ended with a newline.
    mutating func flush(runner: String? = nil) -> [UInt8] {
        var result: [UInt8] = []
        for key in partial.keys.sorted(by: { ($0.runner, $0.stream.rawValue) < ($1.runner, $1.stream.rawValue) })
        where runner == nil || key.runner == runner {
            result += Array(prefix(runner: key.runner, stream: key.stream).utf8) + (partial[key] ?? []) + [0x0A]
            partial[key] = nil
        }
        return result
    }

    /// The lines an event completes: output, or the note of a dropped middle.
    mutating func format(_ event: RunOutputStore.FollowEvent) -> [UInt8] {
        switch event {
        case .output(let runner, let stream, let bytes): feed(runner: runner, stream: stream, bytes: bytes)
        case .dropped(let runner, let bytes): dropped(runner: runner, bytes: bytes)
        }
    }

    /// Stored output of several runners, one after the other, as the complete text.
    static func text(of outputs: [RunOutputStore.RunnerOutput], showsRunner: Bool) -> [UInt8] {
        var formatter = RunLogFormatter(showsRunner: showsRunner)
        var result: [UInt8] = []
        for output in outputs {
            for event in output.events { result += formatter.format(event) }
            result += formatter.flush(runner: output.runner)
        }
        return result
    }
}
