// The text mcpmw-load sends with request `id`, shared with chain_bench so the micro bench
// governs exactly the bytes the end-to-end row does.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mcpmw::bench {

// Appends "<id>:" then letters that shift with the id, `bytes` long in all. Only characters that
// need no escaping, so an echo must carry the same bytes. The letters at positions i.. are
// kAlphabet[(id + i) % 62]...: one slice of the alphabet repeated, built once per length, so a
// message costs one to_chars and one append, not a division per byte (the generator shares the
// CPUs with what it measures).
inline void AppendLoadText(uint64_t id, size_t bytes, std::string* out) {
  static constexpr std::string_view kAlphabet =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::string repeated;
  if (repeated.size() < bytes + kAlphabet.size()) {
    repeated.clear();
    while (repeated.size() < bytes + kAlphabet.size()) {
      repeated.append(kAlphabet);
    }
  }
  char prefix[24];  // 20 digits and the colon
  char* end = std::to_chars(prefix, prefix + sizeof(prefix) - 1, id).ptr;
  *end++ = ':';
  const size_t head = std::min(static_cast<size_t>(end - prefix), bytes);
  out->append(prefix, head);
  out->append(repeated, (id + head) % kAlphabet.size(), bytes - head);
}

}  // namespace mcpmw::bench
