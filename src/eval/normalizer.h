// mcpmw eval: request-normalizer (seed §6.1), the pipeline's first stage.
//
// RawProxyInvocationV1 → NormalizedProxyContextV1: derives invocationId and traceId, lowercases
// the method and tool name, normalizes scopes, and sorts the four rule lists into the orders every
// later stage relies on.
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. A structurally unusable input (envelope, envelope.toolCall, context or
// usageSnapshot not an object, a rule list not an array of objects) yields the prototype's
// fallback context: empty identity and lists, zero pricing, invocationId =
// SHA-256(canonicalJson(raw)), traceId = SHA-256(invocationId).
JsonValue Normalize(const JsonValue& raw);

}  // namespace mcpmw::eval
