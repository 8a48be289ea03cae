#include "src/transport/http/mcp_headers.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"

namespace mcpmw::http {
namespace {

namespace od = simdjson::ondemand;

constexpr std::string_view kVersionHeaderName = "MCP-Protocol-Version";
constexpr std::string_view kMethodHeaderName = "Mcp-Method";
constexpr std::string_view kNameHeaderName = "Mcp-Name";
constexpr std::string_view kEncodedPrefix = "=?base64?";
constexpr std::string_view kEncodedSuffix = "?=";
// Values quoted in error messages are cut here: they come from the client and may be large.
constexpr size_t kMaxQuotedBytes = 64;

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// A client value for an error message: printable ASCII only, cut to kMaxQuotedBytes.
std::string Quote(std::string_view value) {
  std::string out = "'";
  for (size_t i = 0; i < value.size() && i < kMaxQuotedBytes; ++i) {
    char c = value[i];
    out.push_back(c >= 0x20 && c < 0x7F ? c : '?');
  }
  if (value.size() > kMaxQuotedBytes) {
    out.append("...");
  }
  out.push_back('\'');
  return out;
}

// RFC 9110 field values: visible ASCII, space, tab.
bool IsValidHeaderValue(std::string_view value) {
  for (char c : value) {
    if (c != '\t' && (c < 0x20 || c > 0x7E)) {
      return false;
    }
  }
  return true;
}

bool LooksEncoded(std::string_view value) {
  return absl::StartsWith(Sv(value), Sv(kEncodedPrefix)) &&
         absl::EndsWith(Sv(value), Sv(kEncodedSuffix));
}

StatelessCheck Mismatch(std::string_view message) {
  return {400, jsonrpc::kHeaderMismatch, absl::StrCat("Header mismatch: ", Sv(message)), ""};
}

StatelessCheck MissingHeader(std::string_view header) {
  return Mismatch(absl::StrCat("the ", Sv(header), " header is missing"));
}

// Compares a header with its body value; the body value is nullopt when absent or not a string.
std::optional<StatelessCheck> Compare(std::string_view header, std::string_view header_value,
                                      const std::optional<std::string>& body_value,
                                      std::string_view body_member) {
  if (!body_value) {
    return Mismatch(absl::StrCat(Sv(header), " header value ", Quote(header_value),
                                 " does not match the body, which has no ", Sv(body_member),
                                 " string"));
  }
  if (header_value != *body_value) {
    return Mismatch(absl::StrCat(Sv(header), " header value ", Quote(header_value),
                                 " does not match body value ", Quote(*body_value)));
  }
  return std::nullopt;
}

StatelessCheck Unsupported(std::string_view requested, const VersionSupport& versions) {
  StatelessCheck check{400, jsonrpc::kUnsupportedProtocolVersion, "", ""};
  std::string list;
  check.data_json = "{\"supported\":[";
  for (size_t i = 0; i < versions.advertised.size(); ++i) {
    absl::StrAppend(&list, i == 0 ? "" : ", ", versions.advertised[i]);
    if (i > 0) {
      check.data_json.push_back(',');
    }
    jsonrpc::AppendJsonString(versions.advertised[i], &check.data_json);
  }
  check.data_json.append("],\"requested\":");
  jsonrpc::AppendJsonString(requested, &check.data_json);
  check.data_json.push_back('}');
  check.message =
      absl::StrCat("Unsupported protocol version ", Quote(requested), "; supported: ", list);
  return check;
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  for (const std::string& s : list) {
    if (s == value) {
      return true;
    }
  }
  return false;
}

// Reads a string member; nullopt when it is not a string. An error only for malformed JSON.
simdjson::error_code ReadOptionalString(od::value value, std::optional<std::string>* out) {
  od::json_type type;
  if (auto error = value.type().get(type); error != simdjson::SUCCESS) {
    return error;
  }
  if (type != od::json_type::string) {
    out->reset();
    return simdjson::SUCCESS;
  }
  std::string_view s;
  if (auto error = value.get_string().get(s); error != simdjson::SUCCESS) {
    return error;
  }
  out->emplace(s);
  return simdjson::SUCCESS;
}

// Counts members so a repeated one can be refused.
struct Seen {
  int count = 0;
  bool First() { return ++count == 1; }
};

simdjson::error_code ReadMeta(od::object meta, StatelessBody* out, std::string* duplicate) {
  Seen version;
  for (auto field : meta) {
    std::string_view key;
    if (auto error = field.unescaped_key().get(key); error != simdjson::SUCCESS) {
      return error;
    }
    if (key == kProtocolVersionMetaKey) {
      if (!version.First()) {
        *duplicate = absl::StrCat("params._meta[\"", Sv(kProtocolVersionMetaKey), "\"]");
        continue;
      }
      if (auto error = ReadOptionalString(field.value(), &out->protocol_version);
          error != simdjson::SUCCESS) {
        return error;
      }
    }
  }
  return simdjson::SUCCESS;
}

simdjson::error_code ReadParams(od::object params, StatelessBody* out, std::string* duplicate) {
  Seen name;
  Seen uri;
  Seen meta;
  for (auto field : params) {
    std::string_view key;
    if (auto error = field.unescaped_key().get(key); error != simdjson::SUCCESS) {
      return error;
    }
    simdjson::error_code error = simdjson::SUCCESS;
    if (key == "name") {
      if (!name.First()) {
        *duplicate = "params.name";
        continue;
      }
      error = ReadOptionalString(field.value(), &out->name);
    } else if (key == "uri") {
      if (!uri.First()) {
        *duplicate = "params.uri";
        continue;
      }
      error = ReadOptionalString(field.value(), &out->uri);
    } else if (key == "_meta") {
      if (!meta.First()) {
        *duplicate = "params._meta";
        continue;
      }
      od::object obj;
      if (field.value().get_object().get(obj) == simdjson::SUCCESS) {
        error = ReadMeta(obj, out, duplicate);
      }
    }
    if (error != simdjson::SUCCESS) {
      return error;
    }
  }
  return simdjson::SUCCESS;
}

// The body's members; kParseError is decided by the caller from the returned error.
simdjson::error_code ReadTop(od::object top, StatelessBody* out, std::string* duplicate,
                             bool* has_result, bool* jsonrpc_ok, bool* id_ok) {
  Seen jsonrpc;
  Seen id;
  Seen method;
  Seen params;
  Seen result;
  for (auto field : top) {
    std::string_view key;
    if (auto error = field.unescaped_key().get(key); error != simdjson::SUCCESS) {
      return error;
    }
    Seen* seen = key == "jsonrpc"                    ? &jsonrpc
                 : key == "id"                       ? &id
                 : key == "method"                   ? &method
                 : key == "params"                   ? &params
                 : key == "result" || key == "error" ? &result
                                                     : nullptr;
    if (seen == nullptr) {
      continue;
    }
    if (!seen->First()) {
      *duplicate = std::string(key);
      continue;
    }
    od::value value;
    if (auto error = field.value().get(value); error != simdjson::SUCCESS) {
      return error;
    }
    simdjson::error_code error = simdjson::SUCCESS;
    if (seen == &jsonrpc) {
      std::optional<std::string> v;
      error = ReadOptionalString(value, &v);
      *jsonrpc_ok = v && *v == "2.0";
    } else if (seen == &id) {
      od::json_type type;
      error = value.type().get(type);
      if (error == simdjson::SUCCESS) {
        out->id = std::string(TrimRight(value.raw_json_token()));
        od::number_type number_type;
        *id_ok = type == od::json_type::string ||
                 (type == od::json_type::number &&
                  value.get_number_type().get(number_type) == simdjson::SUCCESS &&
                  number_type != od::number_type::floating_point_number);
        if (type == od::json_type::string) {
          std::string_view ignored;  // validates the escapes
          error = value.get_string().get(ignored);
        }
      }
    } else if (seen == &method) {
      error = ReadOptionalString(value, &out->method);
    } else if (seen == &params) {
      od::object obj;
      if (value.get_object().get(obj) == simdjson::SUCCESS) {
        error = ReadParams(obj, out, duplicate);
      }
    } else {
      *has_result = true;
    }
    if (error != simdjson::SUCCESS) {
      return error;
    }
  }
  return simdjson::SUCCESS;
}

}  // namespace

void McpRequestHeaders::Observe(std::string_view header_name, std::string_view value) {
  auto take = [&](std::optional<std::string_view>* slot, std::string_view display) {
    if (slot->has_value()) {
      if (repeated.empty()) {
        repeated = display;
      }
      return;
    }
    *slot = value;
  };
  absl::string_view n = Sv(header_name);
  if (absl::EqualsIgnoreCase(n, Sv(kVersionHeaderName))) {
    take(&protocol_version, kVersionHeaderName);
  } else if (absl::EqualsIgnoreCase(n, Sv(kMethodHeaderName))) {
    take(&method, kMethodHeaderName);
  } else if (absl::EqualsIgnoreCase(n, Sv(kNameHeaderName))) {
    take(&name, kNameHeaderName);
  }
}

StatelessBody ReadStatelessBody(std::string_view body_json) {
  StatelessBody body;
  simdjson::padded_string bytes(body_json);
  // One parser per thread, reused (it keeps its buffers between messages).
  thread_local od::parser parser;
  od::document doc;
  od::json_type root_type;
  if (parser.iterate(bytes).get(doc) != simdjson::SUCCESS ||
      doc.type().get(root_type) != simdjson::SUCCESS) {
    body.kind = StatelessBody::Kind::kParseError;
    body.problem = "the body is not valid JSON";
    return body;
  }
  if (root_type != od::json_type::object) {
    body.kind = StatelessBody::Kind::kInvalid;
    body.problem = root_type == od::json_type::array
                       ? "batches (JSON arrays) are not part of this protocol version"
                       : "the body is not a JSON object";
    return body;
  }
  od::object top;
  std::string duplicate;
  bool has_result = false;
  bool jsonrpc_ok = false;
  bool id_ok = false;
  if (doc.get_object().get(top) != simdjson::SUCCESS ||
      ReadTop(top, &body, &duplicate, &has_result, &jsonrpc_ok, &id_ok) != simdjson::SUCCESS ||
      // Past the last token current_location() reports OUT_OF_BOUNDS: nothing trails the object.
      doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    body = StatelessBody();
    body.kind = StatelessBody::Kind::kParseError;
    body.problem = "the body is not valid JSON";
    return body;
  }
  body.kind = StatelessBody::Kind::kInvalid;
  if (!duplicate.empty()) {
    body.problem = absl::StrCat("member `", duplicate, "` appears more than once");
  } else if (!jsonrpc_ok) {
    body.problem = "`jsonrpc` must be \"2.0\"";
  } else if (!body.id.empty() && !id_ok) {
    body.problem = "`id` must be a string or an integer";
  } else if (body.method) {
    body.kind =
        body.id.empty() ? StatelessBody::Kind::kNotification : StatelessBody::Kind::kRequest;
  } else if (has_result && !body.id.empty()) {
    body.kind = StatelessBody::Kind::kResponse;
  } else {
    body.problem = "not a JSON-RPC request, notification or response";
  }
  return body;
}

const VersionSupport& DefaultVersionSupport() {
  static const auto* const defaults = new VersionSupport{
      {std::string(kFirstStatelessVersion)},
      {std::string(kFirstStatelessVersion), "2025-11-25", "2025-06-18"},
  };
  return *defaults;
}

std::optional<StatelessCheck> CheckStatelessHeaders(const McpRequestHeaders& headers,
                                                    const StatelessBody& body,
                                                    const VersionSupport& versions) {
  using Kind = StatelessBody::Kind;
  switch (body.kind) {
    case Kind::kParseError:
      return StatelessCheck{400, jsonrpc::kParseError, absl::StrCat("Parse error: ", body.problem),
                            ""};
    case Kind::kInvalid:
      return StatelessCheck{400, jsonrpc::kInvalidRequest,
                            absl::StrCat("Invalid Request: ", body.problem), ""};
    case Kind::kResponse:
      return StatelessCheck{400, jsonrpc::kInvalidRequest,
                            absl::StrCat("Invalid Request: clients must not send JSON-RPC "
                                         "responses in protocol version ",
                                         Sv(kFirstStatelessVersion)),
                            ""};
    case Kind::kRequest:
    case Kind::kNotification:
      break;
  }
  if (!headers.repeated.empty()) {
    return Mismatch(absl::StrCat("the ", Sv(headers.repeated), " header is sent more than once"));
  }
  for (auto [value, display] :
       {std::pair{headers.protocol_version, kVersionHeaderName},
        std::pair{headers.method, kMethodHeaderName}, std::pair{headers.name, kNameHeaderName}}) {
    if (value && !IsValidHeaderValue(*value)) {
      return Mismatch(absl::StrCat("the ", Sv(display),
                                   " header holds characters other than visible ASCII, space "
                                   "and tab"));
    }
  }
  const bool request = body.kind == Kind::kRequest;
  const std::string meta_member =
      absl::StrCat("params._meta[\"", Sv(kProtocolVersionMetaKey), "\"]");

  // Protocol version: required on requests, checked on notifications when sent.
  if (!headers.protocol_version) {
    if (request) {
      return MissingHeader(kVersionHeaderName);
    }
  } else {
    if (request || body.protocol_version) {
      if (auto problem = Compare(kVersionHeaderName, *headers.protocol_version,
                                 body.protocol_version, meta_member)) {
        return problem;
      }
    }
    if (!Contains(versions.stateless, *headers.protocol_version)) {
      return Unsupported(*headers.protocol_version, versions);
    }
  }

  // Method: required on requests, checked on notifications when sent.
  if (!headers.method) {
    if (request) {
      return MissingHeader(kMethodHeaderName);
    }
  } else if (auto problem = Compare(kMethodHeaderName, *headers.method, body.method, "method")) {
    return problem;
  }
  if (!request) {
    return std::nullopt;
  }

  // Name: only the three methods have a source for it.
  const std::optional<std::string>* source = nullptr;
  std::string_view member;
  if (*body.method == "tools/call" || *body.method == "prompts/get") {
    source = &body.name;
    member = "params.name";
  } else if (*body.method == "resources/read") {
    source = &body.uri;
    member = "params.uri";
  } else {
    return std::nullopt;
  }
  if (!headers.name) {
    return Mismatch(absl::StrCat("the ", Sv(kNameHeaderName), " header is missing (required for ",
                                 *body.method, ")"));
  }
  absl::StatusOr<std::string> decoded = DecodeMcpHeaderValue(*headers.name);
  if (!decoded.ok()) {
    return Mismatch(absl::StrCat("the ", Sv(kNameHeaderName), " header value ",
                                 Quote(*headers.name), " is not valid =?base64?...?= encoding"));
  }
  return Compare(kNameHeaderName, *decoded, *source, member);
}

std::optional<StatelessCheck> CheckStatelessHeaders(const McpRequestHeaders& headers,
                                                    std::string_view body_json,
                                                    const VersionSupport& versions) {
  return CheckStatelessHeaders(headers, ReadStatelessBody(body_json), versions);
}

bool IsStatelessEraVersion(std::string_view version) {
  if (version.size() != 10 || version[4] != '-' || version[7] != '-') {
    return false;
  }
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (version[i] < '0' || version[i] > '9') {
      return false;
    }
  }
  // Same-width dates compare as strings.
  return version >= kFirstStatelessVersion;
}

bool IsStatelessRequest(const McpRequestHeaders& headers, const StatelessBody& body) {
  return (headers.protocol_version && IsStatelessEraVersion(*headers.protocol_version)) ||
         body.protocol_version.has_value() || body.method == "server/discover";
}

bool IsStatelessRequest(const McpRequestHeaders& headers, std::string_view body_json) {
  return IsStatelessRequest(headers, ReadStatelessBody(body_json));
}

absl::StatusOr<std::string> DecodeMcpHeaderValue(std::string_view value) {
  if (!LooksEncoded(value)) {
    return std::string(value);
  }
  if (value.size() < kEncodedPrefix.size() + kEncodedSuffix.size()) {
    return absl::InvalidArgumentError("the =?base64?…?= markers overlap");
  }
  std::string_view payload = value.substr(
      kEncodedPrefix.size(), value.size() - kEncodedPrefix.size() - kEncodedSuffix.size());
  std::string decoded;
  // absl accepts unpadded and some non-canonical input; re-encoding pins the one spelling a
  // conforming client sends, so every reader of this header decodes the same bytes.
  if (payload.size() % 4 != 0 || !absl::Base64Unescape(Sv(payload), &decoded) ||
      absl::Base64Escape(decoded) != Sv(payload)) {
    return absl::InvalidArgumentError(
        "the value between =?base64? and ?= is not canonical padded Base64");
  }
  return decoded;
}

std::string EncodeMcpHeaderValue(std::string_view value) {
  bool plain = !LooksEncoded(value);
  for (char c : value) {
    plain = plain && c >= 0x20 && c <= 0x7E;
  }
  if (!value.empty() && (value.front() == ' ' || value.back() == ' ')) {
    plain = false;
  }
  if (plain) {
    return std::string(value);
  }
  return absl::StrCat(Sv(kEncodedPrefix), absl::Base64Escape(Sv(value)), Sv(kEncodedSuffix));
}

absl::StatusOr<std::string> DiscoverResultFromInitialize(std::string_view initialize_result_json,
                                                         const DiscoverOptions& options) {
  auto bad = [](std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot build server/discover from the initialize result: ", Sv(what)));
  };
  simdjson::padded_string bytes(initialize_result_json);
  // Copied members must be valid JSON as a whole; On-Demand alone would skip over bad bytes.
  simdjson::dom::parser validator;
  if (validator.parse(bytes).error() != simdjson::SUCCESS) {
    return bad("not valid JSON");
  }
  od::parser parser;
  od::document doc;
  od::object top;
  if (parser.iterate(bytes).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(top) != simdjson::SUCCESS) {
    return bad("not a JSON object");
  }
  std::optional<std::string_view> capabilities;
  std::optional<std::string_view> server_info;
  std::optional<std::string> instructions;
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return bad("malformed member name");
    }
    if ((key == "capabilities" && !capabilities) || (key == "serverInfo" && !server_info)) {
      od::object obj;
      std::string_view raw;
      if (field.value().get_object().get(obj) != simdjson::SUCCESS ||
          obj.raw_json().get(raw) != simdjson::SUCCESS) {
        return bad(absl::StrCat("`", Sv(key), "` is not an object"));
      }
      (key == "capabilities" ? capabilities : server_info) = TrimRight(raw);
    } else if (key == "instructions" && !instructions) {
      std::string_view text;
      if (field.value().get_string().get(text) != simdjson::SUCCESS) {
        return bad("`instructions` is not a string");
      }
      instructions.emplace(text);
    }
  }
  std::string out = R"({"resultType":"complete","supportedVersions":[)";
  for (size_t i = 0; i < options.supported_versions.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    jsonrpc::AppendJsonString(options.supported_versions[i], &out);
  }
  absl::StrAppend(&out, "],\"capabilities\":", Sv(capabilities.value_or("{}")));
  if (server_info) {
    absl::StrAppend(&out, ",\"serverInfo\":", Sv(*server_info));
  }
  if (instructions) {
    out.append(",\"instructions\":");
    jsonrpc::AppendJsonString(*instructions, &out);
  }
  absl::StrAppend(&out, ",\"ttlMs\":", options.ttl_ms, ",\"cacheScope\":",
                  options.cache_scope == CacheScope::kPublic ? "\"public\"" : "\"private\"");
  if (server_info) {
    out.append(",\"_meta\":{");
    jsonrpc::AppendJsonString(kServerInfoMetaKey, &out);
    absl::StrAppend(&out, ":", Sv(*server_info), "}");
  }
  out.push_back('}');
  return out;
}

}  // namespace mcpmw::http
