import CSQLite

/// How much memory SQLite holds in this process (page caches, prepared statements, scratch), for `/metrics`.
///
/// On a controller under load this is most of what its heap grows by: each connection's page cache fills up to
/// its `cache_size` as the store's revision log and the events database grow, then stays there.
public enum SQLiteMemory {
    /// Bytes SQLite has allocated now.
    public static var used: Int64 { sqlite3_memory_used() }
    /// The most bytes SQLite has had allocated at once since the process started.
    public static var highWater: Int64 { sqlite3_memory_highwater(0) }
}
