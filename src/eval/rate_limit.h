// mcpmw eval: rate-limit-enforcer (seed §6.5), after the tool filter.
//
// (NormalizedProxyContextV1, PolicyEvaluationV1) → RateLimitDecisionV1. Stateless, as in the
// prototype: the caller supplies the per-key counts (historicalCallsInWindow); keyTemplate is
// ignored. The decision id is real SHA-256 (the prototype's own hash was broken, bug B6).
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. Keys are tenantId + ":" + (userId | agentId | normalizedToolName) by dimension. A
// rule fails when its observed count >= limit; retryAfterSeconds is the largest
// max(0, windowSeconds - elapsed seconds) over failed rules, elapsed measured from
// windowStartEpochMs to ctx.receivedAtEpochMs (absent from normalized contexts: 0). A rule that
// is not an object, or rules without a historicalCallsInWindow object, give the prototype's
// fallback: deny, rate-limit-enforcer-error.
JsonValue EnforceRateLimit(const JsonValue& ctx, const JsonValue& policy);

}  // namespace mcpmw::eval
