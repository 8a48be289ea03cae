#include "src/transport/http/identity/authenticator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "src/common/json_reader.h"
#include "src/common/status.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/auth.h"

namespace mcpmw::http::identity {
namespace {

using json::Bad;
using json::ObjectReader;

constexpr uint64_t kMaxClockSkewSeconds = 3600;
constexpr std::string_view kWellKnown = "/.well-known/oauth-protected-resource";

std::string ResolvePath(std::string_view path, std::string_view base_dir) {
  if (path.starts_with('/') || base_dir.empty()) {
    return std::string(path);
  }
  return absl::StrCat(Sv(base_dir), base_dir.ends_with('/') ? "" : "/", Sv(path));
}

// Characters allowed inside a WWW-Authenticate quoted value without escaping (RFC 6750 §3:
// %x20-21 / %x23-5B / %x5D-7E), so a value needs no backslashes and cannot end the header.
bool IsQuotedSafe(char c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; }
// A scope-token (RFC 6749 §3.3): the same without the space.
bool IsScopeChar(char c) { return c > 0x20 && IsQuotedSafe(c); }

struct UrlParts {
  std::string origin;  // scheme://authority
  std::string path;    // "" or starting with '/'
};

// An absolute http(s) URL without query or fragment, taken apart; nullopt otherwise.
std::optional<UrlParts> SplitUrl(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return std::nullopt;
  }
  std::string scheme = absl::AsciiStrToLower(Sv(url.substr(0, scheme_end)));
  if (scheme != "http" && scheme != "https") {
    return std::nullopt;
  }
  if (!std::all_of(url.begin(), url.end(), [](char c) { return IsScopeChar(c); }) ||
      url.find_first_of("?#") != std::string_view::npos) {
    return std::nullopt;
  }
  size_t authority_end = url.find('/', scheme_end + 3);
  if (authority_end == std::string_view::npos) {
    authority_end = url.size();
  }
  if (authority_end == scheme_end + 3) {
    return std::nullopt;  // no host
  }
  UrlParts parts{std::string(url.substr(0, authority_end)), std::string(url.substr(authority_end))};
  if (parts.path == "/") {
    parts.path.clear();
  }
  return parts;
}

absl::StatusOr<ClaimNames> ParseClaimNames(ObjectReader& r) {
  ClaimNames names;
  for (auto [key, field] : {std::pair{"tenant", &names.tenant}, std::pair{"user", &names.user},
                            std::pair{"agent", &names.agent}, std::pair{"scopes", &names.scopes},
                            std::pair{"roles", &names.roles}}) {
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> name, r.String(key));
    if (name) {
      if (name->empty()) {
        return Bad(r.Ptr(key), "required: a non-empty claim name");
      }
      *field = *std::move(name);
    }
  }
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  return names;
}

absl::StatusOr<JwtConfig> ParseJwtConfig(ObjectReader& r, std::string_view base_dir) {
  JwtConfig jwt;
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> issuer, r.String("issuer"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> audience, r.String("audience"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> jwks_file, r.String("jwksFile"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> secret_file, r.String("hs256SecretFile"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> skew,
                         r.Whole("clockSkewSeconds", kMaxClockSkewSeconds));
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> claims, r.Object("claims"));
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());

  jwt.options.issuer = issuer.value_or("");
  jwt.options.audience = audience.value_or("");
  if (skew) {
    jwt.options.clock_skew = std::chrono::seconds(static_cast<int64_t>(*skew));
  }
  if (claims) {
    MCPMW_ASSIGN_OR_RETURN(jwt.claims, ParseClaimNames(*claims));
  }
  if ((!jwks_file || jwks_file->empty()) && (!secret_file || secret_file->empty())) {
    return Bad(r.Ptr("jwksFile"), "required: jwksFile, hs256SecretFile, or both");
  }
  std::vector<JwsKey> keys;
  if (jwks_file && !jwks_file->empty()) {
    jwt.key_files.jwks_file = ResolvePath(*jwks_file, base_dir);
    absl::StatusOr<std::vector<JwsKey>> loaded = LoadJwksFile(jwt.key_files.jwks_file);
    if (!loaded.ok()) {
      return Bad(r.Ptr("jwksFile"), Sv(loaded.status().message()));
    }
    keys = *std::move(loaded);
  }
  if (secret_file && !secret_file->empty()) {
    jwt.key_files.hs256_secret_file = ResolvePath(*secret_file, base_dir);
    absl::StatusOr<JwsKey> secret = LoadHs256SecretFile(jwt.key_files.hs256_secret_file);
    if (!secret.ok()) {
      return Bad(r.Ptr("hs256SecretFile"), Sv(secret.status().message()));
    }
    keys.push_back(*std::move(secret));
  }
  absl::StatusOr<KeySet> set = KeySet::Create(std::move(keys));
  if (!set.ok()) {
    return Bad(r.pointer(), Sv(set.status().message()));
  }
  jwt.keys = std::make_shared<const KeySet>(*std::move(set));
  return jwt;
}

// A mapped claim that must be one string; "" when the token does not have it.
absl::StatusOr<std::string> SingleClaim(const Claims& claims, const std::string& name) {
  auto it = claims.values.find(name);
  if (it == claims.values.end()) {
    return std::string();
  }
  if (it->second.kind != ClaimValue::Kind::kString) {
    return absl::UnauthenticatedError(absl::StrCat("token claim ", name, " is not a string"));
  }
  return it->second.strings.front();
}

// A mapped claim that is a list: an array of strings, or one space-separated string.
absl::StatusOr<std::vector<std::string>> ListClaim(const Claims& claims, const std::string& name) {
  std::vector<std::string> out;
  auto it = claims.values.find(name);
  if (it == claims.values.end()) {
    return out;
  }
  switch (it->second.kind) {
    case ClaimValue::Kind::kString:
      for (absl::string_view part :
           absl::StrSplit(it->second.strings.front(), ' ', absl::SkipEmpty())) {
        out.emplace_back(part);
      }
      return out;
    case ClaimValue::Kind::kStrings:
      return it->second.strings;
    case ClaimValue::Kind::kOther:
      break;
  }
  return absl::UnauthenticatedError(
      absl::StrCat("token claim ", name, " is neither a string nor an array of strings"));
}

}  // namespace

absl::StatusOr<IdentityConfig> ParseIdentityConfig(simdjson::dom::element identity,
                                                   std::string_view pointer,
                                                   std::string_view base_dir) {
  MCPMW_ASSIGN_OR_RETURN(simdjson::dom::object obj, json::AsObject(identity, pointer));
  ObjectReader r(obj, std::string(pointer));
  IdentityConfig config;
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> jwt, r.Object("jwt"));
  if (jwt) {
    MCPMW_ASSIGN_OR_RETURN(config.jwt, ParseJwtConfig(*jwt, base_dir));
  }
  if (std::optional<simdjson::dom::element> keys = r.Get("apiKeys")) {
    MCPMW_ASSIGN_OR_RETURN(config.api_keys, ParseApiKeys(*keys, r.Ptr("apiKeys")));
  }
  MCPMW_ASSIGN_OR_RETURN(std::vector<std::string> scopes, r.Strings("requiredScopes"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<bool> anonymous, r.Bool("anonymous"));
  MCPMW_ASSIGN_OR_RETURN(config.resource, r.RequiredString("resource"));
  MCPMW_ASSIGN_OR_RETURN(config.authorization_servers, r.Strings("authorizationServers"));
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());

  for (size_t i = 0; i < scopes.size(); ++i) {
    if (scopes[i].empty() ||
        !std::all_of(scopes[i].begin(), scopes[i].end(), [](char c) { return IsScopeChar(c); })) {
      return Bad(absl::StrCat(r.Ptr("requiredScopes"), "/", i),
                 "not an OAuth scope token (printable ASCII, no spaces, quotes or backslashes)");
    }
  }
  config.required_scopes = middleware::NormalizeScopes(scopes);
  config.anonymous = anonymous.value_or(false);
  if (!SplitUrl(config.resource)) {
    return Bad(r.Ptr("resource"),
               "expected this endpoint's absolute http(s) URL without query or fragment, e.g. "
               "\"https://mcp.example.com/mcp\"");
  }
  for (size_t i = 0; i < config.authorization_servers.size(); ++i) {
    if (!SplitUrl(config.authorization_servers[i])) {
      return Bad(absl::StrCat(r.Ptr("authorizationServers"), "/", i),
                 "expected an absolute http(s) URL (the issuer of the authorization server)");
    }
  }
  if (config.anonymous && !config.required_scopes.empty()) {
    return Bad(r.Ptr("anonymous"),
               "cannot be true while requiredScopes is set: an anonymous caller has no scopes");
  }
  if (!config.jwt && config.api_keys.empty() && !config.anonymous) {
    return Bad(r.pointer(),
               "no way to authenticate: set jwt, apiKeys, or anonymous: true (a local gateway)");
  }
  return config;
}

Authenticator::Authenticator(IdentityConfig config, WallClock wall_clock, std::string metadata_path,
                             std::string metadata_url)
    : config_(std::move(config)),
      metadata_path_(std::move(metadata_path)),
      metadata_url_(std::move(metadata_url)) {
  if (config_.jwt) {
    verifier_.emplace(config_.jwt->options, std::move(wall_clock));
    // Moved, not copied: after a Reload the config must not keep the retired keys alive.
    keys_ = std::move(config_.jwt->keys);
  }
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(IdentityConfig config,
                                                                     WallClock wall_clock) {
  std::optional<UrlParts> url = SplitUrl(config.resource);
  if (!url) {
    return absl::InvalidArgumentError(
        absl::StrCat("resource \"", config.resource, "\" is not an absolute http(s) URL"));
  }
  if (config.jwt && config.jwt->keys == nullptr) {
    MCPMW_ASSIGN_OR_RETURN(KeySet keys, LoadKeyFiles(config.jwt->key_files));
    config.jwt->keys = std::make_shared<const KeySet>(std::move(keys));
  }
  // RFC 9728 §3.1: the well-known suffix goes between the host and the resource's path.
  std::string path = absl::StrCat(Sv(kWellKnown), url->path);
  std::string full = absl::StrCat(url->origin, path);
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(config), std::move(wall_clock),
                                                          std::move(path), std::move(full)));
}

std::shared_ptr<const KeySet> Authenticator::keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_;
}

absl::Status Authenticator::Reload() {
  if (!config_.jwt) {
    return absl::OkStatus();
  }
  absl::StatusOr<KeySet> keys = LoadKeyFiles(config_.jwt->key_files);
  if (!keys.ok()) {
    return {keys.status().code(),
            absl::StrCat("keeping the current keys: ", keys.status().message())};
  }
  auto fresh = std::make_shared<const KeySet>(*std::move(keys));
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::move(fresh);
  return absl::OkStatus();
}

AuthResult Authenticator::Fail(int http_status, std::string_view error,
                               std::string_view description) const {
  AuthResult result;
  result.http_status = http_status;
  result.error = std::string(error);
  result.description = std::string(description);
  std::string& h = result.www_authenticate;
  h = absl::StrCat("Bearer resource_metadata=\"", metadata_url_, "\"");
  if (!error.empty()) {
    std::string safe(description);
    for (char& c : safe) {
      if (!IsQuotedSafe(c)) {
        c = '?';
      }
    }
    absl::StrAppend(&h, ", error=\"", Sv(error), "\", error_description=\"", safe, "\"");
  }
  if (!config_.required_scopes.empty()) {
    absl::StrAppend(&h, ", scope=\"", absl::StrJoin(config_.required_scopes, " "), "\"");
  }
  return result;
}

AuthResult Authenticator::FromApiKey(const ApiKey& key) const {
  AuthResult result;
  result.kind = CredentialKind::kApiKey;
  result.principal = key.principal;
  result.credential_id = absl::StrCat("apikey:", key.id);
  return CheckScopes(std::move(result));
}

AuthResult Authenticator::FromJwt(std::string_view token) const {
  absl::StatusOr<ParsedJwt> parsed = ParseJwt(token);
  if (!parsed.ok()) {
    return Fail(401, "invalid_token", Sv(parsed.status().message()));
  }
  std::shared_ptr<const KeySet> set = keys();
  absl::StatusOr<const JwsKey*> key = set->Select(parsed->alg, parsed->kid);
  if (!key.ok()) {
    return Fail(401, "invalid_token", Sv(key.status().message()));
  }
  absl::StatusOr<Claims> claims = verifier_->Verify(*parsed, **key);
  if (!claims.ok()) {
    return Fail(401, "invalid_token", Sv(claims.status().message()));
  }
  const ClaimNames& names = config_.jwt->claims;
  AuthResult result;
  result.kind = CredentialKind::kJwt;
  middleware::Principal& p = result.principal;
  absl::StatusOr<std::string> tenant = SingleClaim(*claims, names.tenant);
  absl::StatusOr<std::string> user = SingleClaim(*claims, names.user);
  absl::StatusOr<std::string> agent = SingleClaim(*claims, names.agent);
  absl::StatusOr<std::vector<std::string>> scopes = ListClaim(*claims, names.scopes);
  absl::StatusOr<std::vector<std::string>> roles = ListClaim(*claims, names.roles);
  for (const absl::Status& s :
       {tenant.status(), user.status(), agent.status(), scopes.status(), roles.status()}) {
    if (!s.ok()) {
      return Fail(401, "invalid_token", Sv(s.message()));
    }
  }
  p.tenant = *std::move(tenant);
  p.user = *std::move(user);
  p.agent = *std::move(agent);
  p.scopes = middleware::NormalizeScopes(*scopes);
  p.roles = *std::move(roles);
  result.credential_id = absl::StrCat("jwt:", claims->issuer, "/", claims->subject);
  return CheckScopes(std::move(result));
}

AuthResult Authenticator::CheckScopes(AuthResult result) const {
  std::vector<std::string> missing;
  for (const std::string& scope : config_.required_scopes) {
    if (!std::binary_search(result.principal.scopes.begin(), result.principal.scopes.end(),
                            scope)) {
      missing.push_back(scope);
    }
  }
  if (missing.empty()) {
    return result;
  }
  return Fail(403, "insufficient_scope",
              absl::StrCat("missing scope ", absl::StrJoin(missing, " ")));
}

AuthResult Authenticator::Authenticate(const std::string* authorization_header,
                                       const std::string* api_key_header) const {
  if (authorization_header != nullptr && api_key_header != nullptr) {
    return Fail(400, "invalid_request", "more than one credential (Authorization and X-API-Key)");
  }
  if (api_key_header != nullptr) {
    std::string_view key = Sv(absl::StripAsciiWhitespace(*api_key_header));
    if (key.empty()) {
      return Fail(400, "invalid_request", "empty X-API-Key header");
    }
    if (key.size() > kMaxTokenBytes) {
      return Fail(401, "invalid_token", "API key too long");
    }
    const ApiKey* found = config_.api_keys.Find(key);
    if (found == nullptr) {
      return Fail(401, "invalid_token", "unknown API key");
    }
    return FromApiKey(*found);
  }
  if (authorization_header == nullptr) {
    if (config_.anonymous) {
      AuthResult result;
      result.credential_id = "anonymous";
      return result;
    }
    return Fail(401, "", "no credentials: send Authorization: Bearer <token>");
  }
  std::string_view value = Sv(absl::StripAsciiWhitespace(*authorization_header));
  size_t space = value.find(' ');
  if (space == std::string_view::npos ||
      !absl::EqualsIgnoreCase(Sv(value.substr(0, space)), "bearer")) {
    return Fail(400, "invalid_request", "the Authorization scheme is not Bearer");
  }
  std::string_view token = Sv(absl::StripLeadingAsciiWhitespace(Sv(value.substr(space + 1))));
  if (token.empty() || token.find_first_of(" \t") != std::string_view::npos) {
    return Fail(400, "invalid_request", "the Bearer credential is empty or has spaces");
  }
  if (token.size() > kMaxTokenBytes) {
    return Fail(401, "invalid_token", absl::StrCat("token longer than ", kMaxTokenBytes, " bytes"));
  }
  if (const ApiKey* found = config_.api_keys.Find(token); found != nullptr) {
    return FromApiKey(*found);
  }
  bool jwt_shaped = std::count(token.begin(), token.end(), '.') == 2;
  if (config_.jwt && (jwt_shaped || config_.api_keys.empty())) {
    return FromJwt(token);
  }
  return Fail(401, "invalid_token",
              config_.jwt ? "neither a known API key nor a JWT" : "unknown API key");
}

std::string Authenticator::ProtectedResourceMetadataJson() const {
  auto list = [](const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) {
        out += ',';
      }
      jsonrpc::AppendJsonString(items[i], &out);
    }
    out += ']';
    return out;
  };
  std::string out = "{\"resource\":";
  jsonrpc::AppendJsonString(config_.resource, &out);
  if (!config_.authorization_servers.empty()) {
    absl::StrAppend(&out, ",\"authorization_servers\":", list(config_.authorization_servers));
  }
  out += R"(,"bearer_methods_supported":["header"])";
  if (!config_.required_scopes.empty()) {
    absl::StrAppend(&out, ",\"scopes_supported\":", list(config_.required_scopes));
  }
  out += '}';
  return out;
}

}  // namespace mcpmw::http::identity
