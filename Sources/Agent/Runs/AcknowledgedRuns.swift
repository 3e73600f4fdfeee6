import Foundation
import Resources

/// The runs whose result the controller acknowledged, kept by ``RunLedger`` only so that a late or repeated request
/// for one is never started again: per run UID, the acknowledgement time and the final phase, nothing else (no
/// output, no message).
///
/// A UID in the canonical form of Kubernetes UIDs (a lowercase UUID) is kept as its 16 bytes; any other as text.
/// An entry costs about 40 bytes of memory, so the ``RunLedger/maximumAcknowledged`` bound is a few hundred
/// kilobytes at most.
struct AcknowledgedRuns: Sendable, Equatable {
    /// A run UID, compactly.
    enum Key: Hashable, Sendable {
        case uuid(UInt64, UInt64)
        case text(String)

        init(_ uid: String) {
            if uid.utf8.count == 36, let uuid = UUID(uuidString: uid), uuid.uuidString.lowercased() == uid {
                let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
                self = .uuid(Self.integer(bytes[0..<8]), Self.integer(bytes[8..<16]))
            } else {
                self = .text(uid)
            }
        }

        /// The UID as it was given.
        var uid: String {
            switch self {
            case .text(let text):
                return text
            case .uuid(let high, let low):
                var bytes = [UInt8](repeating: 0, count: 16)
                for index in 0..<8 {
                    bytes[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * index))
                    bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (56 - 8 * index))
                }
                let uuid = bytes.withUnsafeBytes { $0.loadUnaligned(as: uuid_t.self) }
                return UUID(uuid: uuid).uuidString.lowercased()
            }
        }

        private static func integer(_ bytes: ArraySlice<UInt8>) -> UInt64 {
            bytes.reduce(0) { $0 << 8 | UInt64($1) }
        }
    }

    /// What is kept of one acknowledged run.
    struct Entry: Sendable, Equatable {
        /// Seconds since 1970.
        var acknowledgedAt: UInt32
        var phase: RemoteRunSpec.Phase
    }

    private var entries: [Key: Entry] = [:]
    /// When expired entries were last looked for.
    private var lastExpiryScan: Date?

    var count: Int { entries.count }

    subscript(uid: String) -> Entry? { entries[Key(uid)] }

    /// Records `uid` as acknowledged at `time` with its final `phase`.
    mutating func insert(_ uid: String, at time: Date, phase: RemoteRunSpec.Phase) {
        entries[Key(uid)] = Entry(acknowledgedAt: Self.seconds(time), phase: phase)
    }

    /// Every entry with its UID, oldest first (to write the ledger anew).
    var all: [(uid: String, entry: Entry)] {
        entries.map { ($0.key.uid, $0.value) }.sorted { ($0.entry.acknowledgedAt, $0.uid) < ($1.entry.acknowledgedAt, $1.uid) }
    }

    /// Forgets entries acknowledged more than `retention` before `now` (looked for at most once an hour), and, once
    /// there are more than `maximum`, the oldest tenth of them (so the sort is not paid at every acknowledgement).
    /// Returns whether any was forgotten.
    @discardableResult
    mutating func prune(now: Date, retention: TimeInterval, maximum: Int) -> Bool {
        let before = entries.count
        if lastExpiryScan.map({ now.timeIntervalSince($0) >= 3600 || $0 > now }) ?? true {
            lastExpiryScan = now
            let oldest = Self.seconds(now.addingTimeInterval(-retention))
            entries = entries.filter { $0.value.acknowledgedAt >= oldest }
        }
        if entries.count > maximum {
            let excess = entries.sorted { $0.value.acknowledgedAt < $1.value.acknowledgedAt }
                .prefix(entries.count - maximum * 9 / 10)
            for (key, _) in excess { entries[key] = nil }
        }
        return entries.count < before
    }

    private static func seconds(_ time: Date) -> UInt32 {
        UInt32(clamping: Int64(time.timeIntervalSince1970.rounded(.down)))
    }
}
