#include "src/transport/http/identity/api_keys.h"

#include <openssl/crypto.h>

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "src/common/json_reader.h"
#include "src/common/sha256.h"
#include "src/common/status.h"
#include "src/common/strings.h"
#include "src/middleware/auth.h"

namespace mcpmw::http::identity {

using json::Bad;
using json::ObjectReader;

std::string HashApiKey(std::string_view key) { return Sha256Hex(key); }

const ApiKey* ApiKeyTable::Find(std::string_view presented) const {
  const std::string digest = HashApiKey(presented);
  if (digest.size() != 64) {
    return nullptr;  // no SHA-256 provider: match nothing rather than everything
  }
  const ApiKey* found = nullptr;
  for (const ApiKey& key : keys_) {
    // Every entry is compared so the time taken does not say how far down the list a key is.
    if (CRYPTO_memcmp(key.sha256.data(), digest.data(), digest.size()) == 0) {
      found = &key;
    }
  }
  return found;
}

absl::StatusOr<ApiKeyTable> ParseApiKeys(simdjson::dom::element keys, std::string_view pointer) {
  MCPMW_ASSIGN_OR_RETURN(simdjson::dom::array arr, json::AsArray(keys, pointer));
  std::vector<ApiKey> out;
  std::set<std::string> ids;
  std::set<std::string> digests;
  size_t i = 0;
  for (simdjson::dom::element e : arr) {
    std::string ptr = absl::StrCat(Sv(pointer), "/", i++);
    MCPMW_ASSIGN_OR_RETURN(simdjson::dom::object obj, json::AsObject(e, ptr));
    ObjectReader r(obj, ptr);
    ApiKey key;
    MCPMW_ASSIGN_OR_RETURN(key.id, r.RequiredString("id"));
    MCPMW_ASSIGN_OR_RETURN(std::string sha256, r.RequiredString("sha256"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> tenant, r.String("tenant"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> user, r.String("user"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> agent, r.String("agent"));
    MCPMW_ASSIGN_OR_RETURN(std::vector<std::string> scopes, r.Strings("scopes"));
    MCPMW_ASSIGN_OR_RETURN(key.principal.roles, r.Strings("roles"));
    MCPMW_RETURN_IF_ERROR(r.RejectUnknown());

    bool hex = sha256.size() == 64;
    for (char c : sha256) {
      hex = hex && absl::ascii_isxdigit(static_cast<unsigned char>(c));
    }
    if (!hex) {
      return Bad(r.Ptr("sha256"),
                 absl::StrCat("expected 64 hex digits (the SHA-256 of the key, never the key "
                              "itself), found ",
                              sha256.size(), " characters"));
    }
    key.sha256 = absl::AsciiStrToLower(sha256);
    if (!ids.insert(key.id).second) {
      return Bad(r.Ptr("id"), absl::StrCat("\"", key.id, "\" is the id of an earlier key"));
    }
    if (!digests.insert(key.sha256).second) {
      return Bad(r.Ptr("sha256"), "the same digest as an earlier key");
    }
    key.principal.tenant = tenant.value_or("");
    key.principal.user = user.value_or("");
    key.principal.agent = agent.value_or("");
    key.principal.scopes = middleware::NormalizeScopes(scopes);
    out.push_back(std::move(key));
  }
  return ApiKeyTable(std::move(out));
}

}  // namespace mcpmw::http::identity
