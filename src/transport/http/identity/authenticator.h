// mcpmw transport/http/identity: who is calling the HTTP gateway (ARCHITECTURE.md §7).
//
//   request headers ─► Authenticator::Authenticate(authorization, x-api-key)
//        │   ├─ X-API-Key: <key>            ─► ApiKeyTable (api_keys.h)
//        │   ├─ Authorization: Bearer <key>  ─► ApiKeyTable, when the value is a configured key
//        │   ├─ Authorization: Bearer <jwt>  ─► KeySet::Select + JwtVerifier (jwks.h, jwt.h)
//        │   │                                  claims mapped to tenant/user/agent/scopes/roles
//        │   └─ nothing                      ─► the anonymous principal, when allowed
//        ├─ requiredScopes ⊆ principal.scopes, else 403 insufficient_scope
//        ▼
//   AuthResult: the principal the gateway hands the chain as MessageContext::claimed (the auth
//   stage fills empty parts from the bundle's identity defaults), or the HTTP status and the
//   WWW-Authenticate challenge to answer with (RFC 6750 §3, with RFC 9728's resource_metadata).
//
// mcpmw is an OAuth 2.1 resource server here: it never forwards the client's token upstream and
// never puts a token, or anything a token chose, into a result, an error or a log line.
//
// Threading: Authenticate, Reload and the accessors may be called from any thread; the key set
// is swapped whole under a mutex, so a request sees the old keys or the new ones, never a mix.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "simdjson.h"
#include "src/middleware/stage.h"
#include "src/transport/http/identity/api_keys.h"
#include "src/transport/http/identity/jwks.h"
#include "src/transport/http/identity/jwt.h"

namespace mcpmw::http::identity {

// Which top-level JWT claim fills each part of the principal.
struct ClaimNames {
  std::string tenant = "tenant_id";
  std::string user = "sub";
  std::string agent = "azp";
  std::string scopes = "scope";  // a space-separated string (OAuth) or an array of strings
  std::string roles = "roles";   // an array of strings, or a space-separated string
};

struct JwtConfig {
  JwtOptions options;  // issuer, audience (empty: not checked), clock skew
  KeyFiles key_files;  // absolute paths (ParseIdentityConfig resolves relative ones)
  ClaimNames claims;
  // The keys as ParseIdentityConfig loaded them; Authenticator::Create loads key_files when null
  // and takes them over (null in Authenticator::config() afterwards).
  std::shared_ptr<const KeySet> keys;
};

struct IdentityConfig {
  std::optional<JwtConfig> jwt;
  ApiKeyTable api_keys;
  std::vector<std::string> required_scopes;  // normalised (middleware::NormalizeScopes)
  bool anonymous = false;  // no credentials → the anonymous principal instead of a 401
  std::string resource;    // this endpoint's URL, e.g. "http://127.0.0.1:8080/mcp"
  std::vector<std::string> authorization_servers;
};

// Parses the gateway config's `identity` object at `pointer` ("/identity"); relative key file
// paths resolve against `base_dir` (the config file's folder), and the key files are read now.
// InvalidArgument starting with the JSON pointer of the bad value
// ("/identity/jwt/clockSkewSeconds: too large: at most 3600", "/identity/jwt/jwksFile:
// /etc/mcpmw/jwks.json: /keys/0/crv: …"); unknown keys are refused.
absl::StatusOr<IdentityConfig> ParseIdentityConfig(simdjson::dom::element identity,
                                                   std::string_view pointer,
                                                   std::string_view base_dir);

enum class CredentialKind : uint8_t { kAnonymous, kApiKey, kJwt };

// The outcome of one Authenticate call: a principal (ok()) or what to answer instead.
struct AuthResult {
  // ok(): who is calling.
  CredentialKind kind = CredentialKind::kAnonymous;
  middleware::Principal principal;
  // For audit: "apikey:<id>", "jwt:<iss>/<sub>", or "anonymous". Never secret.
  std::string credential_id;

  // !ok(): the response. http_status is 400 (a malformed Authorization header, or two
  // credentials), 401 (no credentials, or a bad, unknown or expired one) or 403 (a valid
  // credential without a required scope).
  int http_status = 0;
  // "invalid_request", "invalid_token", "insufficient_scope", or "" when no credentials came.
  std::string error;
  // One phrase for a person ("token expired"); never contains the credential.
  std::string description;
  // The WWW-Authenticate header value to send with the response, e.g.
  // Bearer resource_metadata="http://h/.well-known/oauth-protected-resource/mcp",
  //   error="invalid_token", error_description="token expired"
  std::string www_authenticate;

  bool ok() const { return http_status == 0; }
};

class Authenticator {
 public:
  // Loads the key files when `config.jwt.keys` is null. Errors name the file and what is wrong.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(IdentityConfig config,
                                                               WallClock wall_clock = nullptr);

  // Authenticates one request from its `Authorization` and `X-API-Key` header values (nullptr:
  // the header is absent). A Bearer value that is a configured API key authenticates as that
  // key; any other Bearer value is verified as a JWT when `jwt` is configured.
  AuthResult Authenticate(const std::string* authorization_header,
                          const std::string* api_key_header) const;

  // Re-reads the JWT key files (JWKS and shared secret). On error the current keys stay in use
  // and the status says why ("/etc/mcpmw/jwks.json: /keys/1/kid: …"). OK and nothing to do
  // when no `jwt` is configured.
  absl::Status Reload();

  // The RFC 9728 protected-resource metadata document (JSON): resource, authorization_servers,
  // bearer_methods_supported ["header"], scopes_supported (the required scopes).
  std::string ProtectedResourceMetadataJson() const;
  // Where that document is served: the RFC 9728 §3.1 well-known path for `resource`
  // ("/.well-known/oauth-protected-resource/mcp" for ".../mcp"), and its absolute URL (what
  // challenges carry as resource_metadata).
  const std::string& metadata_path() const { return metadata_path_; }
  const std::string& metadata_url() const { return metadata_url_; }

  const IdentityConfig& config() const { return config_; }

 private:
  Authenticator(IdentityConfig config, WallClock wall_clock, std::string metadata_path,
                std::string metadata_url);

  AuthResult Fail(int http_status, std::string_view error, std::string_view description) const;
  AuthResult FromApiKey(const ApiKey& key) const;
  AuthResult FromJwt(std::string_view token) const;
  AuthResult CheckScopes(AuthResult result) const;
  std::shared_ptr<const KeySet> keys() const;

  IdentityConfig config_;
  std::optional<JwtVerifier> verifier_;
  std::string metadata_path_;
  std::string metadata_url_;
  mutable std::mutex mu_;
  std::shared_ptr<const KeySet> keys_;  // guarded by mu_
};

}  // namespace mcpmw::http::identity
