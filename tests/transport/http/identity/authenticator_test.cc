#include "src/transport/http/identity/authenticator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/strings.h"
#include "tests/transport/http/identity/test_keys.h"

namespace mcpmw::http::identity {
namespace {

using namespace identity_testing;  // NOLINT(google-build-using-namespace): test helpers
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int64_t kNow = 1'700'000'000;
constexpr std::string_view kMetadata =
    "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp";

struct Keys {
  PkeyPtr rsa = NewRsaKey();
  PkeyPtr rsa_next = NewRsaKey();
  PkeyPtr ec = NewEcKey();
  std::string secret = RandomBytes(48);
};

const Keys& K() {
  static const Keys keys;
  return keys;
}

// A config directory with the example identity section of the README, its JWKS (the RSA and
// EC keys) and its shared secret.
class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    WriteFile(dir_ + "/jwks.json", Jwks({RsaJwk(K().rsa.get(), "k1"), EcJwk(K().ec.get(), "ec1")}));
    WriteFile(dir_ + "/secret.bin", K().secret);
  }

  std::string Config(std::string_view jwt_extra = "", std::string_view extra = "") const {
    return absl::StrCat(R"({"identity": {
      "jwt": {"issuer": "https://auth.example", "audience": "mcpmw", "jwksFile": "jwks.json",
              "hs256SecretFile": "secret.bin", "clockSkewSeconds": 60,
              "claims": {"tenant": "tenant_id", "user": "sub", "agent": "azp",
                         "scopes": "scope", "roles": "roles"})",
                        Sv(jwt_extra), R"(},
      "apiKeys": [{"id": "ci-bot", "sha256": ")",
                        HashApiKey("ci-key-0123456789abcdef"),
                        R"(", "tenant": "acme", "user": "ci",
                   "agent": "ci-bot", "scopes": ["tools:call", "mcp"], "roles": ["automation"]},
                  {"id": "reader", "sha256": ")",
                        HashApiKey("reader-key-0123456789"), R"(", "scopes": ["tools:list"]}],
      "requiredScopes": ["mcp"],
      "resource": "http://127.0.0.1:8080/mcp",
      "authorizationServers": ["https://auth.example"])",
                        Sv(extra), "}}");
  }

  absl::StatusOr<IdentityConfig> Parse(const std::string& json) {
    absl::StatusOr<simdjson::dom::element> root = Root(json);
    if (!root.ok()) {
      return root.status();
    }
    simdjson::dom::element identity;
    EXPECT_EQ(root->at_key("identity").get(identity), simdjson::SUCCESS);
    return ParseIdentityConfig(identity, "/identity", dir_);
  }

  absl::StatusOr<simdjson::dom::element> Root(const std::string& json) {
    simdjson::dom::element root;
    if (parser_.parse(json).get(root) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("test config is not JSON");
    }
    return root;
  }

  std::unique_ptr<Authenticator> Make(const std::string& json) {
    absl::StatusOr<IdentityConfig> config = Parse(json);
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config.ok()) {
      return nullptr;
    }
    absl::StatusOr<std::unique_ptr<Authenticator>> auth =
        Authenticator::Create(*std::move(config), [this] { return now_; });
    EXPECT_TRUE(auth.ok()) << auth.status();
    return auth.ok() ? *std::move(auth) : nullptr;
  }

  // The claims of a token for alice; `scope` and `roles` are JSON values.
  static std::string Claims(std::string_view scope = R"("mcp tools:call")",
                            std::string_view roles = R"(["admin","dev"])",
                            std::string_view extra = "") {
    return absl::StrCat(R"({"iss":"https://auth.example","sub":"alice","aud":"mcpmw",)",
                        R"("tenant_id":"acme","azp":"claude-desktop","scope":)", Sv(scope),
                        R"(,"roles":)", Sv(roles), R"(,"exp":)", kNow + 300, Sv(extra), "}");
  }

  static std::string Bearer(std::string_view token) { return absl::StrCat("Bearer ", Sv(token)); }

  std::string dir_;
  std::chrono::system_clock::time_point now_{std::chrono::seconds(kNow)};
  simdjson::dom::parser parser_;
};

TEST_F(AuthenticatorTest, AcceptsAnRs256TokenAndMapsItsClaims) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string header = Bearer(MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})", Claims()));
  AuthResult r = auth->Authenticate(&header, nullptr);
  ASSERT_TRUE(r.ok()) << r.description;
  EXPECT_EQ(r.kind, CredentialKind::kJwt);
  EXPECT_EQ(r.credential_id, "jwt:https://auth.example/alice");
  EXPECT_EQ(r.principal.tenant, "acme");
  EXPECT_EQ(r.principal.user, "alice");
  EXPECT_EQ(r.principal.agent, "claude-desktop");
  EXPECT_EQ(r.principal.scopes, (std::vector<std::string>{"mcp", "tools:call"}));
  EXPECT_EQ(r.principal.roles, (std::vector<std::string>{"admin", "dev"}));
}

TEST_F(AuthenticatorTest, AcceptsEs256AndTheHs256SharedSecret) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string es = Bearer(MintEs256(K().ec.get(), R"({"alg":"ES256","kid":"ec1"})", Claims()));
  EXPECT_TRUE(auth->Authenticate(&es, nullptr).ok());
  // The shared secret has no kid: a kid-less HS256 token reaches it.
  std::string hs = Bearer(
      MintHs256(K().secret, R"({"alg":"HS256","typ":"JWT"})", Claims(R"(["mcp"])", R"("viewer")")));
  AuthResult r = auth->Authenticate(&hs, nullptr);
  ASSERT_TRUE(r.ok()) << r.description;
  EXPECT_EQ(r.principal.scopes, std::vector<std::string>{"mcp"});
  EXPECT_EQ(r.principal.roles, std::vector<std::string>{"viewer"});
  // The scheme name is case-insensitive.
  std::string lower = absl::StrCat("bearer ", hs.substr(7));
  EXPECT_TRUE(auth->Authenticate(&lower, nullptr).ok());
}

TEST_F(AuthenticatorTest, AnswersAMissingCredentialWith401AndNoErrorAttribute) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  AuthResult r = auth->Authenticate(nullptr, nullptr);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.http_status, 401);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.www_authenticate,
            absl::StrCat("Bearer resource_metadata=\"", Sv(kMetadata), "\", scope=\"mcp\""));
  EXPECT_EQ(auth->metadata_url(), kMetadata);
  EXPECT_EQ(auth->metadata_path(), "/.well-known/oauth-protected-resource/mcp");
}

TEST_F(AuthenticatorTest, AnswersAnExpiredTokenWith401InvalidToken) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string token = MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})", Claims());
  std::string header = Bearer(token);
  now_ += std::chrono::seconds(300 + 59);
  EXPECT_TRUE(auth->Authenticate(&header, nullptr).ok());  // within the skew
  now_ += std::chrono::seconds(1);
  AuthResult r = auth->Authenticate(&header, nullptr);
  EXPECT_EQ(r.http_status, 401);
  EXPECT_EQ(r.error, "invalid_token");
  EXPECT_EQ(r.description, "token expired");
  EXPECT_EQ(r.www_authenticate,
            absl::StrCat("Bearer resource_metadata=\"", Sv(kMetadata),
                         "\", error=\"invalid_token\", error_description=\"token expired\", "
                         "scope=\"mcp\""));
  EXPECT_THAT(r.www_authenticate, Not(HasSubstr(token.substr(0, 20))));
}

TEST_F(AuthenticatorTest, AnswersAValidTokenWithoutARequiredScopeWith403) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string header =
      Bearer(MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})", Claims(R"("tools:call")")));
  AuthResult r = auth->Authenticate(&header, nullptr);
  EXPECT_EQ(r.http_status, 403);
  EXPECT_EQ(r.error, "insufficient_scope");
  EXPECT_EQ(r.description, "missing scope mcp");
  EXPECT_EQ(r.www_authenticate,
            absl::StrCat("Bearer resource_metadata=\"", Sv(kMetadata),
                         "\", error=\"insufficient_scope\", error_description=\"missing scope "
                         "mcp\", scope=\"mcp\""));
  // API keys are held to the same requirement.
  std::string reader = "reader-key-0123456789";
  AuthResult key = auth->Authenticate(nullptr, &reader);
  EXPECT_EQ(key.http_status, 403);
  EXPECT_EQ(key.error, "insufficient_scope");
}

TEST_F(AuthenticatorTest, RejectsBadTokensWith401InvalidToken) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  struct Case {
    std::string token;
    std::string description;
  };
  std::vector<Case> cases = {
      {MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})",
                 absl::StrReplaceAll(Claims(), {{"https://auth.example", "https://evil.example"}})),
       "token issuer is not the configured issuer"},
      {MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})",
                 absl::StrReplaceAll(Claims(), {{R"("aud":"mcpmw")", R"("aud":"billing")"}})),
       "token audience does not include this resource"},
      {MintRs256(K().rsa_next.get(), R"({"alg":"RS256","kid":"k1"})", Claims()),
       "token signature does not verify"},
      {MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"zz"})", Claims()),
       "token kid matches no key"},
      {MintHs256(K().secret, R"({"alg":"HS256","kid":"k1"})", Claims()),
       "token alg HS256 does not match its key (RS256)"},
      {MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})",
                 Claims(R"("mcp")", "[]", R"(,"tenant_id":{"id":1})")),
       "token payload repeats a member"},
      {MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})",
                 absl::StrReplaceAll(Claims(), {{R"("tenant_id":"acme")", R"("tenant_id":[1])"}})),
       "token claim tenant_id is not a string"},
      {"YQ.e30.AAAA", "token header is not a JSON object"},
  };
  for (const Case& c : cases) {
    std::string header = Bearer(c.token);
    AuthResult r = auth->Authenticate(&header, nullptr);
    EXPECT_EQ(r.http_status, 401) << c.description;
    EXPECT_EQ(r.error, "invalid_token") << c.description;
    EXPECT_EQ(r.description, c.description);
    EXPECT_THAT(r.www_authenticate,
                HasSubstr(absl::StrCat("error_description=\"", c.description, "\"")));
  }
}

TEST_F(AuthenticatorTest, AcceptsAnApiKeyInEitherHeader) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string bearer = "Bearer ci-key-0123456789abcdef";
  AuthResult by_bearer = auth->Authenticate(&bearer, nullptr);
  ASSERT_TRUE(by_bearer.ok()) << by_bearer.description;
  EXPECT_EQ(by_bearer.kind, CredentialKind::kApiKey);
  EXPECT_EQ(by_bearer.credential_id, "apikey:ci-bot");
  EXPECT_EQ(by_bearer.principal.tenant, "acme");
  EXPECT_EQ(by_bearer.principal.user, "ci");
  EXPECT_EQ(by_bearer.principal.agent, "ci-bot");
  EXPECT_EQ(by_bearer.principal.scopes, (std::vector<std::string>{"mcp", "tools:call"}));
  EXPECT_EQ(by_bearer.principal.roles, std::vector<std::string>{"automation"});

  std::string key = "ci-key-0123456789abcdef";
  AuthResult by_header = auth->Authenticate(nullptr, &key);
  ASSERT_TRUE(by_header.ok()) << by_header.description;
  EXPECT_EQ(by_header.credential_id, "apikey:ci-bot");
}

TEST_F(AuthenticatorTest, RejectsAWrongApiKeyWithoutEchoingIt) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string key = "ci-key-0123456789abcdeX";
  AuthResult r = auth->Authenticate(nullptr, &key);
  EXPECT_EQ(r.http_status, 401);
  EXPECT_EQ(r.error, "invalid_token");
  EXPECT_EQ(r.www_authenticate,
            absl::StrCat("Bearer resource_metadata=\"", Sv(kMetadata),
                         "\", error=\"invalid_token\", error_description=\"unknown API key\", "
                         "scope=\"mcp\""));
  std::string bearer = Bearer(key);
  AuthResult b = auth->Authenticate(&bearer, nullptr);
  EXPECT_EQ(b.http_status, 401);
  EXPECT_EQ(b.description, "neither a known API key nor a JWT");
  EXPECT_THAT(b.www_authenticate, Not(HasSubstr(key)));
}

TEST_F(AuthenticatorTest, AnswersMalformedRequestsWith400InvalidRequest) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string basic = "Basic YWxpY2U6cGFzcw==";
  AuthResult r = auth->Authenticate(&basic, nullptr);
  EXPECT_EQ(r.http_status, 400);
  EXPECT_EQ(r.error, "invalid_request");
  EXPECT_EQ(r.description, "the Authorization scheme is not Bearer");
  std::string key = "ci-key-0123456789abcdef";
  std::string bearer = Bearer(key);
  EXPECT_EQ(auth->Authenticate(&bearer, &key).http_status, 400);
  std::string empty = "Bearer ";
  EXPECT_EQ(auth->Authenticate(&empty, nullptr).http_status, 400);
  std::string over = Bearer(std::string(kMaxTokenBytes + 1, 'a'));
  AuthResult big = auth->Authenticate(&over, nullptr);
  EXPECT_EQ(big.http_status, 401);
  EXPECT_EQ(big.description, "token longer than 16384 bytes");
}

TEST_F(AuthenticatorTest, RotatesKeysOnReload) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string old_token =
      Bearer(MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})", Claims()));
  std::string new_token =
      Bearer(MintRs256(K().rsa_next.get(), R"({"alg":"RS256","kid":"k2"})", Claims()));
  EXPECT_TRUE(auth->Authenticate(&old_token, nullptr).ok());
  EXPECT_EQ(auth->Authenticate(&new_token, nullptr).description, "token kid matches no key");

  // The issuer publishes k2 beside k1.
  WriteFile(dir_ + "/jwks.json",
            Jwks({RsaJwk(K().rsa.get(), "k1"), RsaJwk(K().rsa_next.get(), "k2")}));
  EXPECT_EQ(auth->Authenticate(&new_token, nullptr).description, "token kid matches no key");
  ASSERT_TRUE(auth->Reload().ok());
  EXPECT_TRUE(auth->Authenticate(&old_token, nullptr).ok());
  EXPECT_TRUE(auth->Authenticate(&new_token, nullptr).ok());

  // k1 is retired.
  WriteFile(dir_ + "/jwks.json", Jwks({RsaJwk(K().rsa_next.get(), "k2")}));
  ASSERT_TRUE(auth->Reload().ok());
  EXPECT_EQ(auth->Authenticate(&old_token, nullptr).description, "token kid matches no key");
  EXPECT_TRUE(auth->Authenticate(&new_token, nullptr).ok());
}

TEST_F(AuthenticatorTest, KeepsTheCurrentKeysWhenTheNewFileIsInvalid) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  std::string token = Bearer(MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"k1"})", Claims()));
  WriteFile(dir_ + "/jwks.json", R"({"keys":[{"kty":"RSA","kid":"k1","n":"AQAB"}]})");
  absl::Status reload = auth->Reload();
  EXPECT_EQ(reload, absl::InvalidArgumentError(
                        absl::StrCat("keeping the current keys: ", dir_,
                                     "/jwks.json: /keys/0/e: required: a non-empty string")));
  EXPECT_TRUE(auth->Authenticate(&token, nullptr).ok());
}

TEST_F(AuthenticatorTest, LetsAnAnonymousCallerThroughOnlyWhenConfigured) {
  std::string json =
      absl::StrCat(R"({"identity":{"anonymous":true,"resource":"http://127.0.0.1:8080/mcp",
      "apiKeys":[{"id":"ci","sha256":")",
                   HashApiKey("ci-key-0123456789abcdef"), R"("}]}})");
  std::unique_ptr<Authenticator> auth = Make(json);
  ASSERT_NE(auth, nullptr);
  AuthResult r = auth->Authenticate(nullptr, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.kind, CredentialKind::kAnonymous);
  EXPECT_EQ(r.credential_id, "anonymous");
  EXPECT_TRUE(r.principal.tenant.empty());
  EXPECT_TRUE(r.principal.user.empty());
  EXPECT_TRUE(r.principal.scopes.empty());
  // A credential that is present and wrong is still refused, not downgraded to anonymous.
  std::string wrong = "nope";
  AuthResult bad = auth->Authenticate(nullptr, &wrong);
  EXPECT_EQ(bad.http_status, 401);
  EXPECT_EQ(bad.www_authenticate,
            "Bearer resource_metadata=\"http://127.0.0.1:8080/.well-known/"
            "oauth-protected-resource/mcp\", error=\"invalid_token\", "
            "error_description=\"unknown API key\"");
}

TEST_F(AuthenticatorTest, PublishesProtectedResourceMetadata) {
  std::unique_ptr<Authenticator> auth = Make(Config());
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->ProtectedResourceMetadataJson(),
            R"({"resource":"http://127.0.0.1:8080/mcp",)"
            R"("authorization_servers":["https://auth.example"],)"
            R"("bearer_methods_supported":["header"],"scopes_supported":["mcp"]})");
  // A resource at the root: the well-known path has no suffix.
  std::unique_ptr<Authenticator> root =
      Make(R"({"identity":{"anonymous":true,"resource":"https://mcp.example.com/"}})");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource");
  EXPECT_EQ(root->ProtectedResourceMetadataJson(),
            R"({"resource":"https://mcp.example.com/","bearer_methods_supported":["header"]})");
}

TEST_F(AuthenticatorTest, ParsesTheConfigAndResolvesKeyFilesAgainstItsFolder) {
  absl::StatusOr<IdentityConfig> config = Parse(Config());
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->jwt.has_value());
  EXPECT_EQ(config->jwt->options.issuer, "https://auth.example");
  EXPECT_EQ(config->jwt->options.audience, "mcpmw");
  EXPECT_EQ(config->jwt->options.clock_skew, std::chrono::seconds(60));
  EXPECT_EQ(config->jwt->key_files.jwks_file, dir_ + "/jwks.json");
  EXPECT_EQ(config->jwt->key_files.hs256_secret_file, dir_ + "/secret.bin");
  EXPECT_EQ(config->jwt->claims.tenant, "tenant_id");
  ASSERT_NE(config->jwt->keys, nullptr);
  EXPECT_EQ(config->jwt->keys->keys().size(), 3u);
  EXPECT_EQ(config->api_keys.keys().size(), 2u);
  EXPECT_EQ(config->required_scopes, std::vector<std::string>{"mcp"});
  EXPECT_FALSE(config->anonymous);
  EXPECT_EQ(config->authorization_servers, std::vector<std::string>{"https://auth.example"});
}

TEST_F(AuthenticatorTest, NamesTheJsonPointerOfABadConfigValue) {
  auto error = [&](const std::string& json) { return Parse(json).status(); };
  EXPECT_EQ(error(absl::StrReplaceAll(
                Config(), {{R"("clockSkewSeconds": 60)", R"("clockSkewSeconds": -5)"}})),
            absl::InvalidArgumentError(
                "/identity/jwt/clockSkewSeconds: expected a whole number ≥ 0, found a negative "
                "number"));
  EXPECT_EQ(error(absl::StrReplaceAll(
                Config(), {{R"("clockSkewSeconds": 60)", R"("clockSkewSeconds": 7200)"}})),
            absl::InvalidArgumentError("/identity/jwt/clockSkewSeconds: too large: at most 3600"));
  EXPECT_THAT(std::string(error(Config(R"(, "jwksFil": "x")")).message()),
              StartsWith("/identity/jwt/jwksFil: unknown key; expected one of:"));
  EXPECT_EQ(
      error(absl::StrReplaceAll(Config(),
                                {{R"("jwksFile": "jwks.json")", R"("jwksFile": "nope.json")"}})),
      absl::InvalidArgumentError(absl::StrCat(
          "/identity/jwt/jwksFile: ", dir_, "/nope.json: cannot read: No such file or directory")));
  EXPECT_EQ(
      error(absl::StrReplaceAll(Config(), {{R"("tenant": "tenant_id")", R"("tenant": "")"}})),
      absl::InvalidArgumentError("/identity/jwt/claims/tenant: required: a non-empty claim name"));
  EXPECT_EQ(error(Config("", R"(, "anonymous": true)")),
            absl::InvalidArgumentError(
                "/identity/anonymous: cannot be true while requiredScopes is set: an anonymous "
                "caller has no scopes"));
  EXPECT_EQ(error(absl::StrReplaceAll(Config(), {{R"("resource": "http://127.0.0.1:8080/mcp")",
                                                  R"("resource": "/mcp")"}})),
            absl::InvalidArgumentError(
                "/identity/resource: expected this endpoint's absolute http(s) URL without "
                "query or fragment, e.g. \"https://mcp.example.com/mcp\""));
  EXPECT_EQ(error(absl::StrReplaceAll(Config(), {{R"(["mcp"],
      "resource")",
                                                  R"(["mcp", "a b"],
      "resource")"}})),
            absl::InvalidArgumentError(
                "/identity/requiredScopes/1: not an OAuth scope token (printable ASCII, no "
                "spaces, quotes or backslashes)"));
  EXPECT_EQ(error(R"({"identity":{"resource":"http://h/mcp"}})"),
            absl::InvalidArgumentError(
                "/identity: no way to authenticate: set jwt, apiKeys, or anonymous: true (a "
                "local gateway)"));
  EXPECT_EQ(error(R"({"identity":{"jwt":{"issuer":"x"},"resource":"http://h/mcp"}})"),
            absl::InvalidArgumentError(
                "/identity/jwt/jwksFile: required: jwksFile, hs256SecretFile, or both"));
  WriteFile(dir_ + "/short.bin", "short");
  EXPECT_EQ(error(absl::StrReplaceAll(Config(), {{R"("secret.bin")", R"("short.bin")"}})),
            absl::InvalidArgumentError(
                absl::StrCat("/identity/jwt/hs256SecretFile: ", dir_,
                             "/short.bin: an HS256 secret must be at least 32 bytes, found 5")));
}

}  // namespace
}  // namespace mcpmw::http::identity
