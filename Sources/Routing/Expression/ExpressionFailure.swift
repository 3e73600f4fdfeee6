/// The cheap error thrown while evaluating; it becomes an ``ExpressionError`` only when a caller asks for one.
///
/// `matches` discards failures, and "no such key" is the common way a route fails to match, so that case keeps
/// the key instead of formatting a message.
struct ExpressionFailure: Error, Sendable {
    enum Detail: Sendable {
        case noSuchKey(String)
        case message(String)
    }

    var code: ExpressionError.Code
    var offset: Int
    var detail: Detail

    init(_ code: ExpressionError.Code, _ message: String, at offset: Int) {
        self.code = code
        self.offset = offset
        self.detail = .message(message)
    }

    static func noSuchKey(_ key: String, at offset: Int) -> ExpressionFailure {
        var failure = ExpressionFailure(.noSuchField, "", at: offset)
        failure.detail = .noSuchKey(key)
        return failure
    }

    /// CEL's wording for an operator or function applied to types it has no implementation for.
    static func noOverload(_ name: String, _ types: [String], at offset: Int) -> ExpressionFailure {
        ExpressionFailure(
            .typeMismatch, "no matching overload for '\(name)' applied to (\(types.joined(separator: ", ")))",
            at: offset)
    }

    var message: String {
        switch detail {
        case .noSuchKey(let key): "no such key: \(key)"
        case .message(let text): text
        }
    }

    func expressionError(in source: String) -> ExpressionError {
        ExpressionError(code: code, message: message, offset: offset, in: source)
    }
}
