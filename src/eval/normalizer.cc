#include "src/eval/normalizer.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "src/common/sha256.h"
#include "src/eval/access.h"
#include "src/eval/js_string.h"

namespace mcpmw::eval {
namespace {

using Less = std::function<bool(const JsonValue&, const JsonValue&)>;

// Compares two members of rule objects: numbers numerically, anything else as strings.
int CompareMember(const JsonValue& a, const JsonValue& b, std::string_view key) {
  const JsonValue* x = a.Find(key);
  const JsonValue* y = b.Find(key);
  if (x != nullptr && y != nullptr && x->is_number() && y->is_number()) {
    return x->as_number() < y->as_number() ? -1 : (x->as_number() > y->as_number() ? 1 : 0);
  }
  return CompareCodeUnits(StrOf(a, key), StrOf(b, key));
}

// Ascending by `keys` in turn; a leading '-' on a key sorts that key descending.
Less ByMembers(std::vector<std::string_view> keys) {
  return [keys = std::move(keys)](const JsonValue& a, const JsonValue& b) {
    for (std::string_view key : keys) {
      const bool descending = key.front() == '-';
      const int c = descending ? -CompareMember(a, b, key.substr(1)) : CompareMember(a, b, key);
      if (c != 0) {
        return c < 0;
      }
    }
    return false;
  };
}

// A stably sorted copy of raw[key]; nullopt when it is not an array of objects (the prototype
// throws there and falls back).
std::optional<JsonValue> SortedRules(const JsonValue& raw, std::string_view key, const Less& less) {
  const JsonValue* list = raw.Find(key);
  if (list == nullptr || !list->is_array() ||
      !std::all_of(list->items().begin(), list->items().end(),
                   [](const JsonValue& r) { return r.is_object(); })) {
    return std::nullopt;
  }
  JsonValue out = *list;
  std::stable_sort(out.items().begin(), out.items().end(), less);
  return out;
}

JsonValue NormalizeScopes(const JsonValue* scopes) {
  auto less = [](const std::string& a, const std::string& b) { return CompareCodeUnits(a, b) < 0; };
  std::set<std::string, decltype(less)> unique(less);
  if (scopes != nullptr && scopes->is_array()) {
    for (const JsonValue& s : scopes->items()) {
      if (s.is_string()) {
        std::string scope = JsToLower(JsTrim(s.as_string()));
        if (!scope.empty()) {
          unique.insert(std::move(scope));
        }
      }
    }
  }
  JsonValue out = JsonValue::Array();
  for (const std::string& s : unique) {
    out.Append(s);
  }
  return out;
}

JsonValue Fallback(const JsonValue& raw) {
  const std::string invocation_id = Sha256Hex(CanonicalJson(raw));
  JsonValue ctx = JsonValue::Object();
  ctx.Set("invocationId", invocation_id);
  ctx.Set("traceId", Sha256Hex(invocation_id));
  for (std::string_view key :
       {"normalizedMethod", "normalizedToolName", "tenantId", "userId", "agentId"}) {
    ctx.Set(key, "");
  }
  ctx.Set("scopes", JsonValue::Array());
  ctx.Set("requestPayload", JsonValue::Object());
  ctx.Set("requestTokenEstimate", 0);
  ctx.Set("responseTokenEstimate", 0);
  for (std::string_view key : {"policyRules", "rateLimitRules", "toolCatalog", "redactionRules"}) {
    ctx.Set(key, JsonValue::Array());
  }
  JsonValue pricing = JsonValue::Object();
  pricing.Set("inputTokenPriceUsd", 0);
  pricing.Set("outputTokenPriceUsd", 0);
  pricing.Set("requestBaseFeeUsd", 0);
  ctx.Set("pricing", std::move(pricing));
  ctx.Set("historicalCallsInWindow", JsonValue::Object());
  ctx.Set("windowStartEpochMs", 0);
  return ctx;
}

}  // namespace

JsonValue Normalize(const JsonValue& raw) {
  const JsonValue* envelope = raw.Find("envelope");
  const JsonValue* tool_call = envelope != nullptr ? envelope->Find("toolCall") : nullptr;
  const JsonValue* context = raw.Find("context");
  const JsonValue* usage = raw.Find("usageSnapshot");
  if (envelope == nullptr || !envelope->is_object() || tool_call == nullptr ||
      !tool_call->is_object() || context == nullptr || !context->is_object() || usage == nullptr ||
      !usage->is_object()) {
    return Fallback(raw);
  }
  std::optional<JsonValue> policy_rules =
      SortedRules(raw, "policyRules", ByMembers({"-priority", "ruleId"}));
  std::optional<JsonValue> rate_rules = SortedRules(
      raw, "rateLimitRules", ByMembers({"dimension", "windowSeconds", "limit", "ruleId"}));
  std::optional<JsonValue> catalog =
      SortedRules(raw, "toolCatalog", ByMembers({"serverId", "toolName"}));
  std::optional<JsonValue> redaction_rules =
      SortedRules(raw, "redactionRules", ByMembers({"ruleId", "matchPath"}));
  if (!policy_rules || !rate_rules || !catalog || !redaction_rules) {
    return Fallback(raw);
  }

  std::string invocation_id;
  if (std::string_view hint = StrOf(raw, "invocationIdHint"); !hint.empty()) {
    const JsonValue* request_id = envelope->Find("requestId");
    invocation_id = Sha256Hex({hint, request_id != nullptr ? CanonicalJson(*request_id) : "null"});
  } else {
    JsonValue identity = JsonValue::Object();
    identity.Set("envelope", *envelope);
    identity.Set("context", *context);
    invocation_id = Sha256Hex(CanonicalJson(identity));
  }
  // The trace id hashes the raw method and tool name, not the lowercased ones.
  const std::string trace_id = Sha256Hex({invocation_id, JsToString(envelope->Find("method")),
                                          JsToString(tool_call->Find("toolName"))});

  JsonValue ctx = JsonValue::Object();
  ctx.Set("invocationId", invocation_id);
  ctx.Set("traceId", trace_id);
  ctx.Set("normalizedMethod", JsToLower(StrOf(*envelope, "method")));
  ctx.Set("normalizedToolName", JsToLower(StrOf(*tool_call, "toolName")));
  ctx.Set("tenantId", StrOf(*context, "tenantId"));
  ctx.Set("userId", StrOf(*context, "userId"));
  ctx.Set("agentId", StrOf(*context, "agentId"));
  ctx.Set("scopes", NormalizeScopes(context->Find("scopes")));
  const JsonValue* arguments = tool_call->Find("arguments");
  ctx.Set("requestPayload",
          arguments != nullptr && arguments->is_object() ? *arguments : JsonValue::Object());
  ctx.Set("requestTokenEstimate", NumOf(*usage, "tokenEstimateInput"));
  ctx.Set("responseTokenEstimate", NumOf(*usage, "tokenEstimateOutput"));
  ctx.Set("policyRules", std::move(*policy_rules));
  ctx.Set("rateLimitRules", std::move(*rate_rules));
  ctx.Set("toolCatalog", std::move(*catalog));
  ctx.Set("redactionRules", std::move(*redaction_rules));
  // Copied unvalidated, and left out when absent: the cost meter and rate limiter then fall back.
  if (const JsonValue* pricing = raw.Find("pricing")) {
    ctx.Set("pricing", *pricing);
  }
  if (const JsonValue* history = usage->Find("historicalCallsInWindow")) {
    ctx.Set("historicalCallsInWindow", *history);
  }
  ctx.Set("windowStartEpochMs", NumOf(*usage, "windowStartEpochMs"));
  return ctx;
}

}  // namespace mcpmw::eval
