// mcpmw transport/http/identity: compact JWS tokens (RFC 7515/7519) verified with OpenSSL 3.
//
//   "Authorization: Bearer <header>.<payload>.<signature>"
//        │
//        ├─ ParseJwt: ≤ 16 KiB, three strict base64url parts, header {alg, kid?, typ?}
//        ├─ (the caller picks a JwsKey by alg and kid: jwks.h KeySet::Select)
//        └─ JwtVerifier::Verify: the signature with that key, then exp / nbf / iat (clock skew),
//                                iss and aud → Claims
//
// Only HS256, RS256 and ES256 exist here. `alg: none` and every other algorithm are refused at
// parse time, and a key verifies only the one algorithm it was made for, so a token cannot
// choose how it is checked (no HS256 signed with an RSA public key's bytes).
//
// Errors are absl::UnauthenticatedError with a short description meant for the client's
// WWW-Authenticate `error_description` ("token expired"); they never contain the token, and
// never echo a header or claim value the token chose.
//
// Threading: everything here is immutable after construction and safe to call from any thread.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mcpmw::http::identity {

// Tokens longer than this are refused before any decoding.
inline constexpr size_t kMaxTokenBytes = 16 * 1024;

// Wall-clock time for exp/nbf/iat, which are Unix seconds. mcpmw::Clock is monotonic (its epoch
// is the boot, not 1970), so token checks take this instead; tests pass a lambda over a variable.
// Null means std::chrono::system_clock::now.
using WallClock = std::function<std::chrono::system_clock::time_point()>;

enum class JwsAlg : uint8_t { kHs256, kRs256, kEs256 };

// "HS256", "RS256", "ES256".
std::string_view JwsAlgName(JwsAlg alg);

// Decodes unpadded base64url (RFC 7515 §2) strictly: only [A-Za-z0-9_-], no '=', no whitespace,
// and the canonical spelling only (unused trailing bits zero), so each value has one encoding.
// nullopt when `text` is not such an encoding.
std::optional<std::string> DecodeBase64Url(std::string_view text);

// One verification key: an HMAC secret or a public key, bound to the single algorithm it
// verifies and to its JWKS `kid` ("" when it has none). Cheap to copy (the OpenSSL key is shared
// and never modified).
class JwsKey {
 public:
  // An HS256 secret; InvalidArgument when shorter than 32 bytes (RFC 7518 §3.2).
  static absl::StatusOr<JwsKey> Hs256(std::string secret, std::string kid);
  // An RS256 public key from its modulus and public exponent (unsigned big-endian bytes, as JWK
  // `n` and `e` decode to); InvalidArgument when the modulus is under 2048 bits or OpenSSL
  // refuses the key.
  static absl::StatusOr<JwsKey> Rs256(std::string_view n, std::string_view e, std::string kid);
  // An ES256 public key from its P-256 affine coordinates (32 bytes each, as JWK `x` and `y`
  // decode to); InvalidArgument when the point is not on the curve.
  static absl::StatusOr<JwsKey> Es256(std::string_view x, std::string_view y, std::string kid);

  JwsAlg alg() const { return alg_; }
  const std::string& kid() const { return kid_; }

  // True when `signature` (the decoded third part of a JWS) signs `signing_input` (the first two
  // parts and their dot) under this key. HMAC tags are compared in constant time; an ES256
  // signature must be the 64-byte R||S form of RFC 7518 §3.4.
  bool Verify(std::string_view signing_input, std::string_view signature) const;

 private:
  JwsKey(JwsAlg alg, std::string kid) : alg_(alg), kid_(std::move(kid)) {}

  JwsAlg alg_;
  std::string kid_;
  std::string secret_;              // HS256
  std::shared_ptr<EVP_PKEY> pkey_;  // RS256, ES256
};

// A token taken apart but not yet trusted: nothing in it has been verified.
struct ParsedJwt {
  JwsAlg alg = JwsAlg::kHs256;
  std::optional<std::string> kid;
  std::string signing_input;  // "<header>.<payload>" as sent
  std::string payload;        // decoded payload bytes (JSON, unparsed until verified)
  std::string signature;      // decoded signature bytes
};

// Takes a compact JWS apart. Unauthenticated when it is longer than kMaxTokenBytes, does not
// have exactly three non-empty base64url parts, its header is not a JSON object with a string
// `alg`, the alg is not HS256/RS256/ES256 (`none` included), `typ` is present and is neither
// JWT nor at+jwt, or the header lists `crit` extensions (none are understood).
absl::StatusOr<ParsedJwt> ParseJwt(std::string_view token);

// A claim other than the registered time claims, as the claims mapping reads it.
struct ClaimValue {
  enum class Kind : uint8_t {
    kString,   // a string, or a whole number spelled in decimal
    kStrings,  // an array whose items are all strings
    kOther,    // anything else (object, boolean, null, mixed array, fraction)
  };
  Kind kind = Kind::kOther;
  std::vector<std::string> strings;  // kString: one item; kStrings: the items
};

// What a verified token says.
struct Claims {
  std::string issuer;                 // iss ("" when absent)
  std::string subject;                // sub ("" when absent)
  std::vector<std::string> audience;  // aud, a string read as a one-item list
  int64_t expires_at = 0;             // exp, Unix seconds
  std::optional<int64_t> not_before;  // nbf
  std::optional<int64_t> issued_at;   // iat
  // Every top-level claim by name (iss, sub, aud and the rest too), for the claims mapping.
  std::map<std::string, ClaimValue, std::less<>> values;
};

struct JwtOptions {
  // `iss` must equal this; empty: not checked.
  std::string issuer;
  // `aud` (a string or an array) must contain this; empty: not checked. Production gateways
  // should always set it: without it a token minted for another service is accepted here.
  std::string audience;
  // Allowed disagreement between the issuer's clock and ours, for exp, nbf and iat.
  std::chrono::seconds clock_skew{60};
};

class JwtVerifier {
 public:
  explicit JwtVerifier(JwtOptions options, WallClock wall_clock = nullptr);

  // Checks `token`'s signature with `key` and then its claims. Unauthenticated when the key is
  // for another algorithm than the token's header names, the signature does not verify, the
  // payload is not a JSON object, `exp` is missing or not a number, now ≥ exp + skew ("token
  // expired"), now + skew < nbf, now + skew < iat, or iss / aud do not match the options.
  absl::StatusOr<Claims> Verify(const ParsedJwt& token, const JwsKey& key) const;

  const JwtOptions& options() const { return options_; }

 private:
  int64_t NowUnixSeconds() const;

  JwtOptions options_;
  WallClock wall_clock_;
};

}  // namespace mcpmw::http::identity
