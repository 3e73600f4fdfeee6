/// Small pieces of English shared by messages.
public enum Wording {
    /// `1 runner`, `2 runners`: the count and the noun, with an `s` unless the count is one.
    public static func count(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }
}
