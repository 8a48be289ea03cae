// mcpmw audit: segment signing keys (HMAC-SHA256 or Ed25519 through OpenSSL).
//
// The audit sink signs each segment of its log with a Signer; `mcpmw audit verify` checks the
// signatures with a Verifier. Both are loaded from a key file:
//   - a file that starts with "-----BEGIN" is a PEM key: an Ed25519 private key for a Signer,
//     an Ed25519 public key (or the private key, whose public half is used) for a Verifier;
//   - any other file is an HMAC-SHA256 key: if its content, less trailing whitespace, is an
//     even number (at least 32) of hex digits it is decoded from hex, otherwise the raw bytes
//     are the key. Either way the key must hold at least 16 bytes.
// key_id is the first 16 hex digits of SHA-256 of the Ed25519 raw public key or of the HMAC key,
// so a log names the key that signed it without revealing it.
//
// Signers and Verifiers are immutable after loading, cheap to copy (the OpenSSL key is shared),
// and safe to use from several threads at once.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "src/common/sha256.h"

namespace mcpmw::audit {

enum class SignatureAlg { kHmacSha256, kEd25519 };

// "hmac-sha256" or "ed25519": the spelling used in the log's header and signature lines.
std::string_view AlgName(SignatureAlg alg);

// The loaded key behind a Signer or a Verifier: the algorithm, its key id, and either the HMAC
// key bytes or the OpenSSL key. Built only by the factories below.
struct KeyMaterial {
  SignatureAlg alg = SignatureAlg::kHmacSha256;
  std::string key_id;
  std::string hmac_key;
  std::shared_ptr<EVP_PKEY> pkey;
};

class Signer {
 public:
  // Loads a key file as described at the top of this header. InvalidArgument when the file is
  // not a usable key (wrong PEM type, HMAC key too short), NotFound/PermissionDenied when it
  // cannot be read.
  static absl::StatusOr<Signer> FromKeyFile(std::string_view path);
  // An HMAC-SHA256 signer over raw key bytes (at least 16).
  static absl::StatusOr<Signer> Hmac(std::string key);
  // An Ed25519 signer from a PEM-encoded private key (PKCS#8, as `openssl genpkey` writes it).
  static absl::StatusOr<Signer> Ed25519FromPem(std::string_view pem);

  SignatureAlg alg() const { return key_.alg; }
  const std::string& key_id() const { return key_.key_id; }

  // The lower-case hex signature of `message` (64 digits for HMAC, 128 for Ed25519).
  absl::StatusOr<std::string> Sign(std::string_view message) const;

 private:
  explicit Signer(KeyMaterial key) : key_(std::move(key)) {}
  KeyMaterial key_;
};

class Verifier {
 public:
  // Loads a key file as described at the top of this header.
  static absl::StatusOr<Verifier> FromKeyFile(std::string_view path);
  static absl::StatusOr<Verifier> Hmac(std::string key);
  // An Ed25519 verifier from a PEM public key, or a PEM private key (its public half is used).
  static absl::StatusOr<Verifier> Ed25519FromPem(std::string_view pem);

  SignatureAlg alg() const { return key_.alg; }
  const std::string& key_id() const { return key_.key_id; }

  // True when `signature_hex` is a valid signature of `message` under this key. Malformed hex
  // is simply not valid. Comparison of HMACs is constant-time.
  bool Verify(std::string_view message, std::string_view signature_hex) const;

 private:
  explicit Verifier(KeyMaterial key) : key_(std::move(key)) {}
  KeyMaterial key_;
};

}  // namespace mcpmw::audit
