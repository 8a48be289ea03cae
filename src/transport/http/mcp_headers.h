// mcpmw transport/http: the 2026-07-28 stateless era at the door — which era a POST belongs
// to, whether its MCP headers agree with its body, and the `server/discover` answer for a
// worker that only speaks the 2025 era.
//
//   POST /mcp ─► headers.Observe(each header) ─► ReadStatelessBody(body)
//             ─► IsStatelessRequest? ── no ──► 2025-era session path (Mcp-Session-Id, initialize)
//                        │ yes
//                        ▼
//               CheckStatelessHeaders ── problem ──► HTTP 400 + JSON-RPC error, never forwarded
//                        │ none
//                        ▼
//               server/discover ─► DiscoverResultFromInitialize(worker's cached initialize)
//               anything else   ─► envelope, middleware chain, worker
//
// Rules, from the MCP specification 2026-07-28 (basic/transports/streamable-http.mdx "Request
// Metadata" and "Server Validation", basic/versioning.mdx, schema.ts):
//   - Every request POST carries `MCP-Protocol-Version`, equal to the body's
//     `params._meta["io.modelcontextprotocol/protocolVersion"]`; `Mcp-Method`, equal to the
//     body's `method`; and for tools/call and prompts/get `Mcp-Name` equal to `params.name`, for
//     resources/read `Mcp-Name` equal to `params.uri`. A missing, malformed or mismatching header
//     is answered 400 with -32020 HeaderMismatch. Header values are compared case-sensitively.
//   - A version the gateway does not serve statelessly is answered 400 with -32022
//     UnsupportedProtocolVersion, `data: {"supported": [...], "requested": "..."}`.
//   - `Mcp-Name` values (only those; not `Mcp-Method` or the version) may be sent as
//     `=?base64?<standard Base64 of the UTF-8 value>?=`, markers lower-case and exact; they are
//     decoded before comparison. A plain value that itself looks like that form must have been
//     encoded by the client, so such a header is always decoded.
//   - A header value may only hold visible ASCII, space and tab.
//   - The client MUST NOT POST JSON-RPC responses in this era (MRTR retries replace them): 400,
//     -32600. The revision defines no client notifications over HTTP and no header rules for
//     them; the transport rule is 202 when accepted. mcpmw accepts a notification whose headers
//     are absent, and refuses one whose present headers contradict its body.
// mcpmw additionally refuses, as ambiguous, a POST that repeats one of these headers or repeats
// one of the body members they are compared with: a receiver could read the other copy.
//
// The error codes are jsonrpc::kHeaderMismatch (-32020) and jsonrpc::kUnsupportedProtocolVersion
// (-32022) from src/jsonrpc/errors.h. Nothing here does I/O; everything is thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mcpmw::http {

// The first revision without initialize and sessions.
inline constexpr std::string_view kFirstStatelessVersion = "2026-07-28";
inline constexpr std::string_view kProtocolVersionMetaKey =
    "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kServerInfoMetaKey = "io.modelcontextprotocol/serverInfo";

// The three MCP request headers of one POST. Feed every request header to Observe() (names in
// any case); the views point into the caller's header storage and live as long as it does.
struct McpRequestHeaders {
  std::optional<std::string_view> protocol_version;  // MCP-Protocol-Version
  std::optional<std::string_view> method;            // Mcp-Method
  std::optional<std::string_view> name;              // Mcp-Name
  // The display name of the first of these headers that appeared twice; empty when none did.
  std::string_view repeated;

  void Observe(std::string_view header_name, std::string_view value);
};

// What the header checks need from a POST body, read in one pass. Strings are unescaped copies.
struct StatelessBody {
  enum class Kind : uint8_t {
    kRequest,       // method and id
    kNotification,  // method, no id
    kResponse,      // id and result or error, no method
    kInvalid,       // JSON, but not a single JSON-RPC message, or ambiguous; see `problem`
    kParseError,    // not JSON
  };
  Kind kind = Kind::kInvalid;
  std::string id;                               // raw token (`7`, `"a"`), empty when absent
  std::optional<std::string> method;            // `method` when a string
  std::optional<std::string> name;              // `params.name` when a string
  std::optional<std::string> uri;               // `params.uri` when a string
  std::optional<std::string> protocol_version;  // `params._meta[kProtocolVersionMetaKey]`
  std::string problem;                          // why kInvalid or kParseError
};

StatelessBody ReadStatelessBody(std::string_view body_json);

// Which versions the gateway serves. `stateless` are accepted on stateless POSTs; `advertised`
// (every version the gateway speaks, both eras) is what an UnsupportedProtocolVersion error
// lists, so a dual-era client can fall back to initialize.
struct VersionSupport {
  std::vector<std::string> stateless;
  std::vector<std::string> advertised;
};
// {"2026-07-28"} and {"2026-07-28", "2025-11-25", "2025-06-18"}.
const VersionSupport& DefaultVersionSupport();

// Why a stateless POST is refused: the HTTP status, the JSON-RPC error code and message, and the
// error's `data` member as JSON (empty when none) — ready for jsonrpc::ErrorResponse(id, …),
// with the body's id when it has one.
struct StatelessCheck {
  int http_status = 400;
  int jsonrpc_code = 0;
  std::string message;
  std::string data_json;
};

// The first rule of the banner that the POST breaks, or nullopt when it may proceed. Call it
// only for POSTs IsStatelessRequest() accepts.
std::optional<StatelessCheck> CheckStatelessHeaders(
    const McpRequestHeaders& headers, const StatelessBody& body,
    const VersionSupport& versions = DefaultVersionSupport());
std::optional<StatelessCheck> CheckStatelessHeaders(
    const McpRequestHeaders& headers, std::string_view body_json,
    const VersionSupport& versions = DefaultVersionSupport());

// True for a "YYYY-MM-DD" version at or after kFirstStatelessVersion.
bool IsStatelessEraVersion(std::string_view version);

// Whether a POST belongs to the stateless era. The specification has a dual-era server choose
// by how the client opens (basic/versioning.mdx): per-request `_meta` means stateless,
// `initialize` means a legacy session. mcpmw reads that as: stateless when the
// MCP-Protocol-Version header names a stateless-era version (or a later, unknown one), or the
// body carries `params._meta["io.modelcontextprotocol/protocolVersion"]`, or the method is
// `server/discover` (a modern client's probe, which must get a modern answer or error). Anything
// else — initialize, or a 2025-era version header on a session request — is the legacy path.
bool IsStatelessRequest(const McpRequestHeaders& headers, const StatelessBody& body);
bool IsStatelessRequest(const McpRequestHeaders& headers, std::string_view body_json);

// A header value as sent, or decoded from `=?base64?…?=`. InvalidArgument when it has the
// markers but the inside is not canonical padded standard Base64 (RFC 4648 section 4).
absl::StatusOr<std::string> DecodeMcpHeaderValue(std::string_view value);
// The value a client sends: as is when it is printable ASCII without leading or trailing blanks
// and does not look encoded, else `=?base64?…?=`.
std::string EncodeMcpHeaderValue(std::string_view value);

// How a synthesised `server/discover` result may be cached (CacheableResult, schema 2026-07-28).
enum class CacheScope : uint8_t { kPrivate, kPublic };

struct DiscoverOptions {
  // The versions a client may put in later requests' `_meta`: the stateless ones.
  std::vector<std::string> supported_versions = {std::string(kFirstStatelessVersion)};
  uint64_t ttl_ms = 0;
  CacheScope cache_scope = CacheScope::kPrivate;
};

// The `result` of a `server/discover` response, built from the `result` of a legacy worker's
// `initialize` response (as the pool caches it):
//   {"resultType":"complete","supportedVersions":[…],"capabilities":<copied>,
//    "serverInfo":<copied>,"instructions":<copied>,"ttlMs":N,"cacheScope":"private|public",
//    "_meta":{"io.modelcontextprotocol/serverInfo":<copied>}}
// The worker's `protocolVersion` is dropped: the gateway, not the worker, speaks 2026-07-28 to
// the client. `capabilities` and `serverInfo` are copied byte for byte (an absent capabilities
// becomes {}; an absent serverInfo and instructions are left out). serverInfo is written twice:
// schema.ts of 2026-07-28 carries it in the result's `_meta` under kServerInfoMetaKey, while the
// server/discover page's example (and the draft schema) has a top-level `serverInfo`; results
// allow extra members, so both kinds of client find it. InvalidArgument when the input is not a
// JSON object or a member has the wrong type.
absl::StatusOr<std::string> DiscoverResultFromInitialize(std::string_view initialize_result_json,
                                                         const DiscoverOptions& options = {});

}  // namespace mcpmw::http
