#include "src/app/serve_identity.h"

#include "src/common/log.h"
#include "src/common/strings.h"

namespace mcpmw::app {

absl::StatusOr<std::unique_ptr<ServeIdentity>> ServeIdentity::Create(
    const http::GatewayConfig& config) {
  auto out = std::make_unique<ServeIdentity>();
  if (config.identity_json.empty()) {
    LogError(
        "serve: no `identity` in the config: every caller is anonymous (add identity.jwt "
        "or identity.apiKeys to authenticate callers)");
    return out;
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(config.identity_json);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root); err) {
    return absl::InternalError("the identity section could not be re-read");
  }
  absl::StatusOr<http::identity::IdentityConfig> ic =
      http::identity::ParseIdentityConfig(root, "/identity", config.base_dir);
  if (!ic.ok()) {
    return ic.status();
  }
  absl::StatusOr<std::unique_ptr<http::identity::Authenticator>> auth =
      http::identity::Authenticator::Create(*std::move(ic));
  if (!auth.ok()) {
    return auth.status();
  }
  out->auth_ = *std::move(auth);
  return out;
}

http::AuthOutcome ServeIdentity::Authenticate(const http::Request& request) const {
  http::AuthOutcome out;
  if (auth_ == nullptr) {
    out.ok = true;
    out.credential_id = "anonymous";
    return out;
  }
  http::identity::AuthResult r =
      auth_->Authenticate(request.Find("authorization"), request.Find("x-api-key"));
  if (r.ok()) {
    out.ok = true;
    out.principal = std::move(r.principal);
    out.credential_id = std::move(r.credential_id);
    return out;
  }
  out.status = r.http_status;
  out.www_authenticate = std::move(r.www_authenticate);
  out.message = r.description.empty() ? "authentication required" : r.description;
  out.error = std::move(r.error);
  return out;
}

std::string ServeIdentity::MetadataJson() const {
  if (auth_ == nullptr) {
    return R"({"bearer_methods_supported":["header"]})";
  }
  return auth_->ProtectedResourceMetadataJson();
}

absl::Status ServeIdentity::Reload() {
  return auth_ == nullptr ? absl::OkStatus() : auth_->Reload();
}

}  // namespace mcpmw::app
