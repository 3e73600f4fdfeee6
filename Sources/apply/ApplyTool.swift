import ArgumentParser
import Client

/// The `apply` executable: the same command as `steady apply`.
@main
extension ApplyCommand {}
