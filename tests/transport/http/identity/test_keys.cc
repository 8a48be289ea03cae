#include "tests/transport/http/identity/test_keys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <cstdlib>
#include <fstream>
#include <functional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "src/common/strings.h"
#include "tests/common/temp_dir.h"

namespace mcpmw::http::identity::identity_testing {
namespace {

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// A BIGNUM parameter of `key` as big-endian bytes, left-padded to `width` when width > 0.
std::string BnParam(EVP_PKEY* key, const char* name, int width = 0) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1) << name;
  int len = width > 0 ? width : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(len), '\0');
  EXPECT_EQ(BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), len), len);
  BN_free(bn);
  return out;
}

std::string DigestSign(EVP_PKEY* key, std::string_view input) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  size_t len = 0;
  EXPECT_EQ(EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestSign(md, nullptr, &len, Bytes(input), input.size()), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len, Bytes(input),
                           input.size()),
            1);
  sig.resize(len);
  EVP_MD_CTX_free(md);
  return sig;
}

std::string Mint(std::string_view header, std::string_view payload,
                 const std::function<std::string(std::string_view)>& sign) {
  std::string input = absl::StrCat(B64(header), ".", B64(payload));
  return absl::StrCat(input, ".", B64(sign(input)));
}

}  // namespace

PkeyPtr NewRsaKey(int bits) {
  return {EVP_RSA_gen(static_cast<unsigned int>(bits)), EVP_PKEY_free};
}

PkeyPtr NewEcKey() { return {EVP_EC_gen("P-256"), EVP_PKEY_free}; }

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  EXPECT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)), 1);
  return out;
}

std::string B64(std::string_view bytes) { return absl::WebSafeBase64Escape(Sv(bytes)); }

std::string RsaJwk(EVP_PKEY* key, std::string_view kid, std::string_view extra) {
  return absl::StrCat(R"({"kty":"RSA","kid":")", Sv(kid), R"(","n":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_RSA_N)), R"(","e":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_RSA_E)), "\"", Sv(extra), "}");
}

std::string EcJwk(EVP_PKEY* key, std::string_view kid, std::string_view extra) {
  return absl::StrCat(R"({"kty":"EC","crv":"P-256","kid":")", Sv(kid), R"(","x":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, 32)), R"(","y":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32)), "\"", Sv(extra), "}");
}

std::string OctJwk(std::string_view secret, std::string_view kid) {
  return absl::StrCat(R"({"kty":"oct","kid":")", Sv(kid), R"(","k":")", B64(secret), "\"}");
}

std::string Jwks(std::initializer_list<std::string> jwks) {
  return absl::StrCat(R"({"keys":[)", absl::StrJoin(jwks, ","), "]}");
}

std::string SignHs256(std::string_view secret, std::string_view input) {
  unsigned char tag[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), Bytes(input), input.size(),
       tag, &len);
  return {reinterpret_cast<const char*>(tag), len};
}

std::string SignRs256(EVP_PKEY* key, std::string_view input) { return DigestSign(key, input); }

std::string SignEs256(EVP_PKEY* key, std::string_view input) {
  std::string der = DigestSign(key, input);
  const unsigned char* p = Bytes(der);
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  EXPECT_NE(sig, nullptr);
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

std::string MintHs256(std::string_view secret, std::string_view header, std::string_view payload) {
  return Mint(header, payload, [&](std::string_view in) { return SignHs256(secret, in); });
}

std::string MintRs256(EVP_PKEY* key, std::string_view header, std::string_view payload) {
  return Mint(header, payload, [&](std::string_view in) { return SignRs256(key, in); });
}

std::string MintEs256(EVP_PKEY* key, std::string_view header, std::string_view payload) {
  return Mint(header, payload, [&](std::string_view in) { return SignEs256(key, in); });
}

std::string TempDir() { return mcpmw::testing_support::MakeTempDir("mcpmw_identity"); }

void WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

}  // namespace mcpmw::http::identity::identity_testing
