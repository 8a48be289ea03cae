// mcpmw transport/http/identity: static API keys, stored hashed.
//
//   "Authorization: Bearer <key>" or "X-API-Key: <key>"
//        └─ ApiKeyTable::Find: SHA-256(key) compared with every configured hash ─► ApiKey
//                                                                (id for audit, fixed principal)
//
// The configuration holds only SHA-256 hex digests (`mcpmw` can print one with HashApiKey), so a
// leaked config file does not leak keys. Keys are meant to be long random strings; a digest of a
// guessable key is still guessable.
//
// Threading: an ApiKeyTable is immutable after parsing; Find may run on any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "simdjson.h"
#include "src/middleware/stage.h"

namespace mcpmw::http::identity {

// SHA-256 of `key` as 64 lowercase hex digits: the value an `apiKeys[].sha256` entry stores.
std::string HashApiKey(std::string_view key);

struct ApiKey {
  std::string id;      // names the key in audit records and credential ids; never secret
  std::string sha256;  // 64 lowercase hex digits
  // Who a request with this key is. Empty parts are filled from the policy bundle's identity
  // defaults by the auth stage; scopes are normalised (middleware::NormalizeScopes).
  middleware::Principal principal;
};

class ApiKeyTable {
 public:
  ApiKeyTable() = default;

  // The entry whose hash is SHA-256(`presented`), or nullptr. Every entry is compared, each in
  // constant time (CRYPTO_memcmp). The pointer lives as long as the table.
  const ApiKey* Find(std::string_view presented) const;

  const std::vector<ApiKey>& keys() const { return keys_; }
  bool empty() const { return keys_.empty(); }

 private:
  friend absl::StatusOr<ApiKeyTable> ParseApiKeys(simdjson::dom::element, std::string_view);
  explicit ApiKeyTable(std::vector<ApiKey> keys) : keys_(std::move(keys)) {}

  std::vector<ApiKey> keys_;
};

// Parses an `apiKeys` array: [{"id", "sha256", "tenant"?, "user"?, "agent"?, "scopes"?: [],
// "roles"?: []}]. InvalidArgument starting with the JSON pointer of the bad value
// ("/identity/apiKeys/0/sha256: expected 64 hex digits (HashApiKey of the key), found 12
// characters"); unknown members, repeated ids and repeated digests are refused.
absl::StatusOr<ApiKeyTable> ParseApiKeys(simdjson::dom::element keys, std::string_view pointer);

}  // namespace mcpmw::http::identity
