#include "src/transport/http/identity/jwks.h"

#include <cerrno>
#include <fstream>
#include <iterator>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/common/json_reader.h"
#include "src/common/log.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::http::identity {
namespace {

using json::Bad;
using json::ObjectReader;
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Members of a JWK (RFC 7517 §4, RFC 7518 §6) that mean nothing for verification but appear in
// published sets; read so RejectUnknown accepts them.
constexpr std::string_view kIgnoredMembers[] = {"key_ops", "x5u", "x5c", "x5t", "x5t#S256"};
// Private-key members (RFC 7518 §6.2.2, §6.3.2): their presence means someone exported a
// signing key into a file meant for verification.
constexpr std::string_view kPrivateMembers[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};

absl::Status PrefixPath(const std::string& path, const absl::Status& status) {
  return {status.code(), absl::StrCat(path, ": ", status.message())};
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int error = errno;
    std::string why = absl::StrCat(path, ": cannot read: ", ErrnoText(error));
    return error == EACCES ? absl::PermissionDeniedError(why) : absl::NotFoundError(why);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A required base64url member, decoded.
absl::StatusOr<std::string> RequiredBytes(ObjectReader& r, std::string_view key) {
  MCPMW_ASSIGN_OR_RETURN(std::string text, r.RequiredString(key));
  std::optional<std::string> bytes = DecodeBase64Url(text);
  if (!bytes || bytes->empty()) {
    return Bad(r.Ptr(key), "not unpadded base64url");
  }
  return *std::move(bytes);
}

// The JWK at `pointer` as a key, or nullopt for a key that is not for signatures.
absl::StatusOr<std::optional<JwsKey>> ParseJwk(element e, const std::string& pointer) {
  MCPMW_ASSIGN_OR_RETURN(object obj, json::AsObject(e, pointer));
  ObjectReader r(obj, pointer);
  for (std::string_view member : kPrivateMembers) {
    if (r.Get(member)) {
      return Bad(r.Ptr(member),
                 "a private key member; the JWKS file must hold public keys only (remove the "
                 "private parts and rotate this key: it has been exposed)");
    }
  }
  for (std::string_view member : kIgnoredMembers) {
    r.Get(member);
  }
  MCPMW_ASSIGN_OR_RETURN(std::string kty, r.RequiredString("kty"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> kid, r.String("kid"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> use, r.String("use"));
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> alg, r.String("alg"));
  if (use && *use != "sig") {
    return std::optional<JwsKey>();
  }

  std::string_view expected_alg;
  absl::StatusOr<JwsKey> key = absl::InternalError("unreachable");
  std::string_view bad_member;  // where an OpenSSL refusal is reported
  if (kty == "RSA") {
    expected_alg = "RS256";
    MCPMW_ASSIGN_OR_RETURN(std::string n, RequiredBytes(r, "n"));
    MCPMW_ASSIGN_OR_RETURN(std::string ex, RequiredBytes(r, "e"));
    key = JwsKey::Rs256(n, ex, kid.value_or(""));
    bad_member = "n";
  } else if (kty == "EC") {
    expected_alg = "ES256";
    MCPMW_ASSIGN_OR_RETURN(std::string crv, r.RequiredString("crv"));
    if (crv != "P-256") {
      return Bad(r.Ptr("crv"),
                 absl::StrCat("\"", crv, R"(" is not supported; only "P-256" (ES256))"));
    }
    MCPMW_ASSIGN_OR_RETURN(std::string x, RequiredBytes(r, "x"));
    MCPMW_ASSIGN_OR_RETURN(std::string y, RequiredBytes(r, "y"));
    key = JwsKey::Es256(x, y, kid.value_or(""));
    bad_member = "x";
  } else if (kty == "oct") {
    expected_alg = "HS256";
    MCPMW_ASSIGN_OR_RETURN(std::string k, RequiredBytes(r, "k"));
    key = JwsKey::Hs256(std::move(k), kid.value_or(""));
    bad_member = "k";
  } else {
    return Bad(r.Ptr("kty"),
               absl::StrCat("\"", kty, R"(" is not supported; expected "RSA", "EC" or "oct")"));
  }
  if (alg && *alg != expected_alg) {
    return Bad(r.Ptr("alg"), absl::StrCat("\"", *alg, "\" is not supported for a ", kty,
                                          " key; only \"", Sv(expected_alg), "\""));
  }
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  if (!key.ok()) {
    return Bad(r.Ptr(bad_member), Sv(key.status().message()));
  }
  return std::optional<JwsKey>(*std::move(key));
}

}  // namespace

absl::StatusOr<KeySet> KeySet::Create(std::vector<JwsKey> keys) {
  std::set<std::string_view> kids;
  for (const JwsKey& key : keys) {
    if (!key.kid().empty() && !kids.insert(key.kid()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two keys have kid \"", key.kid(), "\"; kids must be unique"));
    }
  }
  return KeySet(std::move(keys));
}

absl::StatusOr<const JwsKey*> KeySet::Select(JwsAlg alg,
                                             const std::optional<std::string>& kid) const {
  if (kid && !kid->empty()) {
    for (const JwsKey& key : keys_) {
      if (key.kid() == *kid) {
        if (key.alg() != alg) {
          return absl::UnauthenticatedError(absl::StrCat("token alg ", Sv(JwsAlgName(alg)),
                                                         " does not match its key (",
                                                         Sv(JwsAlgName(key.alg())), ")"));
        }
        return &key;
      }
    }
    return absl::UnauthenticatedError("token kid matches no key");
  }
  const JwsKey* found = nullptr;
  size_t count = 0;
  for (const JwsKey& key : keys_) {
    if (key.alg() == alg) {
      found = &key;
      ++count;
    }
  }
  if (count == 1) {
    return found;
  }
  if (count == 0) {
    return absl::UnauthenticatedError(
        absl::StrCat("no ", Sv(JwsAlgName(alg)), " key is configured"));
  }
  return absl::UnauthenticatedError(
      absl::StrCat("token has no kid and ", count, " ", Sv(JwsAlgName(alg)), " keys exist"));
}

absl::StatusOr<std::vector<JwsKey>> ParseJwks(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("/: not a JSON document (", simdjson::error_message(err), ")"));
  }
  MCPMW_ASSIGN_OR_RETURN(object obj, json::AsObject(root, ""));
  ObjectReader r(obj, "");
  std::optional<element> keys_element = r.Get("keys");
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  if (!keys_element) {
    return Bad("/keys", "required: an array of JWKs");
  }
  MCPMW_ASSIGN_OR_RETURN(array keys, json::AsArray(*keys_element, "/keys"));
  std::vector<JwsKey> out;
  std::set<std::string> kids;
  size_t i = 0;
  for (element jwk : keys) {
    std::string pointer = absl::StrCat("/keys/", i++);
    MCPMW_ASSIGN_OR_RETURN(std::optional<JwsKey> key, ParseJwk(jwk, pointer));
    if (!key) {
      continue;
    }
    if (!key->kid().empty() && !kids.insert(key->kid()).second) {
      return Bad(absl::StrCat(pointer, "/kid"),
                 absl::StrCat("\"", key->kid(), "\" is the kid of an earlier key"));
    }
    out.push_back(*std::move(key));
  }
  if (out.empty()) {
    return Bad("/keys", "no signature key (every token would be refused)");
  }
  return out;
}

absl::StatusOr<std::vector<JwsKey>> LoadJwksFile(const std::string& path) {
  MCPMW_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<std::vector<JwsKey>> keys = ParseJwks(text);
  if (!keys.ok()) {
    return PrefixPath(path, keys.status());
  }
  return keys;
}

absl::StatusOr<JwsKey> LoadHs256SecretFile(const std::string& path) {
  MCPMW_ASSIGN_OR_RETURN(std::string secret, ReadFile(path));
  absl::StatusOr<JwsKey> key = JwsKey::Hs256(std::move(secret), "");
  if (!key.ok()) {
    return PrefixPath(path, key.status());
  }
  return key;
}

absl::StatusOr<KeySet> LoadKeyFiles(const KeyFiles& files) {
  if (files.jwks_file.empty() && files.hs256_secret_file.empty()) {
    return absl::InvalidArgumentError("no key file: set jwksFile, hs256SecretFile or both");
  }
  std::vector<JwsKey> keys;
  if (!files.jwks_file.empty()) {
    MCPMW_ASSIGN_OR_RETURN(keys, LoadJwksFile(files.jwks_file));
  }
  if (!files.hs256_secret_file.empty()) {
    MCPMW_ASSIGN_OR_RETURN(JwsKey secret, LoadHs256SecretFile(files.hs256_secret_file));
    keys.push_back(std::move(secret));
  }
  return KeySet::Create(std::move(keys));
}

}  // namespace mcpmw::http::identity
