// mcpmw eval: tool-visibility-filter (seed §6.4), after policy.
//
// (NormalizedProxyContextV1, PolicyEvaluationV1) → ToolFilterDecisionV1: which catalog tools the
// caller may see, and whether the selected tool is one of them.
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. A catalog entry whose description is not a string, or whose scopeRequirements is
// not an array, gives the prototype's fallback: deny with both lists empty.
JsonValue FilterTools(const JsonValue& ctx, const JsonValue& policy);

}  // namespace mcpmw::eval
