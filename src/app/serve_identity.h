// mcpmw app: the gateway's identity, from the config's `identity` object to an answer per
// request (src/transport/http/identity/authenticator.h does the verifying).
//
// Without an `identity` object every caller is the anonymous principal (the policy bundle's
// identity defaults apply); the gateway says so at start-up.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "src/transport/http/gateway.h"
#include "src/transport/http/gateway_config.h"
#include "src/transport/http/identity/authenticator.h"

namespace mcpmw::app {

class ServeIdentity {
 public:
  static absl::StatusOr<std::unique_ptr<ServeIdentity>> Create(const http::GatewayConfig& config);

  // Reads Authorization and X-API-Key from `request`.
  http::AuthOutcome Authenticate(const http::Request& request) const;
  // The RFC 9728 document served at /.well-known/oauth-protected-resource.
  std::string MetadataJson() const;
  // Re-reads the JWT key files (SIGHUP).
  absl::Status Reload();

 private:
  std::unique_ptr<http::identity::Authenticator> auth_;  // null: anonymous only
};

}  // namespace mcpmw::app
