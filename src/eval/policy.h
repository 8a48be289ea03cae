// mcpmw eval: policy-evaluator (seed §6.3), after auth.
//
// (NormalizedProxyContextV1, AuthEvaluationV1) → PolicyEvaluationV1. Conditions use the
// prototype's legacy substring matching (policy::ConditionLanguage::kLegacySubstring) with bug B1
// fixed: an empty needle (no string serverId in the arguments, an empty tool name) matches
// nothing instead of everything.
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. Only rules of stage policy, request-redaction, response-redaction or dispatch are
// eligible; they are ordered by priority descending, then ruleId by UTF-16 code units. A rule
// whose conditionDsl is not a string makes the whole evaluation the prototype's fallback: deny,
// policy-evaluator-failed.
JsonValue EvaluatePolicy(const JsonValue& ctx, const JsonValue& auth);

}  // namespace mcpmw::eval
