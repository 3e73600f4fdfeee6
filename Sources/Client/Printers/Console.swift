import Foundation

/// Where commands write: results to standard output, errors and notes to standard error.
public enum Console {
    /// Writes a line to standard output.
    public static func out(_ text: String) {
        write(text + "\n")
    }

    /// Writes text to standard output as is, at once: watches and progress must reach pipes as they happen.
    public static func write(_ text: String) {
        print(text, terminator: "")
        fflush(nil)
    }

    /// Writes a line to standard error.
    public static func error(_ text: String) {
        // Standard output is buffered; flush it so that what was printed before appears before the error.
        fflush(nil)
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// The line that reports `error` to a user: kubectl's `Error from server (Reason): ...` for errors from the
    /// server, `error: ...` for everything else.
    public static func message(for error: any Error) -> String {
        if let error = error as? APIClientError, error.code == .server {
            return error.description
        }
        return "error: \(error)"
    }
}
