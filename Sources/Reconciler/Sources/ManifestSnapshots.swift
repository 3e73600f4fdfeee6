import Crypto
import Foundation
import Resources
import Synchronization

/// What each source last applied in full, file by file: the digest of each file's text and the objects validated
/// from it. A sync of a new tree parses and validates only the files whose digest changed, reuses the objects of
/// the others, and sends only the changed files' objects (``ManifestSync``).
///
/// Kept in memory only: after a restart, or for a forced sync, the whole tree is validated and applied.
final class ManifestSnapshots: Sendable {
    /// One file of a tree.
    struct File: Sendable {
        var digest: SHA256.Digest
        var objects: [ManifestObject]
    }

    /// The files of one applied tree, by path as shown in errors.
    typealias Snapshot = [String: File]

    private let snapshots = Mutex<[String: Snapshot]>([:])

    /// The tree `source` last applied in full, if known.
    func snapshot(of source: String) -> Snapshot? { snapshots.withLock { $0[source] } }

    /// Records the tree `source` applied in full (nil forgets it).
    func record(_ snapshot: Snapshot?, of source: String) { snapshots.withLock { $0[source] = snapshot } }
}
