#include "src/eval/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "src/common/sha256.h"
#include "src/common/strings.h"
#include "src/eval/access.h"
#include "src/eval/js_string.h"

namespace mcpmw::eval {
namespace {

JsonValue Denied(const JsonValue& ctx, std::string_view reason) {
  JsonValue out = JsonValue::Object();
  out.Set("decisionId", Sha256Hex({StrOf(ctx, "invocationId"), "rate-limit", "deny", reason}));
  out.Set("status", "deny");
  out.Set("allowed", false);
  out.Set("retryAfterSeconds", 0);
  out.Set("appliedRules", JsonValue::Array());
  out.Set("deniedReasonCode", reason);
  return out;
}

// JS `observed >= limit` for a JSON limit: null counts as 0, a missing or non-numeric limit
// (NaN) never fails.
bool Exceeds(double observed, const JsonValue* limit) {
  if (limit == nullptr) {
    return false;
  }
  if (limit->is_null()) {
    return observed >= 0;
  }
  if (limit->is_bool()) {
    return observed >= (limit->as_bool() ? 1 : 0);
  }
  return limit->is_number() && observed >= limit->as_number();
}

int CompareRules(const JsonValue& a, const JsonValue& b) {
  if (int c = CompareCodeUnits(StrOf(a, "dimension"), StrOf(b, "dimension")); c != 0) {
    return c;
  }
  for (std::string_view key : {"windowSeconds", "limit"}) {
    const double x = NumOf(a, key);
    const double y = NumOf(b, key);
    if (x != y) {
      return x < y ? -1 : 1;
    }
  }
  return CompareCodeUnits(StrOf(a, "ruleId"), StrOf(b, "ruleId"));
}

}  // namespace

JsonValue EnforceRateLimit(const JsonValue& ctx, const JsonValue& policy) {
  if (StrOf(policy, "status") == "deny") {
    return Denied(ctx, "policy-deny");
  }
  const std::vector<JsonValue>& rules = ItemsOf(ctx, "rateLimitRules");
  const JsonValue* history = ctx.Find("historicalCallsInWindow");
  if (!rules.empty() && (history == nullptr || !history->is_object())) {
    return Denied(ctx, "rate-limit-enforcer-error");
  }

  const std::string_view tenant = StrOf(ctx, "tenantId");
  const double window_start = NumOf(ctx, "windowStartEpochMs");
  const double received_at = NumOf(ctx, "receivedAtEpochMs", window_start);
  const double elapsed_seconds = std::floor((received_at - window_start) / 1000);
  JsonValue applied = JsonValue::Array();
  bool failed = false;
  double retry_after = 0;
  for (const JsonValue& rule : rules) {
    if (!rule.is_object()) {
      return Denied(ctx, "rate-limit-enforcer-error");
    }
    const std::string_view dimension = StrOf(rule, "dimension");
    const std::string_view who = dimension == "user"    ? StrOf(ctx, "userId")
                                 : dimension == "agent" ? StrOf(ctx, "agentId")
                                                        : StrOf(ctx, "normalizedToolName");
    const std::string key = absl::StrCat(Sv(tenant), ":", Sv(who));
    const double observed = NumOf(*history, key);
    if (Exceeds(observed, rule.Find("limit"))) {
      failed = true;
      retry_after = std::max(retry_after, NumOf(rule, "windowSeconds") - elapsed_seconds);
    }
    JsonValue entry = JsonValue::Object();
    CopyIfPresent(entry, rule, "ruleId");
    CopyIfPresent(entry, rule, "dimension");
    entry.Set("key", key);
    CopyIfPresent(entry, rule, "windowSeconds");
    CopyIfPresent(entry, rule, "limit");
    entry.Set("observedCount", observed);
    applied.Append(std::move(entry));
  }
  std::stable_sort(applied.items().begin(), applied.items().end(),
                   [](const JsonValue& a, const JsonValue& b) { return CompareRules(a, b) < 0; });

  if (failed) {
    JsonValue out = Denied(ctx, "rate-limit-exceeded");
    out.Set("retryAfterSeconds", std::max(0.0, retry_after));
    out.Set("appliedRules", std::move(applied));
    return out;
  }
  JsonValue out = JsonValue::Object();
  out.Set("decisionId", Sha256Hex({StrOf(ctx, "invocationId"), "rate-limit", "allow", "none"}));
  out.Set("status", "allow");
  out.Set("allowed", true);
  out.Set("retryAfterSeconds", 0);
  out.Set("appliedRules", std::move(applied));
  return out;
}

}  // namespace mcpmw::eval
