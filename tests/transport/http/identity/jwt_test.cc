#include "src/transport/http/identity/jwt.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "src/common/strings.h"
#include "src/transport/http/identity/jwks.h"
#include "tests/transport/http/identity/test_keys.h"

namespace mcpmw::http::identity {
namespace {

using namespace identity_testing;  // NOLINT(google-build-using-namespace): test helpers

constexpr int64_t kNow = 1'700'000'000;

struct Keys {
  PkeyPtr rsa = NewRsaKey();
  PkeyPtr ec = NewEcKey();
  std::string secret = RandomBytes(32);
};

// Generated once per test binary: RSA key generation is the slow part of these tests.
const Keys& K() {
  static const Keys keys;
  return keys;
}

std::chrono::system_clock::time_point At(int64_t unix_seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

JwtVerifier Verifier(JwtOptions options = {}) {
  return JwtVerifier(std::move(options), [] { return At(kNow); });
}

std::string Payload(std::string_view extra = "") {
  return absl::StrCat(R"({"iss":"https://auth.example","sub":"alice","aud":"mcpmw","exp":)",
                      kNow + 300, R"(,"iat":)", kNow - 10, Sv(extra), "}");
}

absl::StatusOr<Claims> Check(std::string_view token, const JwsKey& key, JwtOptions options = {}) {
  absl::StatusOr<ParsedJwt> parsed = ParseJwt(token);
  if (!parsed.ok()) {
    return parsed.status();
  }
  return Verifier(std::move(options)).Verify(*parsed, key);
}

JwsKey RsaKey() {
  std::string n;
  std::string e;
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(K().rsa.get(), "n", &bn);
  n.resize(BN_num_bytes(bn));
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(n.data()));
  BN_free(bn);
  bn = nullptr;
  EVP_PKEY_get_bn_param(K().rsa.get(), "e", &bn);
  e.resize(BN_num_bytes(bn));
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(e.data()));
  BN_free(bn);
  return *JwsKey::Rs256(n, e, "rsa-1");
}

// The keys as a JWKS would give them, so the tests cover the JWK decoding path too.
const JwsKey& KeyFor(JwsAlg alg) {
  static const std::vector<JwsKey> keys = *ParseJwks(Jwks(
      {RsaJwk(K().rsa.get(), "rsa-1"), EcJwk(K().ec.get(), "ec-1"), OctJwk(K().secret, "hs-1")}));
  for (const JwsKey& key : keys) {
    if (key.alg() == alg) {
      return key;
    }
  }
  ADD_FAILURE() << "no key";
  return keys.front();
}

TEST(JwtVerifier, AcceptsAValidHs256Token) {
  std::string token = MintHs256(K().secret, R"({"alg":"HS256","typ":"JWT"})", Payload());
  absl::StatusOr<Claims> claims = Check(token, KeyFor(JwsAlg::kHs256));
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->issuer, "https://auth.example");
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->audience, std::vector<std::string>{"mcpmw"});
  EXPECT_EQ(claims->expires_at, kNow + 300);
  EXPECT_EQ(claims->issued_at, kNow - 10);
}

TEST(JwtVerifier, AcceptsAValidRs256Token) {
  std::string token = MintRs256(K().rsa.get(), R"({"alg":"RS256","kid":"rsa-1"})", Payload());
  absl::StatusOr<ParsedJwt> parsed = ParseJwt(token);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->alg, JwsAlg::kRs256);
  EXPECT_EQ(parsed->kid, "rsa-1");
  absl::StatusOr<Claims> claims = Check(token, KeyFor(JwsAlg::kRs256));
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "alice");
  // A key built straight from n and e verifies the same token.
  EXPECT_TRUE(Check(token, RsaKey()).ok());
}

TEST(JwtVerifier, AcceptsAValidEs256Token) {
  std::string token =
      MintEs256(K().ec.get(), R"({"alg":"ES256","typ":"at+jwt"})", Payload(R"(,"scope":"a b")"));
  absl::StatusOr<Claims> claims = Check(token, KeyFor(JwsAlg::kEs256));
  ASSERT_TRUE(claims.ok()) << claims.status();
  ASSERT_TRUE(claims->values.contains("scope"));
  EXPECT_EQ(claims->values.at("scope").kind, ClaimValue::Kind::kString);
  EXPECT_EQ(claims->values.at("scope").strings, std::vector<std::string>{"a b"});
}

TEST(JwtVerifier, RejectsATokenWhoseSignatureDoesNotVerify) {
  std::string token = MintRs256(K().rsa.get(), R"({"alg":"RS256"})", Payload());
  // Same header and signature, a payload that says someone else.
  std::string forged =
      absl::StrCat(token.substr(0, token.find('.')), ".", B64(Payload(R"(,"admin":true)")),
                   token.substr(token.rfind('.')));
  absl::StatusOr<Claims> claims = Check(forged, KeyFor(JwsAlg::kRs256));
  EXPECT_EQ(claims.status(), absl::UnauthenticatedError("token signature does not verify"));

  std::string other = MintEs256(NewEcKey().get(), R"({"alg":"ES256"})", Payload());
  EXPECT_EQ(Check(other, KeyFor(JwsAlg::kEs256)).status(),
            absl::UnauthenticatedError("token signature does not verify"));
  std::string wrong_secret = MintHs256(RandomBytes(32), R"({"alg":"HS256"})", Payload());
  EXPECT_EQ(Check(wrong_secret, KeyFor(JwsAlg::kHs256)).status(),
            absl::UnauthenticatedError("token signature does not verify"));
}

TEST(JwtVerifier, RejectsHs256SignedWithTheRsaPublicKeysBytes) {
  // The classic confusion: an attacker uses the (public) RSA key as an HMAC secret.
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio, K().rsa.get()), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  std::string token = MintHs256(pem, R"({"alg":"HS256","kid":"rsa-1"})", Payload());

  EXPECT_EQ(Check(token, KeyFor(JwsAlg::kRs256)).status(),
            absl::UnauthenticatedError("token alg HS256 does not match its key (RS256)"));
}

TEST(JwtParser, RefusesAlgNone) {
  std::string token = absl::StrCat(B64(R"({"alg":"none"})"), ".", B64(Payload()), ".");
  EXPECT_EQ(ParseJwt(token).status(), absl::UnauthenticatedError("token has an empty part"));
  std::string with_sig = absl::StrCat(B64(R"({"alg":"none"})"), ".", B64(Payload()), ".AAAA");
  EXPECT_EQ(ParseJwt(with_sig).status(),
            absl::UnauthenticatedError("token alg is not one of HS256, RS256, ES256"));
  std::string hs512 = MintHs256(K().secret, R"({"alg":"HS512"})", Payload());
  EXPECT_EQ(ParseJwt(hs512).status(),
            absl::UnauthenticatedError("token alg is not one of HS256, RS256, ES256"));
}

TEST(JwtVerifier, RejectsATokenPastItsExpiryBeyondTheSkew) {
  std::string token = MintHs256(K().secret, R"({"alg":"HS256"})",
                                absl::StrCat(R"({"sub":"alice","exp":)", kNow - 61, "}"));
  EXPECT_EQ(Check(token, KeyFor(JwsAlg::kHs256)).status(),
            absl::UnauthenticatedError("token expired"));
  // exp + skew == now is already expired.
  std::string edge =
      MintHs256(K().secret, R"({"alg":"HS256"})", absl::StrCat(R"({"exp":)", kNow - 60, "}"));
  EXPECT_EQ(Check(edge, KeyFor(JwsAlg::kHs256)).status(),
            absl::UnauthenticatedError("token expired"));
}

TEST(JwtVerifier, AcceptsAnExpiredTokenWithinTheSkew) {
  std::string token =
      MintHs256(K().secret, R"({"alg":"HS256"})", absl::StrCat(R"({"exp":)", kNow - 59, "}"));
  EXPECT_TRUE(Check(token, KeyFor(JwsAlg::kHs256)).ok());
  // With no skew configured the same token is expired.
  EXPECT_EQ(Check(token, KeyFor(JwsAlg::kHs256), {.clock_skew = std::chrono::seconds(0)}).status(),
            absl::UnauthenticatedError("token expired"));
}

TEST(JwtVerifier, RejectsATokenWithoutExp) {
  std::string token = MintHs256(K().secret, R"({"alg":"HS256"})", R"({"sub":"alice"})");
  EXPECT_EQ(Check(token, KeyFor(JwsAlg::kHs256)).status(),
            absl::UnauthenticatedError("token has no exp"));
  std::string text_exp =
      MintHs256(K().secret, R"({"alg":"HS256"})", R"({"sub":"alice","exp":"tomorrow"})");
  EXPECT_EQ(Check(text_exp, KeyFor(JwsAlg::kHs256)).status(),
            absl::UnauthenticatedError("token exp is not a number"));
}

TEST(JwtVerifier, RejectsATokenNotValidYet) {
  std::string token =
      MintHs256(K().secret, R"({"alg":"HS256"})",
                absl::StrCat(R"({"exp":)", kNow + 600, R"(,"nbf":)", kNow + 61, "}"));
  EXPECT_EQ(Check(token, KeyFor(JwsAlg::kHs256)).status(),
            absl::UnauthenticatedError("token not valid yet (nbf)"));
  std::string soon =
      MintHs256(K().secret, R"({"alg":"HS256"})",
                absl::StrCat(R"({"exp":)", kNow + 600, R"(,"nbf":)", kNow + 59, "}"));
  EXPECT_TRUE(Check(soon, KeyFor(JwsAlg::kHs256)).ok());
  std::string future_iat =
      MintHs256(K().secret, R"({"alg":"HS256"})",
                absl::StrCat(R"({"exp":)", kNow + 600, R"(,"iat":)", kNow + 3600, "}"));
  EXPECT_EQ(Check(future_iat, KeyFor(JwsAlg::kHs256)).status(),
            absl::UnauthenticatedError("token issued in the future (iat)"));
}

TEST(JwtVerifier, RejectsAWrongIssuer) {
  std::string token = MintHs256(K().secret, R"({"alg":"HS256"})", Payload());
  EXPECT_TRUE(Check(token, KeyFor(JwsAlg::kHs256), {.issuer = "https://auth.example"}).ok());
  EXPECT_EQ(Check(token, KeyFor(JwsAlg::kHs256), {.issuer = "https://evil.example"}).status(),
            absl::UnauthenticatedError("token issuer is not the configured issuer"));
}

TEST(JwtVerifier, RejectsAWrongAudience) {
  std::string token = MintHs256(K().secret, R"({"alg":"HS256"})", Payload());
  EXPECT_TRUE(Check(token, KeyFor(JwsAlg::kHs256), {.audience = "mcpmw"}).ok());
  EXPECT_EQ(Check(token, KeyFor(JwsAlg::kHs256), {.audience = "billing"}).status(),
            absl::UnauthenticatedError("token audience does not include this resource"));
  std::string no_aud =
      MintHs256(K().secret, R"({"alg":"HS256"})", absl::StrCat(R"({"exp":)", kNow + 60, "}"));
  EXPECT_EQ(Check(no_aud, KeyFor(JwsAlg::kHs256), {.audience = "mcpmw"}).status(),
            absl::UnauthenticatedError("token audience does not include this resource"));
}

TEST(JwtVerifier, AcceptsAnAudienceArrayContainingTheAudience) {
  std::string token =
      MintHs256(K().secret, R"({"alg":"HS256"})",
                absl::StrCat(R"({"aud":["billing","mcpmw"],"exp":)", kNow + 60, "}"));
  absl::StatusOr<Claims> claims = Check(token, KeyFor(JwsAlg::kHs256), {.audience = "mcpmw"});
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->audience, (std::vector<std::string>{"billing", "mcpmw"}));
  EXPECT_EQ(Check(token, KeyFor(JwsAlg::kHs256), {.audience = "other"}).status(),
            absl::UnauthenticatedError("token audience does not include this resource"));
}

TEST(JwtParser, RejectsMalformedBase64AndJson) {
  std::string good = MintHs256(K().secret, R"({"alg":"HS256"})", Payload());
  std::string padded = absl::StrCat(B64(R"({"alg":"HS256"})"), "=", good.substr(good.find('.')));
  EXPECT_EQ(ParseJwt(padded).status(), absl::UnauthenticatedError("token header is not base64url"));
  std::string plus = good;
  plus[good.find('.') + 1] = '+';
  EXPECT_EQ(ParseJwt(plus).status(), absl::UnauthenticatedError("token payload is not base64url"));
  EXPECT_EQ(ParseJwt(absl::StrCat(good, "!")).status(),
            absl::UnauthenticatedError("token signature is not base64url"));
  EXPECT_EQ(
      ParseJwt("abc.def").status(),
      absl::UnauthenticatedError("token is not a compact JWS (three parts separated by dots)"));
  EXPECT_EQ(
      ParseJwt(absl::StrCat(good, ".x")).status(),
      absl::UnauthenticatedError("token is not a compact JWS (three parts separated by dots)"));

  std::string bad_header = MintHs256(K().secret, R"({"alg":"HS256")", Payload());
  EXPECT_EQ(ParseJwt(bad_header).status(),
            absl::UnauthenticatedError("token header is not a JSON object"));
  std::string twice = MintHs256(K().secret, R"({"alg":"HS256","alg":"none"})", Payload());
  EXPECT_EQ(ParseJwt(twice).status(), absl::UnauthenticatedError("token header repeats a member"));
  std::string crit =
      MintHs256(K().secret, R"({"alg":"HS256","crit":["b64"],"b64":false})", Payload());
  EXPECT_EQ(
      ParseJwt(crit).status(),
      absl::UnauthenticatedError("token header names crit extensions, which are not supported"));

  // A correctly signed payload that is not JSON is refused after the signature checks out.
  std::string bad_payload = MintHs256(K().secret, R"({"alg":"HS256"})", "not json");
  EXPECT_EQ(Check(bad_payload, KeyFor(JwsAlg::kHs256)).status(),
            absl::UnauthenticatedError("token payload is not a JSON object"));
}

TEST(JwtParser, RefusesATokenLongerThan16KiB) {
  std::string big =
      MintHs256(K().secret, R"({"alg":"HS256"})",
                Payload(absl::StrCat(R"(,"pad":")", std::string(kMaxTokenBytes, 'x'), "\"")));
  ASSERT_GT(big.size(), kMaxTokenBytes);
  EXPECT_EQ(ParseJwt(big).status(), absl::UnauthenticatedError("token longer than 16384 bytes"));
}

TEST(JwtVerifier, RejectsAnEs256SignatureInDerForm) {
  std::string input = absl::StrCat(B64(R"({"alg":"ES256"})"), ".", B64(Payload()));
  std::string raw = SignEs256(K().ec.get(), input);
  ASSERT_EQ(raw.size(), 64u);
  EXPECT_TRUE(KeyFor(JwsAlg::kEs256).Verify(input, raw));
  // OpenSSL's own DER form is not what JWS carries.
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  size_t len = 0;
  ASSERT_EQ(EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, K().ec.get()), 1);
  ASSERT_EQ(EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()),
            1);
  std::string der(len, '\0');
  ASSERT_EQ(EVP_DigestSign(md, reinterpret_cast<unsigned char*>(der.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()),
            1);
  der.resize(len);
  EVP_MD_CTX_free(md);
  EXPECT_FALSE(KeyFor(JwsAlg::kEs256).Verify(input, der));
}

TEST(Base64Url, DecodesOnlyTheCanonicalUnpaddedForm) {
  EXPECT_EQ(DecodeBase64Url("aGk"), "hi");
  EXPECT_EQ(DecodeBase64Url("-_8"), std::string("\xfb\xff", 2));
  EXPECT_EQ(DecodeBase64Url(""), "");
  EXPECT_EQ(DecodeBase64Url("aGk="), std::nullopt);   // padding
  EXPECT_EQ(DecodeBase64Url("aGl"), std::nullopt);    // non-zero unused bits: a second spelling
  EXPECT_EQ(DecodeBase64Url("a Gk"), std::nullopt);   // whitespace
  EXPECT_EQ(DecodeBase64Url("+/8"), std::nullopt);    // the standard alphabet
  EXPECT_EQ(DecodeBase64Url("aGkxa"), std::nullopt);  // a length no encoding has
}

TEST(JwsKeyFactory, RefusesAnHs256SecretShorterThan32Bytes) {
  EXPECT_EQ(JwsKey::Hs256(std::string(31, 'k'), "").status(),
            absl::InvalidArgumentError("an HS256 secret must be at least 32 bytes, found 31"));
  EXPECT_TRUE(JwsKey::Hs256(std::string(32, 'k'), "").ok());
}

}  // namespace
}  // namespace mcpmw::http::identity
