#include "src/middleware/auth.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/common/strings.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::middleware {

std::vector<std::string> NormalizeScopes(const std::vector<std::string>& scopes) {
  std::vector<std::string> out;
  out.reserve(scopes.size());
  for (const std::string& s : scopes) {
    std::string scope(absl::StripAsciiWhitespace(s));
    absl::AsciiStrToLower(&scope);
    if (!scope.empty()) {
      out.push_back(std::move(scope));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Verdict AuthStage::OnRequest(MessageContext& ctx) {
  static const Principal kNobody;
  const Principal& claimed = ctx.claimed != nullptr ? *ctx.claimed : kNobody;
  const policy::Identity& defaults = bundle_.identity;
  Principal& p = ctx.principal;
  p.tenant = claimed.tenant.empty() ? defaults.tenant : claimed.tenant;
  p.user = claimed.user.empty() ? defaults.user : claimed.user;
  p.agent = claimed.agent.empty() ? defaults.agent : claimed.agent;
  p.roles = claimed.roles.empty() ? defaults.roles : claimed.roles;
  const std::vector<std::string>& scopes =
      claimed.scopes.empty() ? defaults.scopes : claimed.scopes;
  if (!scopes_cached_ || scopes != scopes_in_) {
    scopes_out_ = NormalizeScopes(scopes);
    scopes_in_ = scopes;
    scopes_cached_ = true;
  }
  p.scopes = scopes_out_;

  std::vector<std::string> missing;
  if (bundle_.require_tenant && p.tenant.empty()) {
    missing.push_back("tenant");
  }
  if (bundle_.require_user && p.user.empty()) {
    missing.push_back("user");
  }
  if (bundle_.require_agent && p.agent.empty()) {
    missing.push_back("agent");
  }
  if (bundle_.require_scopes && p.scopes.empty()) {
    missing.push_back("scopes");
  }
  if (missing.empty()) {
    return Verdict::Continue();
  }
  std::string_view reason = missing.size() == 1 && missing[0] == "scopes"
                                ? "auth-missing-scopes"
                                : "auth-missing-principal";
  return Deny(
      ctx, name(), kCodeUnauthenticated,
      absl::StrCat("The caller's identity is incomplete: no ", absl::StrJoin(missing, ", no "),
                   ". Set them with --tenant/--user/--agent/--scopes or the MCP_PROXY_TENANT_ID, "
                   "MCP_PROXY_USER_ID, MCP_PROXY_AGENT_ID, MCP_PROXY_SCOPES variables."),
      reason);
}

}  // namespace mcpmw::middleware
