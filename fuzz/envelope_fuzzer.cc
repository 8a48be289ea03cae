// Fuzz target for jsonrpc::EnvelopeReader.
//
// The input is one message, copied into a simdjson::padded_string as a frame in a ReadBuffer
// would be padded. Whatever the bytes, Read() must not crash, throw or read out of bounds, and
// the views it returns must point into the payload or into the Envelope's own storage. When
// simdjson's DOM parser accepts the input (the DOM validates everything, while On-Demand only
// validates what it reads), the classification — kind, id, method, params.name, params.uri,
// params._meta.progressToken — must equal a reference computed from the DOM tree. Objects that
// repeat a member the reader routes on are not compared: JSON leaves their meaning open.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "simdjson.h"
#include "src/jsonrpc/envelope.h"

namespace {

using mcpmw::jsonrpc::Envelope;
using mcpmw::jsonrpc::EnvelopeReader;
using mcpmw::jsonrpc::MessageKind;
using mcpmw::jsonrpc::MessageKindName;

[[noreturn]] void Fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "envelope_fuzzer: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(std::min<size_t>(input.size(), 400)), input.data());
  __builtin_trap();
}

// An id or progress token as the reference sees it: a string's content or an integer's value.
// Raw tokens are compared by meaning, so `"a"` and `"\u0061"` are the same id.
struct Token {
  enum class Type { kString, kSigned, kUnsigned } type;
  std::string text;
  int64_t i = 0;
  uint64_t u = 0;
  bool operator==(const Token&) const = default;
};

// Reads a string or integer element; nullopt for anything else (a float, a bool, a structure).
std::optional<Token> TokenOf(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::STRING:
      return Token{Token::Type::kString, std::string(std::string_view(e.get_string().value()))};
    case simdjson::dom::element_type::INT64:
      return Token{Token::Type::kSigned, {}, e.get_int64().value()};
    case simdjson::dom::element_type::UINT64:
      return Token{Token::Type::kUnsigned, {}, 0, e.get_uint64().value()};
    default:
      return std::nullopt;
  }
}

// Parses a raw token the reader returned back into a Token, with its own DOM parser.
std::optional<Token> TokenOfRaw(std::string_view raw) {
  static simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(raw.data(), raw.size()).get(e) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return TokenOf(e);
}

struct Expected {
  MessageKind kind = MessageKind::kInvalid;
  std::optional<Token> id;  // when the envelope keeps an id (absent or null: see id_is_null)
  bool id_is_null = false;
  std::string method;
  std::string tool_name;
  std::string resource_uri;
  std::optional<Token> progress_token;
};

// True when `obj` names any of `keys` more than once.
bool RepeatsAny(simdjson::dom::object obj, std::initializer_list<std::string_view> keys) {
  std::set<std::string_view> seen;
  for (auto field : obj) {
    for (std::string_view k : keys) {
      if (field.key == k && !seen.insert(k).second) {
        return true;
      }
    }
  }
  return false;
}

// The JSON-RPC 2.0 rules, applied to a validated tree. Returns nullopt when the document is not
// compared (repeated routing members).
std::optional<Expected> Reference(simdjson::dom::element root) {
  Expected x;
  if (root.type() == simdjson::dom::element_type::ARRAY) {
    simdjson::dom::array arr;
    if (root.get_array().get(arr) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    x.kind = arr.size() == 0 ? MessageKind::kInvalid : MessageKind::kBatch;
    return x;
  }
  if (root.type() != simdjson::dom::element_type::OBJECT) {
    x.kind = MessageKind::kInvalid;
    return x;
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  if (RepeatsAny(obj, {"jsonrpc", "id", "method", "params", "result", "error"})) {
    return std::nullopt;
  }
  bool version_ok = false, has_id = false, bad_id = false, has_method = false, bad_method = false;
  bool has_result = false, has_error = false;
  for (auto field : obj) {
    simdjson::dom::element v = field.value;
    if (field.key == "jsonrpc") {
      version_ok = v.is_string() && std::string_view(v.get_string().value()) == "2.0";
    } else if (field.key == "id") {
      has_id = true;
      if (v.is_null()) {
        x.id_is_null = true;
      } else {
        x.id = TokenOf(v);
        bad_id = !x.id.has_value();
      }
    } else if (field.key == "method") {
      has_method = true;
      bad_method = !v.is_string() || v.get_string().value().empty();
      if (v.is_string()) {
        x.method = std::string(std::string_view(v.get_string().value()));
      }
    } else if (field.key == "params" && v.is_object()) {
      simdjson::dom::object params;
      if (v.get_object().get(params) != simdjson::SUCCESS) {
        return std::nullopt;
      }
      if (RepeatsAny(params, {"name", "uri", "_meta"})) {
        return std::nullopt;
      }
      for (auto p : params) {
        if (p.key == "name" && p.value.is_string()) {
          x.tool_name = std::string(std::string_view(p.value.get_string().value()));
        } else if (p.key == "uri" && p.value.is_string()) {
          x.resource_uri = std::string(std::string_view(p.value.get_string().value()));
        } else if (p.key == "_meta" && p.value.is_object()) {
          simdjson::dom::object meta;
          if (p.value.get_object().get(meta) != simdjson::SUCCESS) {
            return std::nullopt;
          }
          if (RepeatsAny(meta, {"progressToken"})) {
            return std::nullopt;
          }
          for (auto m : meta) {
            if (m.key == "progressToken") {
              x.progress_token = TokenOf(m.value);
            }
          }
        }
      }
    } else if (field.key == "result") {
      has_result = true;
    } else if (field.key == "error") {
      has_error = true;
    }
  }
  x.kind = MessageKind::kInvalid;
  if (!version_ok) {
    return x;
  }
  if (bad_id) {
    x.id.reset();
    return x;
  }
  if (has_method) {
    if (!x.id_is_null && !bad_method && !has_result && !has_error) {
      x.kind = has_id ? MessageKind::kRequest : MessageKind::kNotification;
    }
    return x;
  }
  if (has_id && has_result != has_error && !(x.id_is_null && has_result)) {
    x.kind = has_result ? MessageKind::kResponse : MessageKind::kErrorResponse;
  }
  return x;
}

// A view the envelope hands out must lie in the payload or in one of its storage strings.
bool Inside(std::string_view view, std::string_view payload, const Envelope& e) {
  if (view.empty()) {
    return true;
  }
  auto within = [view](std::string_view area) {
    return view.data() >= area.data() && view.data() + view.size() <= area.data() + area.size();
  };
  return within(payload) || within(e.method_storage) || within(e.tool_name_storage) ||
         within(e.resource_uri_storage) || view == "null";
}

void CheckToken(const char* what, std::string_view raw, const std::optional<Token>& expected,
                std::string_view input) {
  if (raw.empty() != !expected.has_value()) {
    Fail(what, input);
  }
  if (expected.has_value() && TokenOfRaw(raw) != expected) {
    Fail(what, input);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static EnvelopeReader reader;
  static simdjson::dom::parser dom;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  simdjson::padded_string payload(input);
  Envelope e;
  reader.Read(payload, &e);

  std::string_view p(payload.data(), payload.size());
  for (std::string_view view : {e.id, e.method, e.tool_name, e.resource_uri, e.progress_token}) {
    if (!Inside(view, p, e)) {
      Fail("a view points outside the payload and the envelope", input);
    }
  }
  if ((e.kind == MessageKind::kInvalid || e.kind == MessageKind::kParseError) ==
      e.problem.empty()) {
    Fail("problem is set exactly when the message is invalid", input);
  }
  if ((e.kind == MessageKind::kRequest || e.kind == MessageKind::kNotification) &&
      e.method.empty()) {
    Fail("a request or notification without a method", input);
  }
  if ((e.kind == MessageKind::kRequest || e.kind == MessageKind::kResponse ||
       e.kind == MessageKind::kErrorResponse) &&
      !e.HasId()) {
    Fail("a request or response without an id", input);
  }
  if (e.kind == MessageKind::kNotification && e.HasId()) {
    Fail("a notification with an id", input);
  }

  simdjson::dom::element root;
  if (simdjson::error_code error = dom.parse(payload).get(root); error != simdjson::SUCCESS) {
    // On-Demand may accept bytes it skipped inside an object or array, but a bare scalar is read
    // whole, so malformed JSON there must be a parse error. NUMBER_ERROR is left out: the DOM
    // also gives it for well-formed numbers it cannot hold (integers past 64 bits, 1e400).
    size_t first = input.find_first_not_of(" \t\r\n");
    bool structure =
        first != std::string_view::npos && (input[first] == '{' || input[first] == '[');
    if (!structure && error != simdjson::NUMBER_ERROR && e.kind != MessageKind::kParseError) {
      Fail("malformed JSON outside any object or array is not a parse error", input);
    }
    return 0;
  }
  std::optional<Expected> x = Reference(root);
  if (!x.has_value()) {
    return 0;
  }
  if (e.kind != x->kind) {
    std::fprintf(stderr, "reader says %s, reference says %s\n",
                 std::string(MessageKindName(e.kind)).c_str(),
                 std::string(MessageKindName(x->kind)).c_str());
    Fail("kind differs from the DOM reference", input);
  }
  if (e.kind == MessageKind::kBatch || root.type() != simdjson::dom::element_type::OBJECT) {
    return 0;
  }
  if (x->id_is_null) {
    if (e.id != "null") {
      Fail("a null id is not kept as null", input);
    }
  } else {
    CheckToken("id differs from the DOM reference", e.id, x->id, input);
  }
  if (e.method != x->method) {
    Fail("method differs from the DOM reference", input);
  }
  if (e.tool_name != x->tool_name) {
    Fail("params.name differs from the DOM reference", input);
  }
  if (e.resource_uri != x->resource_uri) {
    Fail("params.uri differs from the DOM reference", input);
  }
  CheckToken("progressToken differs from the DOM reference", e.progress_token, x->progress_token,
             input);
  return 0;
}
