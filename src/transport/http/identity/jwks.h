// mcpmw transport/http/identity: the keys JWTs are verified with, read from files.
//
//   jwksFile (RFC 7517 JSON) ──┐
//                              ├─ LoadKeyFiles ─► KeySet ─► Select(alg, kid) ─► JwsKey (jwt.h)
//   hs256SecretFile (bytes) ───┘
//
// A JWKS file holds public keys: {"keys": [{"kty": "RSA", "n", "e"}, {"kty": "EC", "crv":
// "P-256", "x", "y"}, {"kty": "oct", "k"}], each with an optional `kid`, `alg` and `use`}. RSA
// keys verify RS256, EC keys ES256, oct keys HS256; an `alg` naming anything else is refused,
// and so is a private RSA/EC member (`d`, `p`, …): the file must never hold a signing key.
// Keys with `use` other than "sig" are skipped (an IdP's JWKS often lists encryption keys).
// The shared-secret file holds the HS256 secret as raw bytes, at least 32 of them, used as is
// (a trailing newline is part of the secret).
//
// Key rotation is a new file and a reload (authenticator.h): the issuer publishes the new key
// beside the old one, starts signing with it, and the old one is dropped once its tokens have
// expired. Selection is by the token header's `kid`; a token without one is accepted only when
// exactly one key of its algorithm exists, so adding a second key of an algorithm requires kids.
//
// Threading: a KeySet is immutable; share it between threads as a shared_ptr<const KeySet>.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "src/transport/http/identity/jwt.h"

namespace mcpmw::http::identity {

class KeySet {
 public:
  KeySet() = default;
  // InvalidArgument when two keys share a kid.
  static absl::StatusOr<KeySet> Create(std::vector<JwsKey> keys);

  // The key for a token whose header says `alg` and `kid` (empty counts as absent). With a kid:
  // the key with that kid, which must be a key for `alg`. Without: the only key for `alg`.
  // Unauthenticated otherwise ("token kid matches no key", "token alg HS256 does not match its
  // key (RS256)", "token has no kid and 2 RS256 keys exist"). The pointer lives as long as the
  // set.
  absl::StatusOr<const JwsKey*> Select(JwsAlg alg, const std::optional<std::string>& kid) const;

  const std::vector<JwsKey>& keys() const { return keys_; }

 private:
  explicit KeySet(std::vector<JwsKey> keys) : keys_(std::move(keys)) {}

  std::vector<JwsKey> keys_;
};

// Parses a JWKS document into keys. InvalidArgument starting with the JSON pointer of the bad
// value ("/keys/1/crv: \"P-384\" is not supported; only \"P-256\" (ES256)").
absl::StatusOr<std::vector<JwsKey>> ParseJwks(std::string_view json);

// Reads and parses a JWKS file; errors start with the path ("jwks.json: /keys/0/n: …").
absl::StatusOr<std::vector<JwsKey>> LoadJwksFile(const std::string& path);

// Reads an HS256 shared secret file (the key has no kid); errors start with the path.
absl::StatusOr<JwsKey> LoadHs256SecretFile(const std::string& path);

struct KeyFiles {
  std::string jwks_file;          // empty: none
  std::string hs256_secret_file;  // empty: none
};

// The keys of both files as one set (the secret, when configured, comes last). Errors as the
// loaders above, or InvalidArgument when no file is configured.
absl::StatusOr<KeySet> LoadKeyFiles(const KeyFiles& files);

}  // namespace mcpmw::http::identity
