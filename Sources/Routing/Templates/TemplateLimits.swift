/// Bounds on a template source, checked before the mustache parser sees it.
///
/// swift-mustache parses a section by recursing once per level and a transform chain `f(g(h(x)))` once per
/// parenthesis, and it finds tags in time quadratic in the length of the source; so a small hostile body could
/// overflow the stack of whoever compiles it (the API server, `apply`, every agent holding it) or hold a core for
/// minutes. ``TemplateCompiler`` rejects a source past these limits with an error that names the field and the limit.
public struct TemplateLimits: Sendable, Hashable {
    /// Longest accepted source, in UTF-8 bytes.
    public var maxLength: Int
    /// Deepest nesting of sections, inverted sections, inheritance blocks and partials with blocks.
    public var maxDepth: Int
    /// Most transforms applied in one tag, as in `{{uppercased(reversed(name))}}`.
    public var maxTransforms: Int

    /// Creates limits; the defaults are well beyond what a notification template needs and well below what hurts.
    ///
    /// In a debug build each level of sections costs the parser about 15 KiB of stack, so 33 levels overflow a
    /// 512 KiB thread stack; 16 leave half of it to the caller. The parser's time grows with the square of the
    /// length: 16 KiB of tags take about a quarter of a second to parse in a debug build.
    public init(maxLength: Int = 16 * 1024, maxDepth: Int = 16, maxTransforms: Int = 8) {
        self.maxLength = maxLength
        self.maxDepth = maxDepth
        self.maxTransforms = maxTransforms
    }
}
