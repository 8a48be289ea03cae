#include "src/eval/dispatcher.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "src/common/sha256.h"
#include "src/eval/access.h"

namespace mcpmw::eval {
namespace {

struct Blocker {
  std::string_view stage;
  std::string_view code;
  std::string_view message;
  int http_status;
};

constexpr Blocker kAuthenticate = {"authenticate", "UPSTREAM_BLOCKED_AUTHENTICATE",
                                   "Dispatch blocked at authenticate stage.", 403};
constexpr Blocker kPolicy = {"policy", "UPSTREAM_BLOCKED_POLICY",
                             "Dispatch blocked at policy stage.", 403};
constexpr Blocker kRateLimit = {"rate-limit", "UPSTREAM_BLOCKED_RATE_LIMIT",
                                "Dispatch blocked at rate-limit stage.", 429};
constexpr Blocker kRequestRedaction = {"request-redaction", "UPSTREAM_BLOCKED_REQUEST_REDACTION",
                                       "Dispatch blocked at request-redaction stage.", 403};

const Blocker* FirstBlocker(const JsonValue& auth, const JsonValue& policy,
                            const JsonValue& rate_limit, const JsonValue& redacted_request) {
  if (StrOf(auth, "status") == "deny" || !IsTrue(auth, "authenticated")) {
    return &kAuthenticate;
  }
  if (StrOf(policy, "status") == "deny") {
    return &kPolicy;
  }
  if (StrOf(rate_limit, "status") == "deny" || !IsTrue(rate_limit, "allowed")) {
    return &kRateLimit;
  }
  if (StrOf(redacted_request, "status") == "deny") {
    return &kRequestRedaction;
  }
  return nullptr;
}

std::string DecisionId(const JsonValue& ctx, std::string_view status, int http_status) {
  return Sha256Hex({StrOf(ctx, "invocationId"), "dispatch", status, std::to_string(http_status)});
}

}  // namespace

JsonValue Dispatch(const JsonValue& ctx, const JsonValue& auth, const JsonValue& policy,
                   const JsonValue& rate_limit, const JsonValue& redacted_request) {
  JsonValue out = JsonValue::Object();
  if (const Blocker* b = FirstBlocker(auth, policy, rate_limit, redacted_request)) {
    JsonValue error = JsonValue::Object();
    error.Set("code", b->code);
    error.Set("message", b->message);
    JsonValue response = JsonValue::Object();
    response.Set("error", std::move(error));
    out.Set("decisionId", DecisionId(ctx, "deny", b->http_status));
    out.Set("status", "deny");
    out.Set("dispatched", false);
    out.Set("blockedByStage", b->stage);
    out.Set("httpStatusCode", b->http_status);
    out.Set("upstreamLatencyMs", 0);
    out.Set("upstreamResponse", std::move(response));
    return out;
  }
  JsonValue result = JsonValue::Object();
  CopyIfPresent(result, redacted_request, "arguments");
  CopyIfPresent(result, redacted_request, "serverId");
  CopyIfPresent(result, redacted_request, "toolName");
  JsonValue response = JsonValue::Object();
  response.Set("result", SortKeysDeep(result));
  // Math.round is floor(x + 0.5); the estimate is not clamped, so the latency can be negative.
  const double latency =
      std::floor(std::min(2000.0, 5 + NumOf(ctx, "requestTokenEstimate") / 10) + 0.5);
  out.Set("decisionId", DecisionId(ctx, "allow", 200));
  out.Set("status", "allow");
  out.Set("dispatched", true);
  out.Set("httpStatusCode", 200);
  out.Set("upstreamLatencyMs", latency);
  out.Set("upstreamResponse", std::move(response));
  return out;
}

}  // namespace mcpmw::eval
