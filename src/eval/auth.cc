#include "src/eval/auth.h"

#include <string>

#include "src/common/sha256.h"
#include "src/eval/access.h"
#include "src/eval/js_string.h"

namespace mcpmw::eval {

JsonValue EvaluateAuth(const JsonValue& ctx) {
  const std::string_view tenant = JsTrim(StrOf(ctx, "tenantId"));
  const std::string_view user = JsTrim(StrOf(ctx, "userId"));
  const std::string_view agent = JsTrim(StrOf(ctx, "agentId"));
  const std::vector<std::string> scopes = StringsOf(ctx, "scopes");

  JsonValue failed = JsonValue::Array();
  if (agent.empty()) {
    failed.Append("missing-agent");
  }
  if (scopes.empty()) {
    failed.Append("missing-scopes");
  }
  if (tenant.empty()) {
    failed.Append("missing-tenant");
  }
  if (user.empty()) {
    failed.Append("missing-user");
  }
  const bool authenticated = failed.items().empty();
  const bool principal_missing = tenant.empty() || user.empty() || agent.empty();
  const std::string_view status = authenticated ? "allow" : "deny";
  const std::string_view reason = authenticated       ? "auth-ok"
                                  : principal_missing ? "auth-missing-principal"
                                                      : "auth-missing-scopes";

  JsonValue principal = JsonValue::Object();
  principal.Set("tenantId", tenant);
  principal.Set("userId", user);
  principal.Set("agentId", agent);
  JsonValue effective = JsonValue::Array();
  for (const std::string& s : scopes) {
    effective.Append(s);
  }
  principal.Set("effectiveScopes", std::move(effective));

  JsonValue out = JsonValue::Object();
  out.Set("decisionId", Sha256Hex({StrOf(ctx, "invocationId"), "authenticate", status, reason}));
  out.Set("authenticated", authenticated);
  out.Set("status", status);
  out.Set("principal", std::move(principal));
  out.Set("failedChecks", std::move(failed));
  out.Set("reasonCode", reason);
  return out;
}

}  // namespace mcpmw::eval
