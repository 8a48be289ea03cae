// mcpmw eval: upstream-dispatcher (seed §6.7), after request redaction.
//
// (ctx, AuthEvaluationV1, PolicyEvaluationV1, RateLimitDecisionV1, RedactedRequestV1) →
// UpstreamExecutionResultV1. Offline, as in the prototype: nothing is sent anywhere; an allowed
// request gets a synthetic HTTP 200 result echoing {arguments, serverId, toolName}.
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. The first blocker wins, in this order: authenticate, policy, rate-limit (HTTP
// 429), request-redaction (HTTP 403 for all but rate-limit). Not blocked: HTTP 200 and
// upstreamLatencyMs = Math.round(min(2000, 5 + requestTokenEstimate / 10)).
JsonValue Dispatch(const JsonValue& ctx, const JsonValue& auth, const JsonValue& policy,
                   const JsonValue& rate_limit, const JsonValue& redacted_request);

}  // namespace mcpmw::eval
