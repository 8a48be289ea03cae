#include "src/eval/tool_filter.h"

#include <algorithm>
#include <optional>
#include <string>

#include "src/common/sha256.h"
#include "src/eval/access.h"
#include "src/eval/js_string.h"

namespace mcpmw::eval {
namespace {

constexpr size_t kSummaryUnits = 120;

JsonValue Decision(const JsonValue& ctx, bool selected, JsonValue allowed, JsonValue blocked) {
  const std::string_view status = selected ? "allow" : "deny";
  JsonValue out = JsonValue::Object();
  out.Set("decisionId", Sha256Hex({StrOf(ctx, "invocationId"), "tool-filter", status,
                                   StrOf(ctx, "normalizedToolName")}));
  out.Set("status", status);
  out.Set("allowedTools", std::move(allowed));
  out.Set("blockedTools", std::move(blocked));
  out.Set("selectedToolAllowed", selected);
  return out;
}

JsonValue Blocked(const JsonValue& entry, std::string_view reason) {
  JsonValue out = JsonValue::Object();
  CopyIfPresent(out, entry, "serverId");
  CopyIfPresent(out, entry, "toolName");
  out.Set("reasonCode", reason);
  return out;
}

// Sorts `list` by the string members `keys`, in turn, by UTF-16 code units.
void SortBy(JsonValue& list, std::initializer_list<std::string_view> keys) {
  std::stable_sort(list.items().begin(), list.items().end(),
                   [keys](const JsonValue& a, const JsonValue& b) {
                     for (std::string_view key : keys) {
                       if (int c = CompareCodeUnits(StrOf(a, key), StrOf(b, key)); c != 0) {
                         return c < 0;
                       }
                     }
                     return false;
                   });
}

}  // namespace

JsonValue FilterTools(const JsonValue& ctx, const JsonValue& policy) {
  const std::vector<JsonValue>& catalog = ItemsOf(ctx, "toolCatalog");
  JsonValue allowed = JsonValue::Array();
  JsonValue blocked = JsonValue::Array();
  if (StrOf(policy, "status") == "deny") {
    for (const JsonValue& entry : catalog) {
      blocked.Append(Blocked(entry, "policy-deny"));
    }
    SortBy(blocked, {"reasonCode", "serverId", "toolName"});
    return Decision(ctx, false, std::move(allowed), std::move(blocked));
  }

  const std::vector<std::string> scopes = StringsOf(ctx, "scopes");
  for (const JsonValue& entry : catalog) {
    const JsonValue* requirements = entry.Find("scopeRequirements");
    const JsonValue* description = entry.Find("description");
    if (StrOf(entry, "visibility") == "private") {
      blocked.Append(Blocked(entry, "tool-private"));
      continue;
    }
    if (requirements == nullptr || !requirements->is_array()) {
      return Decision(ctx, false, JsonValue::Array(), JsonValue::Array());
    }
    // Requirements are compared exactly (not lowercased) with the normalized scopes.
    const bool missing = std::any_of(
        requirements->items().begin(), requirements->items().end(), [&](const JsonValue& r) {
          return !r.is_string() ||
                 std::find(scopes.begin(), scopes.end(), r.as_string()) == scopes.end();
        });
    if (missing) {
      blocked.Append(Blocked(entry, "missing-scope"));
      continue;
    }
    if (description == nullptr || !description->is_string()) {
      return Decision(ctx, false, JsonValue::Array(), JsonValue::Array());
    }
    JsonValue tool = JsonValue::Object();
    CopyIfPresent(tool, entry, "serverId");
    CopyIfPresent(tool, entry, "toolName");
    tool.Set("summarizedDescription", Utf16Prefix(description->as_string(), kSummaryUnits));
    allowed.Append(std::move(tool));
  }
  SortBy(allowed, {"serverId", "toolName"});
  SortBy(blocked, {"reasonCode", "serverId", "toolName"});

  // The selected server is read from the tool arguments (bug B2, kept: see pipeline.h).
  const JsonValue* payload = ctx.Find("requestPayload");
  const std::string_view server = payload != nullptr ? StrOf(*payload, "serverId") : "";
  const std::string_view tool_name = StrOf(ctx, "normalizedToolName");
  const bool selected =
      std::any_of(allowed.items().begin(), allowed.items().end(), [&](const JsonValue& t) {
        const JsonValue* id = t.Find("serverId");
        return id != nullptr && id->is_string() && id->as_string() == server &&
               JsToLower(StrOf(t, "toolName")) == tool_name;
      });
  return Decision(ctx, selected, std::move(allowed), std::move(blocked));
}

}  // namespace mcpmw::eval
