#include "src/transport/http/identity/jwks.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/strings.h"
#include "tests/transport/http/identity/test_keys.h"

namespace mcpmw::http::identity {
namespace {

using namespace identity_testing;  // NOLINT(google-build-using-namespace): test helpers
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Keys {
  PkeyPtr rsa = NewRsaKey();
  PkeyPtr rsa2 = NewRsaKey();
  PkeyPtr ec = NewEcKey();
  std::string secret = RandomBytes(32);
};

const Keys& K() {
  static const Keys keys;
  return keys;
}

KeySet Set(std::initializer_list<std::string> jwks) {
  absl::StatusOr<std::vector<JwsKey>> keys = ParseJwks(Jwks(jwks));
  EXPECT_TRUE(keys.ok()) << keys.status();
  absl::StatusOr<KeySet> set = KeySet::Create(*std::move(keys));
  EXPECT_TRUE(set.ok()) << set.status();
  return *std::move(set);
}

TEST(Jwks, LoadsRsaEcAndOctKeysFromAFile) {
  std::string dir = TempDir();
  WriteFile(dir + "/jwks.json",
            Jwks({RsaJwk(K().rsa.get(), "rsa-1", R"(,"alg":"RS256","use":"sig","x5t":"abc")"),
                  EcJwk(K().ec.get(), "ec-1", R"(,"alg":"ES256","key_ops":["verify"])"),
                  OctJwk(K().secret, "hs-1")}));
  absl::StatusOr<std::vector<JwsKey>> keys = LoadJwksFile(dir + "/jwks.json");
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].alg(), JwsAlg::kRs256);
  EXPECT_EQ((*keys)[0].kid(), "rsa-1");
  EXPECT_EQ((*keys)[1].alg(), JwsAlg::kEs256);
  EXPECT_EQ((*keys)[1].kid(), "ec-1");
  EXPECT_EQ((*keys)[2].alg(), JwsAlg::kHs256);
  EXPECT_EQ((*keys)[2].kid(), "hs-1");
  // The loaded RSA key verifies what the generated private key signs.
  EXPECT_TRUE((*keys)[0].Verify("a.b", SignRs256(K().rsa.get(), "a.b")));
  EXPECT_FALSE((*keys)[0].Verify("a.c", SignRs256(K().rsa.get(), "a.b")));
}

TEST(KeySet, SelectsTheKeyNamedByTheTokensKid) {
  KeySet set = Set({RsaJwk(K().rsa.get(), "old"), RsaJwk(K().rsa2.get(), "new")});
  absl::StatusOr<const JwsKey*> key = set.Select(JwsAlg::kRs256, "new");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ((*key)->kid(), "new");
  EXPECT_TRUE((*key)->Verify("x.y", SignRs256(K().rsa2.get(), "x.y")));
  EXPECT_EQ(set.Select(JwsAlg::kRs256, "gone").status(),
            absl::UnauthenticatedError("token kid matches no key"));
}

TEST(KeySet, AcceptsATokenWithoutKidOnlyWhenOneKeyOfItsAlgExists) {
  KeySet one_each = Set({RsaJwk(K().rsa.get(), "r"), EcJwk(K().ec.get(), "e")});
  absl::StatusOr<const JwsKey*> key = one_each.Select(JwsAlg::kEs256, std::nullopt);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ((*key)->kid(), "e");
  EXPECT_EQ(one_each.Select(JwsAlg::kHs256, std::nullopt).status(),
            absl::UnauthenticatedError("no HS256 key is configured"));

  KeySet two_rsa = Set({RsaJwk(K().rsa.get(), "a"), RsaJwk(K().rsa2.get(), "b")});
  EXPECT_EQ(two_rsa.Select(JwsAlg::kRs256, std::nullopt).status(),
            absl::UnauthenticatedError("token has no kid and 2 RS256 keys exist"));
  // An empty kid counts as none.
  EXPECT_EQ(two_rsa.Select(JwsAlg::kRs256, "").status(),
            absl::UnauthenticatedError("token has no kid and 2 RS256 keys exist"));
}

TEST(KeySet, RefusesAKidWhoseKeyIsForAnotherAlg) {
  KeySet set = Set({RsaJwk(K().rsa.get(), "rsa-1")});
  EXPECT_EQ(set.Select(JwsAlg::kHs256, "rsa-1").status(),
            absl::UnauthenticatedError("token alg HS256 does not match its key (RS256)"));
}

TEST(Jwks, RefusesAPrivateKeyMember) {
  std::string jwk = RsaJwk(K().rsa.get(), "r", R"(,"d":"AAAA")");
  absl::StatusOr<std::vector<JwsKey>> keys = ParseJwks(Jwks({jwk}));
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(keys.status().message()),
              StartsWith("/keys/0/d: a private key member; the JWKS file must hold public keys"));
}

TEST(Jwks, RefusesCurvesAndAlgsItCannotVerify) {
  std::string p384 = R"({"keys":[{"kty":"EC","crv":"P-384","x":"AAAA","y":"AAAA"}]})";
  EXPECT_EQ(
      ParseJwks(p384).status(),
      absl::InvalidArgumentError(R"(/keys/0/crv: "P-384" is not supported; only "P-256" (ES256))"));
  std::string ps256 =
      Jwks({RsaJwk(K().rsa.get(), "r"), RsaJwk(K().rsa2.get(), "p", R"(,"alg":"PS256")")});
  EXPECT_EQ(ParseJwks(ps256).status(),
            absl::InvalidArgumentError(
                R"(/keys/1/alg: "PS256" is not supported for a RSA key; only "RS256")"));
  std::string okp = R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]})";
  EXPECT_EQ(ParseJwks(okp).status(),
            absl::InvalidArgumentError(
                R"(/keys/0/kty: "OKP" is not supported; expected "RSA", "EC" or "oct")"));
}

TEST(Jwks, RefusesAPointOffTheCurveAndAWeakRsaKey) {
  std::string x(32, '\x01');
  std::string off = absl::StrCat(R"({"keys":[{"kty":"EC","crv":"P-256","x":")", B64(x),
                                 R"(","y":")", B64(x), R"("}]})");
  EXPECT_EQ(ParseJwks(off).status(),
            absl::InvalidArgumentError("/keys/0/x: the point (x, y) is not on the P-256 curve"));
  PkeyPtr weak = NewRsaKey(1024);
  EXPECT_EQ(ParseJwks(Jwks({RsaJwk(weak.get(), "w")})).status(),
            absl::InvalidArgumentError(
                "/keys/0/n: the RSA modulus has 1024 bits; RS256 keys need at least 2048"));
  EXPECT_EQ(
      ParseJwks(Jwks({OctJwk("short", "s")})).status(),
      absl::InvalidArgumentError("/keys/0/k: an HS256 secret must be at least 32 bytes, found 5"));
}

TEST(Jwks, RefusesRepeatedKidsUnknownMembersAndBadBase64) {
  EXPECT_EQ(ParseJwks(Jwks({RsaJwk(K().rsa.get(), "k"), EcJwk(K().ec.get(), "k")})).status(),
            absl::InvalidArgumentError(R"(/keys/1/kid: "k" is the kid of an earlier key)"));
  absl::Status unknown = ParseJwks(Jwks({EcJwk(K().ec.get(), "e", R"(,"colour":"red")")})).status();
  EXPECT_THAT(std::string(unknown.message()),
              StartsWith("/keys/0/colour: unknown key; expected one of:"));
  std::string padded =
      R"({"keys":[{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]})";
  EXPECT_EQ(ParseJwks(padded).status(),
            absl::InvalidArgumentError("/keys/0/k: not unpadded base64url"));
  EXPECT_EQ(ParseJwks(R"({"keys":{}})").status(),
            absl::InvalidArgumentError("/keys: expected an array, found an object"));
  EXPECT_EQ(ParseJwks(R"({"keys":[)").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ParseJwks(R"({"keys":[)").status().message()),
              StartsWith("/: not a JSON document"));
}

TEST(Jwks, SkipsEncryptionKeysAndRefusesASetWithNoSignatureKey) {
  std::string enc = RsaJwk(K().rsa2.get(), "enc-1", R"(,"use":"enc","alg":"RSA-OAEP")");
  absl::StatusOr<std::vector<JwsKey>> keys = ParseJwks(Jwks({enc, EcJwk(K().ec.get(), "e")}));
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ(keys->front().kid(), "e");
  EXPECT_EQ(ParseJwks(Jwks({enc})).status(),
            absl::InvalidArgumentError("/keys: no signature key (every token would be refused)"));
}

TEST(Jwks, LoadsAnHs256SecretFileAndRefusesAShortOne) {
  std::string dir = TempDir();
  WriteFile(dir + "/secret.bin", K().secret);
  absl::StatusOr<JwsKey> key = LoadHs256SecretFile(dir + "/secret.bin");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->alg(), JwsAlg::kHs256);
  EXPECT_EQ(key->kid(), "");
  EXPECT_TRUE(key->Verify("a.b", SignHs256(K().secret, "a.b")));

  WriteFile(dir + "/short.bin", "too short\n");
  EXPECT_EQ(LoadHs256SecretFile(dir + "/short.bin").status(),
            absl::InvalidArgumentError(absl::StrCat(
                dir, "/short.bin: an HS256 secret must be at least 32 bytes, found 10")));
  EXPECT_EQ(LoadHs256SecretFile(dir + "/missing.bin").status(),
            absl::NotFoundError(
                absl::StrCat(dir, "/missing.bin: cannot read: No such file or directory")));
}

TEST(Jwks, LoadKeyFilesJoinsTheJwksAndTheSecret) {
  std::string dir = TempDir();
  WriteFile(dir + "/jwks.json", Jwks({RsaJwk(K().rsa.get(), "r")}));
  WriteFile(dir + "/secret.bin", K().secret);
  absl::StatusOr<KeySet> set =
      LoadKeyFiles({.jwks_file = dir + "/jwks.json", .hs256_secret_file = dir + "/secret.bin"});
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->keys().size(), 2u);
  absl::StatusOr<const JwsKey*> secret = set->Select(JwsAlg::kHs256, std::nullopt);
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_TRUE((*secret)->Verify("a.b", SignHs256(K().secret, "a.b")));
  // The secret has no kid, so a token naming one cannot reach it.
  EXPECT_EQ(set->Select(JwsAlg::kHs256, "r").status(),
            absl::UnauthenticatedError("token alg HS256 does not match its key (RS256)"));

  WriteFile(dir + "/bad.json", R"({"keys":[{"kty":"RSA"}]})");
  EXPECT_EQ(LoadKeyFiles({.jwks_file = dir + "/bad.json"}).status(),
            absl::InvalidArgumentError(
                absl::StrCat(dir, "/bad.json: /keys/0/n: required: a non-empty string")));
  EXPECT_THAT(std::string(LoadKeyFiles({}).status().message()), HasSubstr("no key file"));
}

}  // namespace
}  // namespace mcpmw::http::identity
