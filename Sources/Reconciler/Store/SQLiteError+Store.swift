import SQLiteSupport

extension SQLiteError {
    /// What the store reports: `unavailable`, with the code and `sqlite3_errmsg`.
    var storeError: StoreError { StoreError(code: .unavailable, message: description) }

    /// `error` as the store reports it: SQLite failures become their `StoreError`, others pass through.
    static func reported(_ error: any Error) -> any Error {
        (error as? SQLiteError)?.storeError ?? error
    }
}
