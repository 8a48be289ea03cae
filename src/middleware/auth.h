// mcpmw middleware: the `auth` stage.
//
// Turns the identity the transport claims (the sidecar's flags and MCP_PROXY_* variables; the
// gateway's verified token) into the principal every later stage reads. Missing parts are filled
// from the bundle's `identity` defaults; scopes are normalised the prototype's way (trimmed,
// lowercased, empty ones dropped, unique, sorted), roles are kept as given. A bundle that lists
// `requireIdentity` refuses requests whose principal lacks one of those parts with -32010
// (reason auth-missing-principal, or auth-missing-scopes when only scopes are missing).
#pragma once

#include "src/middleware/stage.h"

namespace mcpmw::middleware {

class AuthStage final : public Stage {
 public:
  explicit AuthStage(const policy::Bundle& bundle) : bundle_(bundle) {}

  std::string_view name() const override { return "auth"; }
  FactSet reads() const override { return Facts({Fact::kInvocation}); }
  FactSet writes() const override { return Facts({Fact::kPrincipal}); }
  uint8_t hooks() const override { return kOnRequest; }

  Verdict OnRequest(MessageContext& ctx) override;

 private:
  const policy::Bundle& bundle_;
  // The last scopes normalised and the result: a session claims the same scopes on every call.
  std::vector<std::string> scopes_in_;
  std::vector<std::string> scopes_out_;
  bool scopes_cached_ = false;
};

// The prototype's scope normalisation (seed §6.1 step 4), ASCII lowercase.
std::vector<std::string> NormalizeScopes(const std::vector<std::string>& scopes);

}  // namespace mcpmw::middleware
