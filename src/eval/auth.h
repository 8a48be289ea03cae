// mcpmw eval: auth-evaluator (seed §6.2), after the normalizer.
//
// NormalizedProxyContextV1 → AuthEvaluationV1. Checks only that tenant, user and agent are
// non-blank and that at least one scope is present; the prototype has no credentials.
#pragma once

#include "src/eval/json_value.h"

namespace mcpmw::eval {

// Never fails. failedChecks ⊆ {missing-agent, missing-scopes, missing-tenant, missing-user}
// (in that order); reasonCode auth-ok, auth-missing-principal or auth-missing-scopes.
JsonValue EvaluateAuth(const JsonValue& ctx);

}  // namespace mcpmw::eval
