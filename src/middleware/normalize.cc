#include "src/middleware/normalize.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::middleware {
namespace {

// True when two of `keys` are equal.
bool HasEqualKeys(std::span<std::string_view> keys) {
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

// A member name, left uninitialised until set (a std::string_view array would be zero-filled
// on every call).
struct KeyRef {
  const char* data;
  size_t size;
};

// True when an object at or below `e` has two members of the same name.
bool HasDuplicateMember(simdjson::dom::element e) {
  simdjson::dom::object obj;
  simdjson::dom::array arr;
  if (e.get_object().get(obj) == simdjson::SUCCESS) {
    // Small objects (nearly all of them) compare names pairwise, without sorting or allocating.
    constexpr size_t kPairwiseMax = 16;
    const size_t n = obj.size();
    if (n <= kPairwiseMax) {
      KeyRef keys[kPairwiseMax];  // NOLINT(cppcoreguidelines-pro-type-member-init): set below
      size_t count = 0;
      for (auto [key, value] : obj) {
        if (HasDuplicateMember(value)) {
          return true;
        }
        for (size_t j = 0; j < count; ++j) {
          if (keys[j].size == key.size() &&
              std::memcmp(keys[j].data, key.data(), key.size()) == 0) {
            return true;
          }
        }
        if (count < kPairwiseMax) {
          keys[count++] = {key.data(), key.size()};
        }
      }
      return false;
    }
    std::vector<std::string_view> many;
    many.reserve(n);
    for (auto [key, value] : obj) {
      if (HasDuplicateMember(value)) {
        return true;
      }
      many.push_back(key);
    }
    return HasEqualKeys(many);
  }
  if (e.get_array().get(arr) == simdjson::SUCCESS) {
    for (simdjson::dom::element item : arr) {
      if (HasDuplicateMember(item)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

Verdict NormalizeStage::OnRequest(MessageContext& ctx) {
  ctx.invocation_id = absl::StrCat(session_id_, "-", (*next_sequence_)++);
  ctx.request_kind = ctx.envelope->kind;
  ctx.method.assign(ctx.envelope->method);
  ctx.tool_name.assign(ctx.envelope->tool_name);
  if (ctx.envelope->kind == jsonrpc::MessageKind::kRequest && ctx.MethodIs("tools/call") &&
      ctx.tool_name.empty()) {
    return Deny(ctx, name(), jsonrpc::kInvalidParams,
                "tools/call needs params.name, the name of the tool to call.", "invalid-tool-call");
  }
  if (ctx.envelope->kind != jsonrpc::MessageKind::kRequest) {
    return Verdict::Continue();
  }
  // The envelope reader reads only the members it routes on and skips the rest unchecked, so a
  // request can pass it with invalid JSON elsewhere (`"x":NaN`, a bad escape deep in the
  // arguments). Such a request is refused here: the later stages could not see its arguments
  // (an `args.` policy rule would not match), and the server would reject it anyway.
  simdjson::dom::element doc;
  if (simdjson::error_code error =
          parser_.parse(ctx.payload.data(), ctx.payload.size(), false).get(doc);
      error == simdjson::NUMBER_ERROR) {
    // simdjson says the same of `01` and of an integer past 64 bits (valid JSON, but no stage
    // could compare or redact it exactly).
    return Deny(ctx, name(), jsonrpc::kInvalidParams,
                "The request holds a number mcpmw cannot read: malformed, or an integer beyond 64 "
                "bits, or beyond the range of a double. Send it as a string; the request was not "
                "forwarded.",
                "unreadable-number");
  } else if (error != simdjson::SUCCESS) {
    return Deny(ctx, name(), jsonrpc::kParseError,
                absl::StrCat("Parse error: the request is not valid JSON as a whole (",
                             simdjson::error_message(error), "); it was not forwarded."),
                "invalid-json");
  }
  ctx.request_document = doc;
  if (HasDuplicateMember(doc)) {
    return Deny(ctx, name(), jsonrpc::kInvalidParams,
                "The request names a member of an object twice; send each member once.",
                "duplicate-member");
  }
  return Verdict::Continue();
}

}  // namespace mcpmw::middleware
