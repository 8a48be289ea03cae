// mcpmw eval: trace-recorder (seed §6.9), after response redaction.
//
// (ctx, auth, policy, rate limit, upstream, response) → TraceRecordSetV1: six spans and four
// metrics describing the decisions. Nothing is exported and nothing is timed.
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. traceId is ctx.traceId, or SHA-256(ctx.invocationId) when that is empty. Span i
// (1..6: authenticate, policy, rate-limit, dispatch, response-redaction, cost-meter) has spanId
// SHA-256(traceId + spanKind + spanName + i) and status `error` iff its decision is deny (a
// missing status reads as deny). Spans are listed by spanKind, then spanName.
JsonValue RecordTrace(const JsonValue& ctx, const JsonValue& auth, const JsonValue& policy,
                      const JsonValue& rate_limit, const JsonValue& upstream,
                      const JsonValue& response);

}  // namespace mcpmw::eval
