// Test support for mcpmw identity tests: fresh OpenSSL keys, their JWKs, and tokens minted with
// them, so every test signs with keys made at run time (nothing secret is checked in).
#pragma once

#include <openssl/types.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace mcpmw::http::identity::identity_testing {

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

// A new RSA key of `bits` (2048 unless a test wants a weak one) or a new P-256 key.
PkeyPtr NewRsaKey(int bits = 2048);
PkeyPtr NewEcKey();
std::string RandomBytes(size_t n);

// Unpadded base64url.
std::string B64(std::string_view bytes);

// The public JWK of a key, as a JSON object; `extra` (`,"alg":"RS256"`) is appended inside it.
std::string RsaJwk(EVP_PKEY* key, std::string_view kid, std::string_view extra = "");
std::string EcJwk(EVP_PKEY* key, std::string_view kid, std::string_view extra = "");
std::string OctJwk(std::string_view secret, std::string_view kid);
// {"keys":[…]}
std::string Jwks(std::initializer_list<std::string> jwks);

// Signatures over `input` in JWS form (ES256: raw R||S, 64 bytes).
std::string SignHs256(std::string_view secret, std::string_view input);
std::string SignRs256(EVP_PKEY* key, std::string_view input);
std::string SignEs256(EVP_PKEY* key, std::string_view input);

// A compact JWS from its header and payload JSON.
std::string MintHs256(std::string_view secret, std::string_view header, std::string_view payload);
std::string MintRs256(EVP_PKEY* key, std::string_view header, std::string_view payload);
std::string MintEs256(EVP_PKEY* key, std::string_view header, std::string_view payload);

// A new empty directory under the test temp dir.
std::string TempDir();
void WriteFile(const std::string& path, std::string_view contents);

}  // namespace mcpmw::http::identity::identity_testing
