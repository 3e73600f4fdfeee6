import Foundation

/// Durations and ages written as kubectl writes them (`5s`, `3m20s`, `2h`, `4d`, `2y`).
public enum HumanDuration {
    /// kubectl's `HumanDuration`: seconds up to 2 minutes, then minutes (with seconds under 10 minutes), hours
    /// (with minutes under 8 hours), days (with hours under 8 days) and years.
    public static func format(seconds: Double) -> String {
        let total = Int(seconds.rounded(.down))
        if total < -1 { return "<invalid>" }
        if total < 0 { return "0s" }
        if total < 120 { return "\(total)s" }
        let minutes = total / 60
        if minutes < 10 {
            let rest = total % 60
            return rest == 0 ? "\(minutes)m" : "\(minutes)m\(rest)s"
        }
        if minutes < 60 * 3 { return "\(minutes)m" }
        let hours = total / 3600
        if hours < 8 {
            let rest = minutes % 60
            return rest == 0 ? "\(hours)h" : "\(hours)h\(rest)m"
        }
        if hours < 48 { return "\(hours)h" }
        if hours < 24 * 8 {
            let rest = hours % 24
            return rest == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(rest)h"
        }
        if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
        if hours < 24 * 365 * 8 {
            let days = (hours / 24) % 365
            return days == 0 ? "\(hours / 24 / 365)y" : "\(hours / 24 / 365)y\(days)d"
        }
        return "\(hours / 24 / 365)y"
    }

    /// The age of an RFC 3339 timestamp at `now`, or `<unknown>` when it is missing or unreadable.
    public static func age(of timestamp: String?, now: Date = Date()) -> String {
        guard let timestamp, let date = Timestamp.parse(timestamp) ?? parseFractional(timestamp) else {
            return "<unknown>"
        }
        return format(seconds: now.timeIntervalSince(date))
    }

    private static func parseFractional(_ text: String) -> Date? {
        try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
