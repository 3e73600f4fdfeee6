import Foundation
import Resources

/// The credentials of one git command, made from the repository's Secret: never in argv, in the URL or in logs.
///
/// - HTTPS user and password: an askpass script in a 0700 directory reading 0600 files (`GIT_ASKPASS`).
/// - HTTPS bearer token: an `http.extraHeader` given through git's environment configuration.
/// - SSH: the key in a 0600 file in a 0700 directory, with `StrictHostKeyChecking=yes` against the given
///   `knownHosts` only.
///
/// ``remove()`` deletes the files; call it when the command is done.
struct GitCredentials: Sendable {
    /// Variables added to git's environment.
    var environment: [String: String] = [:]
    /// The secret values, scrubbed from everything git prints.
    var secrets: [String] = []
    /// The temporary directory holding the files, if any.
    var directory: URL?

    /// No credentials.
    static let none = GitCredentials()

    /// Makes the credentials for `url` from the Secret's keys (`username`/`password`, `bearerToken`, or
    /// `identity` and `knownHosts`), in a new directory under `parent`.
    static func make(url: String, secret: [String: String], parent: URL) throws(GitFailure) -> GitCredentials {
        var credentials = GitCredentials()
        let isSSH = url.hasPrefix("ssh://") || (url.contains("@") && !url.contains("://"))
        let fileManager = FileManager.default
        func makeDirectory() throws(GitFailure) -> URL {
            if let directory = credentials.directory { return directory }
            let directory = parent.appendingPathComponent("credentials-\(UUID().uuidString)")
            do {
                try fileManager.createDirectory(
                    at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw GitFailure(reason: .fetchFailed, message: "cannot create a directory for credentials: \(error)")
            }
            credentials.directory = directory
            return directory
        }
        func write(_ text: String, _ name: String, mode: Int = 0o600) throws(GitFailure) -> String {
            let path = try makeDirectory().appendingPathComponent(name).path
            guard fileManager.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode])
            else { throw GitFailure(reason: .fetchFailed, message: "cannot write the credentials file \(name)") }
            return path
        }
        if isSSH {
            guard let identity = secret["identity"], let knownHosts = secret["knownHosts"] else {
                throw GitFailure(
                    reason: .invalidSecret,
                    message: "an ssh:// URL needs the keys identity and knownHosts in the secretRef Secret")
            }
            let key = try write(identity.hasSuffix("\n") ? identity : identity + "\n", "identity")
            let hosts = try write(knownHosts, "known_hosts")
            credentials.environment["GIT_SSH_COMMAND"] =
                "ssh -F /dev/null -i \(key) -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes "
                + "-o UserKnownHostsFile=\(hosts) -o GlobalKnownHostsFile=/dev/null"
            // The whole key, and each line of its body on its own (a tool may print one line of it).
            credentials.secrets.append(identity)
            credentials.secrets += identity.split(separator: "\n").map(String.init)
                .filter { $0.count >= 16 && !$0.hasPrefix("-----") }
        } else if let token = secret["bearerToken"] {
            credentials.environment["GIT_CONFIG_COUNT"] = "1"
            credentials.environment["GIT_CONFIG_KEY_0"] = "http.extraHeader"
            credentials.environment["GIT_CONFIG_VALUE_0"] = "Authorization: Bearer \(token)"
            credentials.secrets.append(token)
        } else if let username = secret["username"], let password = secret["password"] {
            _ = try write(username, "username")
            _ = try write(password, "password")
            let script = """
                #!/bin/sh
                case "$1" in
                Username*) cat "$(dirname "$0")/username" ;;
                *) cat "$(dirname "$0")/password" ;;
                esac

                """
            credentials.environment["GIT_ASKPASS"] = try write(script, "askpass", mode: 0o700)
            credentials.secrets += [password]
        } else if !secret.isEmpty {
            throw GitFailure(
                reason: .invalidSecret,
                message: "the secretRef Secret needs username and password, bearerToken, or identity and knownHosts")
        }
        return credentials
    }

    /// `text` with every secret value, and any password in a URL, replaced by `***`.
    func scrub(_ text: String) -> String {
        var scrubbed = text
        for secret in secrets where secret.count >= 3 {
            scrubbed = scrubbed.replacingOccurrences(of: secret, with: "***")
        }
        return Self.scrubURLPasswords(scrubbed)
    }

    /// `https://user:pass@host` → `https://user:***@host`.
    static func scrubURLPasswords(_ text: String) -> String {
        guard let pattern = try? NSRegularExpression(pattern: "(://[^/\\s:@]+):[^/\\s@]+@") else { return text }
        let range = NSRange(text.startIndex..., in: text)
        return pattern.stringByReplacingMatches(in: text, range: range, withTemplate: "$1:***@")
    }

    /// Deletes the credentials' files.
    func remove() {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }
}
