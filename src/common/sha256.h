// mcpmw common: SHA-256 as lowercase hex, the one digest every id and chain in mcpmw uses
// (governor decision ids, audit hash chains and key ids, redaction `hash`). OpenSSL underneath.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace mcpmw {

// SHA-256 of the concatenation of `parts`, as 64 lowercase hex digits. Thread-safe. Returns ""
// only if OpenSSL itself cannot compute SHA-256 (no provider), so a broken digest is visible
// rather than a silent collision.
std::string Sha256Hex(std::initializer_list<std::string_view> parts);
inline std::string Sha256Hex(std::string_view data) { return Sha256Hex({data}); }

}  // namespace mcpmw
