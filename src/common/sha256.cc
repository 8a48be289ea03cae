#include "src/common/sha256.h"

#include <openssl/evp.h>

#include <memory>

namespace mcpmw {

std::string Sha256Hex(std::initializer_list<std::string_view> parts) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Fetched once (EVP_sha256() would look the implementation up under a lock on every call) and
  // one context per thread, reset by each Init: the audit writer hashes every record.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                 EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (sha256 == nullptr || ctx == nullptr || EVP_DigestInit_ex(ctx.get(), sha256, nullptr) != 1) {
    return "";
  }
  for (std::string_view part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) {
      return "";
    }
  }
  if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    return "";
  }
  std::string out;
  out.reserve(size_t{2} * length);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

}  // namespace mcpmw
