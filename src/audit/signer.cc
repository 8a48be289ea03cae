#include "src/audit/signer.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/common/fd.h"
#include "src/common/log.h"
#include "src/common/sha256.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::audit {
namespace {

constexpr size_t kMinHmacKeyBytes = 16;
constexpr size_t kEd25519SignatureBytes = 64;

std::string Hex(const unsigned char* data, size_t size) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(data), size));
}

// Decodes lower- or upper-case hex; false on odd length or a non-hex digit.
bool DecodeHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) {
    return false;
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  *out = absl::HexStringToBytes(Sv(hex));
  return true;
}

std::string OpenSslError(std::string_view what) {
  unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type.
  char text[256] = {};
  if (code != 0) {
    ERR_error_string_n(code, text, sizeof(text));
  }
  ERR_clear_error();
  return absl::StrCat(Sv(what), code != 0 ? ": " : "", text);
}

absl::StatusOr<std::string> ReadKeyFile(std::string_view path) {
  std::string p(path);
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.Valid()) {
    int err = errno;
    std::string message = absl::StrCat("audit key file ", p, ": ", ErrnoText(err));
    if (err == ENOENT) {
      return absl::NotFoundError(message);
    }
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(message);
    }
    return absl::InternalError(message);
  }
  std::string content;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd.Get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return absl::InternalError(absl::StrCat("audit key file ", p, ": ", ErrnoText(errno)));
    }
    if (n == 0) {
      break;
    }
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > (1 << 20)) {
      return absl::InvalidArgumentError(absl::StrCat("audit key file ", p, ": larger than 1 MiB"));
    }
  }
  return content;
}

bool IsPem(std::string_view content) { return absl::StartsWith(Sv(content), "-----BEGIN"); }

// The HMAC key in a non-PEM key file: hex when it looks like hex, else the raw bytes.
absl::StatusOr<std::string> HmacKeyFromFileContent(std::string content) {
  std::string_view trimmed = Sv(absl::StripTrailingAsciiWhitespace(absl::string_view(content)));
  std::string decoded;
  if (trimmed.size() >= 2 * kMinHmacKeyBytes && DecodeHex(trimmed, &decoded)) {
    return decoded;
  }
  return content;
}

absl::Status CheckHmacKey(std::string_view key) {
  if (key.size() < kMinHmacKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("HMAC-SHA256 audit key has ", key.size(),
                                                   " bytes; at least ", kMinHmacKeyBytes,
                                                   " are required"));
  }
  return absl::OkStatus();
}

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* key) { return {key, EVP_PKEY_free}; }

absl::StatusOr<std::shared_ptr<EVP_PKEY>> ReadEd25519Pem(std::string_view pem, bool want_private) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (bio == nullptr) {
    return absl::ResourceExhaustedError(OpenSslError("BIO_new_mem_buf"));
  }
  EVP_PKEY* key = nullptr;
  if (absl::StartsWith(Sv(pem), "-----BEGIN PUBLIC KEY-----")) {
    if (want_private) {
      return absl::InvalidArgumentError(
          "audit signing key is a public key; signing needs the Ed25519 private key");
    }
    key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  } else {
    key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  }
  if (key == nullptr) {
    return absl::InvalidArgumentError(OpenSslError("audit key: not a readable PEM key"));
  }
  std::shared_ptr<EVP_PKEY> owned = Own(key);
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("audit key: PEM key is not an Ed25519 key");
  }
  return owned;
}

absl::StatusOr<std::string> Ed25519KeyId(EVP_PKEY* key) {
  unsigned char raw[32];
  size_t size = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &size) != 1) {
    return absl::InternalError(OpenSslError("EVP_PKEY_get_raw_public_key"));
  }
  std::string raw_key(reinterpret_cast<const char*>(raw), size);
  return Sha256Hex(raw_key).substr(0, 16);
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &size);
  return {reinterpret_cast<const char*>(mac), size};
}

absl::StatusOr<KeyMaterial> HmacKeyMaterial(std::string key) {
  MCPMW_RETURN_IF_ERROR(CheckHmacKey(key));
  KeyMaterial m;
  m.alg = SignatureAlg::kHmacSha256;
  m.key_id = Sha256Hex(key).substr(0, 16);
  m.hmac_key = std::move(key);
  return m;
}

absl::StatusOr<KeyMaterial> Ed25519KeyMaterial(std::string_view pem, bool want_private) {
  MCPMW_ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> key, ReadEd25519Pem(pem, want_private));
  KeyMaterial m;
  m.alg = SignatureAlg::kEd25519;
  MCPMW_ASSIGN_OR_RETURN(m.key_id, Ed25519KeyId(key.get()));
  m.pkey = std::move(key);
  return m;
}

absl::StatusOr<KeyMaterial> KeyMaterialFromFile(std::string_view path, bool want_private) {
  MCPMW_ASSIGN_OR_RETURN(std::string content, ReadKeyFile(path));
  if (IsPem(content)) {
    return Ed25519KeyMaterial(content, want_private);
  }
  MCPMW_ASSIGN_OR_RETURN(std::string key, HmacKeyFromFileContent(std::move(content)));
  return HmacKeyMaterial(std::move(key));
}

}  // namespace

std::string_view AlgName(SignatureAlg alg) {
  switch (alg) {
    case SignatureAlg::kHmacSha256:
      return "hmac-sha256";
    case SignatureAlg::kEd25519:
      return "ed25519";
  }
  return "unknown";
}

absl::StatusOr<Signer> Signer::FromKeyFile(std::string_view path) {
  MCPMW_ASSIGN_OR_RETURN(KeyMaterial key, KeyMaterialFromFile(path, true));
  return Signer(std::move(key));
}

absl::StatusOr<Signer> Signer::Hmac(std::string key) {
  MCPMW_ASSIGN_OR_RETURN(KeyMaterial m, HmacKeyMaterial(std::move(key)));
  return Signer(std::move(m));
}

absl::StatusOr<Signer> Signer::Ed25519FromPem(std::string_view pem) {
  MCPMW_ASSIGN_OR_RETURN(KeyMaterial key, Ed25519KeyMaterial(pem, true));
  return Signer(std::move(key));
}

absl::StatusOr<std::string> Signer::Sign(std::string_view message) const {
  if (key_.alg == SignatureAlg::kHmacSha256) {
    std::string mac = HmacSha256(key_.hmac_key, message);
    return absl::BytesToHexString(Sv(std::string_view(mac)));
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char sig[kEd25519SignatureBytes];
  size_t size = sizeof(sig);
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &size, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return absl::InternalError(OpenSslError("Ed25519 signing failed"));
  }
  return Hex(sig, size);
}

absl::StatusOr<Verifier> Verifier::FromKeyFile(std::string_view path) {
  MCPMW_ASSIGN_OR_RETURN(KeyMaterial key, KeyMaterialFromFile(path, false));
  return Verifier(std::move(key));
}

absl::StatusOr<Verifier> Verifier::Hmac(std::string key) {
  MCPMW_ASSIGN_OR_RETURN(KeyMaterial m, HmacKeyMaterial(std::move(key)));
  return Verifier(std::move(m));
}

absl::StatusOr<Verifier> Verifier::Ed25519FromPem(std::string_view pem) {
  MCPMW_ASSIGN_OR_RETURN(KeyMaterial key, Ed25519KeyMaterial(pem, false));
  return Verifier(std::move(key));
}

bool Verifier::Verify(std::string_view message, std::string_view signature_hex) const {
  std::string signature;
  if (!DecodeHex(signature_hex, &signature)) {
    return false;
  }
  if (key_.alg == SignatureAlg::kHmacSha256) {
    std::string mac = HmacSha256(key_.hmac_key, message);
    return mac.size() == signature.size() &&
           CRYPTO_memcmp(mac.data(), signature.data(), mac.size()) == 0;
  }
  if (signature.size() != kEd25519SignatureBytes) {
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  bool ok =
      ctx != nullptr &&
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.pkey.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace mcpmw::audit
