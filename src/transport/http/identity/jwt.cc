#include "src/transport/http/identity/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/strings.h"

namespace mcpmw::http::identity {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

constexpr size_t kHs256MinSecretBytes = 32;
constexpr int kRsaMinBits = 2048;
constexpr size_t kP256CoordinateBytes = 32;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

BnPtr ToBn(std::string_view big_endian) {
  return BnPtr(BN_bin2bn(Bytes(big_endian), static_cast<int>(big_endian.size()), nullptr));
}

// Builds a public EVP_PKEY of `type` ("RSA", "EC") from what `fill` pushes into the builder.
// nullptr when OpenSSL refuses the parameters or the key fails its public check (an EC point
// off the curve, an even RSA modulus).
template <typename Fill>
std::shared_ptr<EVP_PKEY> PublicKeyFromData(const char* type, Fill fill) {
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr || !fill(bld.get())) {
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  std::shared_ptr<EVP_PKEY> pkey(raw, EVP_PKEY_free);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    return nullptr;
  }
  return pkey;
}

bool DigestVerify(EVP_PKEY* pkey, bool pkcs1, std::string_view data, std::string_view sig) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by `md`
  if (md == nullptr || EVP_DigestVerifyInit(md.get(), &pctx, EVP_sha256(), nullptr, pkey) != 1) {
    return false;
  }
  if (pkcs1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return false;
  }
  return EVP_DigestVerify(md.get(), Bytes(sig), sig.size(), Bytes(data), data.size()) == 1;
}

// JWS carries an ECDSA signature as R||S, fixed width; OpenSSL verifies the DER
// ECDSA-Sig-Value. Converting here (rather than accepting DER) keeps one encoding per signature.
std::optional<std::string> RawEcdsaToDer(std::string_view raw) {
  if (raw.size() != 2 * kP256CoordinateBytes) {
    return std::nullopt;
  }
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BnPtr r = ToBn(raw.substr(0, kP256CoordinateBytes));
  BnPtr s = ToBn(raw.substr(kP256CoordinateBytes));
  if (sig == nullptr || r == nullptr || s == nullptr ||
      ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return std::nullopt;
  }
  (void)r.release();  // now owned by `sig`
  (void)s.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) {
    return std::nullopt;
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::Status Invalid(std::string_view description) {
  return absl::UnauthenticatedError(Sv(description));
}

// One parser per thread (simdjson's rule); every value read from it is copied out before the
// next parse.
simdjson::dom::parser& Parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

absl::StatusOr<object> ParseObject(const std::string& json, std::string_view what) {
  element root;
  object obj;
  if (Parser().parse(json).get(root) != simdjson::SUCCESS ||
      root.get_object().get(obj) != simdjson::SUCCESS) {
    return Invalid(absl::StrCat("token ", Sv(what), " is not a JSON object"));
  }
  // RFC 7519 §4 lets a parser refuse duplicate member names; taking the first or the last is
  // how two parsers come to disagree about one token.
  std::set<std::string_view> seen;
  for (auto [key, value] : obj) {
    if (!seen.insert(key).second) {
      return Invalid(absl::StrCat("token ", Sv(what), " repeats a member"));
    }
  }
  return obj;
}

bool IsTyp(std::string_view typ) {
  std::string t = absl::AsciiStrToLower(Sv(typ));
  std::string_view v = t;
  if (v.starts_with("application/")) {
    v.remove_prefix(12);
  }
  return v == "jwt" || v == "at+jwt";
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return out;
}

// A NumericDate (RFC 7519 §2): seconds, possibly fractional; saturated into int64.
std::optional<int64_t> NumericDate(element e) {
  switch (e.type()) {
    case element_type::INT64:
      return e.get_int64().value_unsafe();
    case element_type::UINT64: {
      uint64_t v = e.get_uint64().value_unsafe();
      return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                 ? std::numeric_limits<int64_t>::max()
                 : static_cast<int64_t>(v);
    }
    case element_type::DOUBLE: {
      double d = std::floor(e.get_double().value_unsafe());
      if (!std::isfinite(d)) {
        return std::nullopt;
      }
      if (d >= 9.2e18) {
        return std::numeric_limits<int64_t>::max();
      }
      if (d <= -9.2e18) {
        return std::numeric_limits<int64_t>::min();
      }
      return static_cast<int64_t>(d);
    }
    default:
      return std::nullopt;
  }
}

ClaimValue ReadClaimValue(element e) {
  ClaimValue v;
  switch (e.type()) {
    case element_type::STRING:
      v.kind = ClaimValue::Kind::kString;
      v.strings.emplace_back(e.get_string().value_unsafe());
      break;
    case element_type::INT64:
      v.kind = ClaimValue::Kind::kString;
      v.strings.push_back(absl::StrCat(e.get_int64().value_unsafe()));
      break;
    case element_type::UINT64:
      v.kind = ClaimValue::Kind::kString;
      v.strings.push_back(absl::StrCat(e.get_uint64().value_unsafe()));
      break;
    case element_type::ARRAY: {
      v.kind = ClaimValue::Kind::kStrings;
      simdjson::dom::array items = e.get_array().value_unsafe();
      for (element item : items) {
        std::string_view s;
        if (item.get_string().get(s) != simdjson::SUCCESS) {
          v.kind = ClaimValue::Kind::kOther;
          v.strings.clear();
          break;
        }
        v.strings.emplace_back(s);
      }
      break;
    }
    default:
      break;
  }
  return v;
}

}  // namespace

std::string_view JwsAlgName(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kHs256:
      return "HS256";
    case JwsAlg::kRs256:
      return "RS256";
    case JwsAlg::kEs256:
      return "ES256";
  }
  return "?";
}

std::optional<std::string> DecodeBase64Url(std::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return std::nullopt;
    }
  }
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(Sv(text), &out)) {
    return std::nullopt;
  }
  // Non-zero unused bits in the last character would give a second spelling of the same bytes.
  if (absl::WebSafeBase64Escape(out) != Sv(text)) {
    return std::nullopt;
  }
  return out;
}

absl::StatusOr<JwsKey> JwsKey::Hs256(std::string secret, std::string kid) {
  if (secret.size() < kHs256MinSecretBytes) {
    return absl::InvalidArgumentError(absl::StrCat("an HS256 secret must be at least ",
                                                   kHs256MinSecretBytes, " bytes, found ",
                                                   secret.size()));
  }
  JwsKey key(JwsAlg::kHs256, std::move(kid));
  key.secret_ = std::move(secret);
  return key;
}

absl::StatusOr<JwsKey> JwsKey::Rs256(std::string_view n, std::string_view e, std::string kid) {
  BnPtr bn_n = ToBn(n);
  BnPtr bn_e = ToBn(e);
  if (bn_n == nullptr || bn_e == nullptr) {
    return absl::InternalError("OpenSSL could not allocate a BIGNUM");
  }
  if (BN_num_bits(bn_n.get()) < kRsaMinBits) {
    return absl::InvalidArgumentError(absl::StrCat("the RSA modulus has ", BN_num_bits(bn_n.get()),
                                                   " bits; RS256 keys need at least ",
                                                   kRsaMinBits));
  }
  std::shared_ptr<EVP_PKEY> pkey = PublicKeyFromData("RSA", [&](OSSL_PARAM_BLD* bld) {
    return OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
           OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1;
  });
  if (pkey == nullptr) {
    return absl::InvalidArgumentError("OpenSSL refuses this RSA public key (n, e)");
  }
  JwsKey key(JwsAlg::kRs256, std::move(kid));
  key.pkey_ = std::move(pkey);
  return key;
}

absl::StatusOr<JwsKey> JwsKey::Es256(std::string_view x, std::string_view y, std::string kid) {
  if (x.size() != kP256CoordinateBytes || y.size() != kP256CoordinateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("P-256 coordinates are 32 bytes each, found ", x.size(), " and ", y.size()));
  }
  std::string point = absl::StrCat("\x04", Sv(x), Sv(y));  // SEC1 uncompressed
  std::shared_ptr<EVP_PKEY> pkey = PublicKeyFromData("EC", [&](OSSL_PARAM_BLD* bld) {
    return OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1,
                                           0) == 1 &&
           OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                            point.size()) == 1;
  });
  if (pkey == nullptr) {
    return absl::InvalidArgumentError("the point (x, y) is not on the P-256 curve");
  }
  JwsKey key(JwsAlg::kEs256, std::move(kid));
  key.pkey_ = std::move(pkey);
  return key;
}

bool JwsKey::Verify(std::string_view signing_input, std::string_view signature) const {
  switch (alg_) {
    case JwsAlg::kHs256: {
      unsigned char tag[EVP_MAX_MD_SIZE];
      unsigned int tag_len = 0;
      if (HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()), Bytes(signing_input),
               signing_input.size(), tag, &tag_len) == nullptr) {
        return false;
      }
      return signature.size() == tag_len && CRYPTO_memcmp(tag, signature.data(), tag_len) == 0;
    }
    case JwsAlg::kRs256:
      return DigestVerify(pkey_.get(), /*pkcs1=*/true, signing_input, signature);
    case JwsAlg::kEs256: {
      std::optional<std::string> der = RawEcdsaToDer(signature);
      return der && DigestVerify(pkey_.get(), /*pkcs1=*/false, signing_input, *der);
    }
  }
  return false;
}

absl::StatusOr<ParsedJwt> ParseJwt(std::string_view token) {
  if (token.size() > kMaxTokenBytes) {
    return Invalid(absl::StrCat("token longer than ", kMaxTokenBytes, " bytes"));
  }
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Invalid("token is not a compact JWS (three parts separated by dots)");
  }
  std::string_view header_b64 = token.substr(0, dot1);
  std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view signature_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty() || signature_b64.empty()) {
    return Invalid("token has an empty part");
  }
  std::optional<std::string> header = DecodeBase64Url(header_b64);
  if (!header) {
    return Invalid("token header is not base64url");
  }
  ParsedJwt out;
  std::optional<std::string> payload = DecodeBase64Url(payload_b64);
  if (!payload) {
    return Invalid("token payload is not base64url");
  }
  out.payload = *std::move(payload);
  std::optional<std::string> signature = DecodeBase64Url(signature_b64);
  if (!signature) {
    return Invalid("token signature is not base64url");
  }
  out.signature = *std::move(signature);

  absl::StatusOr<object> obj = ParseObject(*header, "header");
  if (!obj.ok()) {
    return obj.status();
  }
  std::string_view alg;
  if (obj->at_key("alg").get_string().get(alg) != simdjson::SUCCESS) {
    return Invalid("token header has no alg");
  }
  if (alg == "HS256") {
    out.alg = JwsAlg::kHs256;
  } else if (alg == "RS256") {
    out.alg = JwsAlg::kRs256;
  } else if (alg == "ES256") {
    out.alg = JwsAlg::kEs256;
  } else {
    // `none` lands here too: an unsigned token is never acceptable.
    return Invalid("token alg is not one of HS256, RS256, ES256");
  }
  element kid;
  if (obj->at_key("kid").get(kid) == simdjson::SUCCESS) {
    std::string_view s;
    if (kid.get_string().get(s) != simdjson::SUCCESS) {
      return Invalid("token kid is not a string");
    }
    out.kid = std::string(s);
  }
  element typ;
  if (obj->at_key("typ").get(typ) == simdjson::SUCCESS) {
    std::string_view s;
    if (typ.get_string().get(s) != simdjson::SUCCESS || !IsTyp(s)) {
      return Invalid("token typ is not JWT");
    }
  }
  element crit;
  if (obj->at_key("crit").get(crit) == simdjson::SUCCESS) {
    return Invalid("token header names crit extensions, which are not supported");
  }
  out.signing_input = std::string(token.substr(0, dot2));
  return out;
}

JwtVerifier::JwtVerifier(JwtOptions options, WallClock wall_clock)
    : options_(std::move(options)), wall_clock_(std::move(wall_clock)) {}

int64_t JwtVerifier::NowUnixSeconds() const {
  std::chrono::system_clock::time_point now =
      wall_clock_ ? wall_clock_() : std::chrono::system_clock::now();
  return std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
}

absl::StatusOr<Claims> JwtVerifier::Verify(const ParsedJwt& token, const JwsKey& key) const {
  if (key.alg() != token.alg) {
    return Invalid(absl::StrCat("token alg ", Sv(JwsAlgName(token.alg)),
                                " does not match its key (", Sv(JwsAlgName(key.alg())), ")"));
  }
  if (!key.Verify(token.signing_input, token.signature)) {
    return Invalid("token signature does not verify");
  }
  absl::StatusOr<object> obj = ParseObject(token.payload, "payload");
  if (!obj.ok()) {
    return obj.status();
  }
  Claims claims;
  bool has_exp = false;
  for (auto [key_name, value] : *obj) {
    if (key_name == "exp" || key_name == "nbf" || key_name == "iat") {
      std::optional<int64_t> t = NumericDate(value);
      if (!t) {
        return Invalid(absl::StrCat("token ", Sv(key_name), " is not a number"));
      }
      if (key_name == "exp") {
        claims.expires_at = *t;
        has_exp = true;
      } else if (key_name == "nbf") {
        claims.not_before = *t;
      } else {
        claims.issued_at = *t;
      }
      continue;
    }
    ClaimValue v = ReadClaimValue(value);
    if (key_name == "iss" || key_name == "sub") {
      if (v.kind != ClaimValue::Kind::kString || value.type() != element_type::STRING) {
        return Invalid(absl::StrCat("token ", Sv(key_name), " is not a string"));
      }
      (key_name == "iss" ? claims.issuer : claims.subject) = v.strings.front();
    } else if (key_name == "aud") {
      if (v.kind == ClaimValue::Kind::kOther || value.type() == element_type::INT64 ||
          value.type() == element_type::UINT64) {
        return Invalid("token aud is neither a string nor an array of strings");
      }
      claims.audience = v.strings;
    }
    claims.values.emplace(std::string(key_name), std::move(v));
  }
  if (!has_exp) {
    return Invalid("token has no exp");
  }
  const int64_t now = NowUnixSeconds();
  const int64_t skew = options_.clock_skew.count();
  if (now >= SaturatingAdd(claims.expires_at, skew)) {
    return Invalid("token expired");
  }
  if (claims.not_before && SaturatingAdd(now, skew) < *claims.not_before) {
    return Invalid("token not valid yet (nbf)");
  }
  if (claims.issued_at && SaturatingAdd(now, skew) < *claims.issued_at) {
    return Invalid("token issued in the future (iat)");
  }
  if (!options_.issuer.empty() && claims.issuer != options_.issuer) {
    return Invalid("token issuer is not the configured issuer");
  }
  if (!options_.audience.empty() && std::find(claims.audience.begin(), claims.audience.end(),
                                              options_.audience) == claims.audience.end()) {
    return Invalid("token audience does not include this resource");
  }
  return claims;
}

}  // namespace mcpmw::http::identity
