#include "src/jsonrpc/envelope.h"

namespace mcpmw::jsonrpc {
namespace {

namespace od = simdjson::ondemand;

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Reads a string value as a view into the payload when it has no escapes (the common case);
// otherwise unescapes it into `storage`. False when the value is not a string.
bool ReadString(od::value value, std::string* storage, std::string_view* out) {
  od::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS || type != od::json_type::string) {
    return false;
  }
  std::string_view token = TrimRight(value.raw_json_token());
  if (token.size() >= 2 && token.find('\\') == std::string_view::npos) {
    *out = token.substr(1, token.size() - 2);
    return true;
  }
  std::string_view unescaped;
  if (value.get_string().get(unescaped) != simdjson::SUCCESS) {
    return false;
  }
  storage->assign(unescaped);
  *out = *storage;
  return true;
}

// Reads an id or progress token: a string or an integer, kept as its raw token.
bool ReadIdToken(od::value value, std::string_view* out) {
  od::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) {
    return false;
  }
  if (type == od::json_type::string) {
    std::string_view token = value.raw_json_token();
    // Validate the string's escapes by reading it; the raw token is what we keep.
    std::string_view ignored;
    if (value.get_string().get(ignored) != simdjson::SUCCESS) {
      return false;
    }
    *out = TrimRight(token);
    return true;
  }
  if (type == od::json_type::number) {
    od::number_type nt;
    if (value.get_number_type().get(nt) != simdjson::SUCCESS ||
        nt == od::number_type::floating_point_number) {
      return false;
    }
    *out = TrimRight(value.raw_json_token());
    return true;
  }
  return false;
}

void ReadMeta(od::object meta, Envelope* out) {
  for (auto field : meta) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return;
    }
    if (key == "progressToken") {
      od::value v;
      if (field.value().get(v) == simdjson::SUCCESS) {
        ReadIdToken(v, &out->progress_token);
      }
    }
  }
}

void ReadParams(od::value params, Envelope* out) {
  od::object obj;
  if (params.get_object().get(obj) != simdjson::SUCCESS) {
    return;  // params may be an array in plain JSON-RPC; MCP never routes on it
  }
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return;
    }
    od::value v;
    if (field.value().get(v) != simdjson::SUCCESS) {
      return;
    }
    if (key == "requestId") {
      ReadIdToken(v, &out->request_id);
    } else if (key == "name") {
      ReadString(v, &out->tool_name_storage, &out->tool_name);
    } else if (key == "uri") {
      ReadString(v, &out->resource_uri_storage, &out->resource_uri);
    } else if (key == "_meta") {
      od::object meta;
      if (v.get_object().get(meta) == simdjson::SUCCESS) {
        ReadMeta(meta, out);
      }
    }
  }
}

// A root scalar's token, blanks trimmed, when nothing but blanks follows it (the token extends to
// the next structural character, so trailing content ends it early); empty otherwise.
std::string_view WholeRootToken(od::document& doc, std::string_view payload) {
  std::string_view token;
  if (doc.raw_json_token().get(token) != simdjson::SUCCESS ||
      token.data() + token.size() != payload.data() + payload.size()) {
    return {};
  }
  return TrimRight(token);
}

// The JSON number grammar (RFC 8259 section 6).
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&s, &i] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ++i;
    }
    return i > start;
  };
  if (i < s.size() && s[i] == '-') {
    ++i;
  }
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) {
      return false;
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    if (!digits()) {
      return false;
    }
  }
  return i == s.size();
}

void Reset(Envelope* out) {
  out->kind = MessageKind::kInvalid;
  out->id = {};
  out->method = {};
  out->tool_name = {};
  out->resource_uri = {};
  out->progress_token = {};
  out->request_id = {};
  out->problem = {};
}

}  // namespace

std::string_view MessageKindName(MessageKind kind) {
  switch (kind) {
    case MessageKind::kRequest:
      return "request";
    case MessageKind::kNotification:
      return "notification";
    case MessageKind::kResponse:
      return "response";
    case MessageKind::kErrorResponse:
      return "error-response";
    case MessageKind::kBatch:
      return "batch";
    case MessageKind::kInvalid:
      return "invalid";
    case MessageKind::kParseError:
      return "parse-error";
  }
  return "invalid";
}

void EnvelopeReader::Read(std::string_view payload, Envelope* out) {
  Reset(out);
  od::document doc;
  if (parser_.iterate(payload.data(), payload.size(), payload.size() + simdjson::SIMDJSON_PADDING)
          .get(doc) != simdjson::SUCCESS) {
    out->kind = MessageKind::kParseError;
    out->problem = "the message is not valid JSON";
    return;
  }
  od::json_type root_type;
  if (doc.type().get(root_type) != simdjson::SUCCESS) {
    out->kind = MessageKind::kParseError;
    out->problem = "the message is not valid JSON";
    return;
  }
  if (root_type == od::json_type::array) {
    od::array arr;
    size_t count = 0;
    if (doc.get_array().get(arr) == simdjson::SUCCESS &&
        arr.count_elements().get(count) == simdjson::SUCCESS) {
      out->kind = count == 0 ? MessageKind::kInvalid : MessageKind::kBatch;
      out->problem = count == 0 ? "an empty batch is not a JSON-RPC message" : "";
    } else {
      out->kind = MessageKind::kParseError;
      out->problem = "the message is not valid JSON";
    }
    return;
  }
  if (root_type != od::json_type::object) {
    // A bare scalar may still be malformed JSON (`not json` starts like `null`): check all of it.
    // Literals and numbers are checked on their token: simdjson 3.0.1's root getters accept
    // `falsex` and `nullx `, and reject `null\t`, `0e99999999999999999999` and numbers longer
    // than 1082 bytes.
    bool well_formed = false;
    switch (root_type) {
      case od::json_type::null:
        well_formed = WholeRootToken(doc, payload) == "null";
        break;
      case od::json_type::boolean: {
        std::string_view token = WholeRootToken(doc, payload);
        well_formed = token == "true" || token == "false";
        break;
      }
      case od::json_type::number:
        well_formed = IsJsonNumber(WholeRootToken(doc, payload));
        break;
      case od::json_type::string: {
        // Unlike the other getters, get_string() does not check for trailing content (`"a" x`).
        std::string_view sv;
        const char* trailing = nullptr;
        well_formed = doc.get_string().get(sv) == simdjson::SUCCESS &&
                      doc.current_location().get(trailing) != simdjson::SUCCESS;
        break;
      }
      default:
        break;
    }
    out->kind = well_formed ? MessageKind::kInvalid : MessageKind::kParseError;
    out->problem =
        well_formed ? "a JSON-RPC message must be an object" : "the message is not valid JSON";
    return;
  }
  od::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    out->kind = MessageKind::kParseError;
    out->problem = "the message is not valid JSON";
    return;
  }
  bool version_ok = false;
  bool has_method = false;
  bool has_id = false;
  bool has_result = false;
  bool has_error = false;
  bool bad_method = false;
  bool bad_id = false;
  bool id_is_null = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      out->kind = MessageKind::kParseError;
      out->problem = "the message is not valid JSON";
      return;
    }
    od::value v;
    if (field.value().get(v) != simdjson::SUCCESS) {
      out->kind = MessageKind::kParseError;
      out->problem = "the message is not valid JSON";
      return;
    }
    if (key == "jsonrpc") {
      std::string_view version;
      version_ok = v.get_string().get(version) == simdjson::SUCCESS && version == "2.0";
    } else if (key == "id") {
      has_id = true;
      // is_null() fails on a token that starts with `n` but is not `null` (`nul`); converting
      // that failed result to bool would throw, so read it with get().
      bool is_null = false;
      if (v.is_null().get(is_null) != simdjson::SUCCESS) {
        out->kind = MessageKind::kParseError;
        out->problem = "the message is not valid JSON";
        return;
      }
      if (is_null) {
        id_is_null = true;  // legal only on an error response to an unreadable request
        out->id = "null";
      } else {
        bad_id = !ReadIdToken(v, &out->id);
      }
    } else if (key == "method") {
      has_method = true;
      bad_method = !ReadString(v, &out->method_storage, &out->method) || out->method.empty();
    } else if (key == "params") {
      ReadParams(v, out);
    } else if (key == "result") {
      has_result = true;
    } else if (key == "error") {
      has_error = true;
    }
    // Every other member is skipped by the iterator without being materialised.
  }
  // The iteration above only checks what it visited; a document with trailing bytes or an
  // unterminated structure is still a parse error.
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) {
    out->kind = MessageKind::kParseError;
    out->problem = "the message is not valid JSON";
    return;
  }
  if (!version_ok) {
    out->problem = R"("jsonrpc" must be "2.0")";
  } else if (bad_id) {
    out->problem = R"("id" must be a string or an integer)";
    out->id = {};
  } else if (has_method) {
    if (id_is_null) {
      out->problem = "a request id cannot be null";
    } else if (bad_method) {
      out->problem = R"("method" must be a non-empty string)";
    } else if (has_result || has_error) {
      out->problem = R"(a message cannot carry both "method" and "result"/"error")";
    } else {
      out->kind = has_id ? MessageKind::kRequest : MessageKind::kNotification;
    }
  } else if (!has_id) {
    out->problem = R"(a message needs "method" (request, notification) or "id" (response))";
  } else if (has_result == has_error) {
    out->problem = R"(a response carries exactly one of "result" and "error")";
  } else if (id_is_null && has_result) {
    out->problem = "a result response needs the id of its request";
  } else {
    out->kind = has_result ? MessageKind::kResponse : MessageKind::kErrorResponse;
  }
}

}  // namespace mcpmw::jsonrpc
