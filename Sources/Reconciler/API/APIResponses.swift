import Hummingbird
import NIOCore
import Resources

/// Builds JSON responses.
enum APIResponses {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var data = value.jsonData()
        data.append(0x0A)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ error: APIError) -> Response {
        json(error.status, status: HTTPResponse.Status(code: error.reason.code))
    }

    static func text(_ text: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
