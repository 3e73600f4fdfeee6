import CSQLite
import Dispatch
import Foundation
import Synchronization

/// Copies a WAL database's log into the database file on a thread of its own, so that the connection that writes
/// does not stop for it.
///
/// SQLite's own checkpoint runs inside the commit that finds the log over its limit: that commit syncs the whole
/// log, copies it and syncs the database, and every write queued behind it waits (under 5,000 events/s, 80 ms
/// every second). Here a commit only signals, and a second connection copies the log meanwhile. A log starts again
/// from its beginning only once all of it is copied, which a background copy never achieves while writes keep
/// coming; so once the copy has nearly caught up, the writer copies the last few frames itself (about a millisecond)
/// and its next transaction starts the log again.
public final class WALCheckpointer: Sendable {
    /// Frames in the log below which nothing is copied (1 MB of 4 KB pages). A copy reaches the disk as one burst of
    /// writes and syncs, which delays every other file's sync meanwhile: at SQLite's default of 4 MB, a file action's
    /// fsync waited up to 10 ms every third of a second at 5,000 events/s; copies of a quarter of that size kept its
    /// p99 under 5 ms with the same throughput.
    static let startFrames = 250
    /// At most this many frames not yet copied, or an eighth of a longer log: the writer copies them itself. A writer
    /// that outruns the background copy thus copies more as the log grows, and the log stays a few times the copy's
    /// lag.
    static let finishFrames = 64
    /// A log this long is copied by the writer whatever it costs, so the log stays bounded if the background copy
    /// cannot keep up.
    static let limitFrames = 64_000

    private struct Progress {
        /// Which log the figures are of: the log starts again from its beginning after a complete copy.
        var generation = 0
        /// The log's length after the last commit.
        var frames = 0
        /// Frames of the current log copied into the database.
        var copied = 0
        var isCopying = false
        var isClosed = false
    }

    private let progress = Mutex(Progress())
    private let wake = DispatchSemaphore(value: 0)
    /// The connection that copies, used on the checkpointer's thread until ``close()``.
    private let connection: GuardedSQLiteConnection

    /// Takes over checkpoints of `writer`, the connection that writes the database at `path`, which must be in WAL
    /// mode. Close the checkpointer before the writer: the last connection to close copies the whole log and removes
    /// it, so that the file holds everything.
    public init(path: String, writer: SQLiteConnection) throws {
        let connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READWRITE)
        // A connection knows the file is in WAL mode only once it has read it; until then a checkpoint does nothing.
        try connection.execute("PRAGMA journal_mode = WAL")
        self.connection = GuardedSQLiteConnection(connection)
        try writer.setWALHook(Unmanaged.passUnretained(self).toOpaque()) { context, db, _, frames in
            guard let context, let db else { return SQLITE_OK }
            Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(frames: Int(frames), db: db)
            return SQLITE_OK
        }
        let thread = Thread { [self] in copyWhenSignalled() }
        thread.name = "wal-checkpoint"
        thread.start()
    }

    /// Closes the copying connection (waiting for a copy under way) and ends its thread.
    public func close() {
        progress.withLock { $0.isClosed = true }
        connection.close()
        wake.signal()
    }

    /// After each commit of the writer, on its thread, with the log's length in frames.
    private func committed(frames: Int, db: OpaquePointer) {
        let (finish, signal, generation) = progress.withLock { progress -> (Bool, Bool, Int) in
            if frames < progress.frames {
                // A shorter log is a new one, started from its beginning.
                progress.generation += 1
                progress.copied = 0
            }
            progress.frames = frames
            guard frames >= Self.startFrames else { return (false, false, progress.generation) }
            let left = frames - progress.copied
            if frames >= Self.limitFrames || (!progress.isCopying && left <= max(Self.finishFrames, frames / 8)) {
                return (true, false, progress.generation)
            }
            guard !progress.isCopying else { return (false, false, progress.generation) }
            progress.isCopying = true
            return (false, true, progress.generation)
        }
        if signal { wake.signal() }
        if finish { checkpoint(db, generation: generation) }
    }

    private func copyWhenSignalled() {
        while true {
            wake.wait()
            let (generation, isClosed) = progress.withLock { ($0.generation, $0.isClosed) }
            if isClosed { return }
            try? connection.withConnection { _ = $0.withHandle { checkpoint($0, generation: generation) } }
            progress.withLock { $0.isCopying = false }
        }
    }

    /// Copies what it can of the log without waiting for anyone, and notes how far it got. SQLite refuses while
    /// another checkpoint runs; the next commit tries again.
    private func checkpoint(_ db: OpaquePointer, generation: Int) {
        var logFrames: Int32 = 0
        var copiedFrames: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &copiedFrames)
        guard rc == SQLITE_OK else { return }
        progress.withLock { progress in
            // Figures of a log that has since started again are stale.
            if progress.generation == generation { progress.copied = Int(copiedFrames) }
        }
    }
}
