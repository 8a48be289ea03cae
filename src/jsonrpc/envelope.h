// mcpmw jsonrpc: the one-pass envelope reader.
//
// Second on the message path: framer ─► EnvelopeReader ─► session routing / middleware. It reads
// only what routing and governance need — `jsonrpc`, `id`, `method`, `params.name`,
// `params.uri`, `params._meta.progressToken`, and whether a response carries `result` or
// `error` — in a single pass over the top-level object with simdjson On-Demand, and classifies
// the message. Everything else is skipped, never materialised.
//
// Views in an Envelope point into the payload passed to Read() (or, for the rare string with
// escapes, into the Envelope itself); they are valid while both live.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "simdjson.h"
#include "src/io/buffer.h"

namespace mcpmw::jsonrpc {

static_assert(simdjson::SIMDJSON_PADDING <= io::ReadBuffer::kPadding,
              "ReadBuffer must keep simdjson's padding after every frame");

enum class MessageKind : uint8_t {
  kRequest,        // method + id
  kNotification,   // method, no id
  kResponse,       // id + result
  kErrorResponse,  // id + error
  kBatch,          // a JSON array of messages (2025-03-26 clients only)
  kInvalid,        // parsed, but not a JSON-RPC 2.0 message: answer -32600
  kParseError,     // not JSON at all: answer -32700 with id null
};

std::string_view MessageKindName(MessageKind kind);

struct Envelope {
  MessageKind kind = MessageKind::kInvalid;
  // The id exactly as it appears on the wire (`7`, `"abc"`), or empty when absent. Raw tokens
  // keep ids comparable without caring about their type.
  std::string_view id;
  std::string_view method;          // empty when absent
  std::string_view tool_name;       // params.name (tools/call, prompts/get)
  std::string_view resource_uri;    // params.uri (resources/read, subscribe)
  std::string_view progress_token;  // params._meta.progressToken, raw token
  std::string_view request_id;      // params.requestId (notifications/cancelled), raw token
  // Why a message is kInvalid or kParseError, for the error reply and the log.
  std::string_view problem;

  // Storage for the rare string that had escapes and had to be unescaped.
  std::string method_storage;
  std::string tool_name_storage;
  std::string resource_uri_storage;

  bool HasId() const { return !id.empty(); }
};

// One reader per thread (it owns a simdjson parser). Not thread-safe.
class EnvelopeReader {
 public:
  // Reads `payload`. At least io::ReadBuffer::kPadding readable bytes must follow it in memory
  // (true for frames in a ReadBuffer and for simdjson::padded_string).
  void Read(std::string_view payload, Envelope* out);

 private:
  simdjson::ondemand::parser parser_;
};

}  // namespace mcpmw::jsonrpc
