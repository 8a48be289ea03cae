// mcpmw jsonrpc: error codes and the error-response writer.
//
// When mcpmw answers a message itself (it could not be parsed, the server is gone, a stage
// denied it) it writes a JSON-RPC error response with one of these codes. Codes -32000..-32019
// are the range MCP leaves to implementations; mcpmw's are listed in the README.
#pragma once

#include <string>
#include <string_view>

namespace mcpmw::jsonrpc {

// JSON-RPC 2.0.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// The request was cancelled before it was answered (LSP's RequestCancelled; audit records only).
inline constexpr int kRequestCancelled = -32800;

// mcpmw, in the implementation range.
// The MCP server exited (or was killed) while this request was in flight. Retryable.
inline constexpr int kServerExited = -32000;
// The MCP server is not running and cannot take the request now (restart buffer full, restart
// budget spent, shutting down), or did not answer it within --request-timeout-ms.
inline constexpr int kServerUnavailable = -32001;
// The message is larger than --max-message-bytes and was skipped.
inline constexpr int kMessageTooLarge = -32003;
// Shared workers (many sessions on one server process, src/proxy/session_mux.h):
// the session already has its cap of requests in flight. Retryable.
inline constexpr int kSharedInFlightLimit = -32004;
// A server-to-client request no session can be held responsible for (answered to the worker), or
// whose session closed before answering.
inline constexpr int kSharedNoSession = -32005;
// The gateway (src/transport/http/gateway.h): the Mcp-Session-Id is unknown, ended, or belongs to
// another principal (HTTP 404).
inline constexpr int kSessionNotFound = -32006;
// The gateway: the caller's tenant already has its quota of concurrent sessions (HTTP 429).
inline constexpr int kTenantSessionLimit = -32007;

// MCP 2026-07-28, Streamable HTTP: a Mcp-Method / Mcp-Name / MCP-Protocol-Version header does not
// match the body (HTTP 400).
inline constexpr int kHeaderMismatch = -32020;
// MCP 2026-07-28: the protocol version is not one this server speaks (HTTP 400).
inline constexpr int kUnsupportedProtocolVersion = -32022;

// MCP request timeouts: each notifications/progress for a request restarts its timeout, but only
// up to this many times the timeout from the request's arrival, a hard maximum, so that a server
// reporting progress for ever still ends (the sidecar's --request-timeout-ms, the gateway's
// requestTimeoutMs).
inline constexpr int kProgressCapFactor = 10;

// Appends a JSON string literal (with quotes) for `text` to `out`, escaping as RFC 8259 requires:
// `"` and `\` with a backslash, \n \r \t, every other control character as \u00XX.
void AppendJsonString(std::string_view text, std::string* out);
// The same with JavaScript's JSON.stringify spelling, which also writes \b and \f short (what
// `mcpmw eval` must reproduce byte for byte).
void AppendJsonStringLikeJs(std::string_view text, std::string* out);

// Builds `{"jsonrpc":"2.0","id":<id>,"error":{"code":..,"message":..[,"data":<data_json>]}}`.
// `id` is a raw JSON token (as Envelope::id holds it); empty means null. `data_json`, when not
// empty, must be a JSON value.
std::string ErrorResponse(std::string_view id, int code, std::string_view message,
                          std::string_view data_json = {});

// Builds `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":<id>,
// "reason":<reason>}}`; `request_id` is a raw JSON token.
std::string CancelledNotification(std::string_view request_id, std::string_view reason);

}  // namespace mcpmw::jsonrpc
