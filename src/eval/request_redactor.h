// mcpmw eval: request-redactor (seed §6.6), after the rate limiter.
//
// (NormalizedProxyContextV1, PolicyEvaluationV1, ToolFilterDecisionV1) → RedactedRequestV1:
// applies the configured redaction rules (mask, drop, hash) to a copy of the tool arguments, or
// denies when policy denied or the selected tool is not allowed.
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. Rules run in ruleId, matchPath order on the mutated copy. matchPath is a
// dot-separated list of object members and array indices, with no root marker and no
// wildcards; a path that does not resolve (or has an empty segment) is skipped. Mode `mask` sets
// `replacement`, `drop` deletes, and any other mode (`hash`) replaces a string value with its
// SHA-256 hex. Events carry the original value in full, as the prototype's did. A rule that is
// not an object or has a non-string matchPath denies the request (the prototype's fallback).
JsonValue RedactRequest(const JsonValue& ctx, const JsonValue& policy,
                        const JsonValue& tool_filter);

}  // namespace mcpmw::eval
