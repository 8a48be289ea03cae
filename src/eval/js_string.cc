#include "src/eval/js_string.h"

#include <algorithm>
#include <cstdint>

#include "src/common/utf8.h"

namespace mcpmw::eval {
namespace {

size_t SequenceLength(unsigned char lead) {
  if (lead < 0x80) {
    return 1;
  }
  if (lead >= 0xF0) {
    return 4;
  }
  return lead >= 0xE0 ? 3 : 2;
}

// Decodes the code point starting at s[i]; `length` receives its byte count.
char32_t DecodeAt(std::string_view s, size_t i, size_t* length) {
  const auto lead = static_cast<unsigned char>(s[i]);
  size_t n = std::min(SequenceLength(lead), s.size() - i);
  *length = n;
  static constexpr unsigned char kLeadMask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  char32_t cp = lead & kLeadMask[n];
  for (size_t k = 1; k < n; ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  }
  return cp;
}

bool IsJsSpace(char32_t cp) {
  return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

// Simple lowercase mapping for the blocks listed in the header.
char32_t LowerCodePoint(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') {
    return cp + 0x20;
  }
  if (cp < 0xC0) {
    return cp;
  }
  if ((cp <= 0xDE && cp != 0xD7) || (cp >= 0xFF21 && cp <= 0xFF3A)) {
    return cp + 0x20;
  }
  if (cp >= 0x100 && cp <= 0x17F) {
    if (cp == 0x178) {
      return 0xFF;
    }
    // Pairs start on even code points, except U+0139..U+0148 and U+0179..U+017E (odd starts);
    // U+0138, U+0149 and U+017F have no uppercase pair.
    const bool odd_pairs = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
    if (cp == 0x138 || cp == 0x149 || cp == 0x17F) {
      return cp;
    }
    return (cp % 2 == (odd_pairs ? 1 : 0)) ? cp + 1 : cp;
  }
  if ((cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) || (cp >= 0x410 && cp <= 0x42F)) {
    return cp + 0x20;
  }
  if (cp == 0x386) {
    return 0x3AC;
  }
  if (cp >= 0x388 && cp <= 0x38A) {
    return cp + 0x25;
  }
  if (cp == 0x38C) {
    return 0x3CC;
  }
  if (cp == 0x38E || cp == 0x38F) {
    return cp + 0x3F;
  }
  if (cp >= 0x400 && cp <= 0x40F) {
    return cp + 0x50;
  }
  if (cp >= 0x531 && cp <= 0x556) {
    return cp + 0x30;
  }
  return cp;
}

}  // namespace

int CompareCodeUnits(std::string_view a, std::string_view b) {
  const size_t common = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < common && a[i] == b[i]) {
    ++i;
  }
  if (i == common) {
    return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
  }
  const auto ca = static_cast<unsigned char>(a[i]);
  const auto cb = static_cast<unsigned char>(b[i]);
  // With an equal valid prefix, i is a lead byte in both or a continuation byte in both. Only
  // an astral lead (F0..F4, a surrogate pair in UTF-16) against a U+E000..U+FFFF lead (EE, EF)
  // orders differently in UTF-16 than in UTF-8.
  const bool a_astral = ca >= 0xF0;
  const bool b_astral = cb >= 0xF0;
  if (a_astral != b_astral && (ca == 0xEE || ca == 0xEF || cb == 0xEE || cb == 0xEF)) {
    return a_astral ? -1 : 1;
  }
  return ca < cb ? -1 : 1;
}

std::string_view JsTrim(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t n = 0;
    if (!IsJsSpace(DecodeAt(s, begin, &n))) {
      break;
    }
    begin += n;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
      --start;
    }
    size_t n = 0;
    if (!IsJsSpace(DecodeAt(s, start, &n))) {
      break;
    }
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::string JsToLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = 0;
    char32_t cp = DecodeAt(s, i, &n);
    if (cp == 0x130) {
      out.append("i\xCC\x87");
    } else {
      AppendUtf8(LowerCodePoint(cp), &out);
    }
    i += n;
  }
  return out;
}

std::string_view Utf16Prefix(std::string_view s, size_t units) {
  size_t i = 0;
  size_t used = 0;
  while (i < s.size()) {
    const size_t n = SequenceLength(static_cast<unsigned char>(s[i]));
    const size_t cost = n == 4 ? 2 : 1;
    if (used + cost > units) {
      break;
    }
    used += cost;
    i = std::min(s.size(), i + n);
  }
  return s.substr(0, i);
}

}  // namespace mcpmw::eval
