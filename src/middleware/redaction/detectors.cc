#include "src/middleware/redaction/detectors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"
#include "src/common/strings.h"

namespace mcpmw::redaction {
namespace {

// Byte classes for the pre-filter and the scanners. One table lookup answers "is this byte a
// digit / uppercase / ..." and, OR-ed over the text, which classes the text holds at all.
using Classes = uint16_t;
enum : Classes {
  kDigit = 1 << 0,
  kUpper = 1 << 1,
  kAt = 1 << 2,
  kDash = 1 << 3,
  kUnderscore = 1 << 4,
  kDot = 1 << 5,
  kBlank = 1 << 6,     // space, tab
  kSep = 1 << 7,       // ':' '='
  kCapitalA = 1 << 8,  // 'A' (AKIA, ASIA, AIza)
  kCapitalJ = 1 << 9,  // 'J' (a JWT starts eyJ)
  // Not a byte class: 13 or more bytes in a row that are digits, spaces or dashes, which every
  // card number spans (13-19 digits with single separators). Set by ClassesOf only.
  kCardRun = 1 << 10,
};

constexpr std::array<Classes, 256> MakeClassTable() {
  std::array<Classes, 256> t{};
  for (int c = '0'; c <= '9'; ++c) {
    t[c] = kDigit;
  }
  for (int c = 'A'; c <= 'Z'; ++c) {
    t[c] = kUpper;
  }
  t['A'] |= kCapitalA;
  t['J'] |= kCapitalJ;
  t['@'] = kAt;
  t['-'] = kDash;
  t['_'] = kUnderscore;
  t['.'] = kDot;
  t[' '] = kBlank;
  t['\t'] = kBlank;
  t[':'] = kSep;
  t['='] = kSep;
  return t;
}
constexpr std::array<Classes, 256> kClass = MakeClassTable();

// A table of the bytes a scanner stops at, so it can skip everything else in a tight loop.
constexpr std::array<bool, 256> Triggers(std::string_view bytes) {
  std::array<bool, 256> t{};
  for (char c : bytes) {
    t[static_cast<unsigned char>(c)] = true;
  }
  return t;
}

// Which cloud-key kinds the text's classes allow: an AWS secret needs its label's ':' or '='
// (kSep), GitHub and Stripe keys a '_', Slack tokens a '-', AWS key ids and GCP keys an 'A'.
enum : uint8_t { kCloudSep = 1, kCloudUnderscore = 2, kCloudDash = 4, kCloudA = 8 };

// A bearer token starts at B/b (and needs a blank after the word); a JWT is found at the 'J' of
// its "eyJ" (and needs two dots). 'e', the commonest letter, is no trigger.
constexpr std::array<bool, 256> kBearerWordTriggers = Triggers("Bb");
constexpr std::array<bool, 256> kJwtTriggers = Triggers("J");
constexpr std::array<bool, 256> kBearerAndJwtTriggers = Triggers("BbJ");

inline unsigned char U(char c) { return static_cast<unsigned char>(c); }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
inline bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
inline bool IsAlpha(char c) { return IsUpper(c) || IsLower(c); }
inline bool IsAlnum(char c) { return IsDigit(c) || IsAlpha(c); }
inline bool IsBase64Url(char c) { return IsAlnum(c) || c == '-' || c == '_'; }
inline char Lower(char c) { return IsUpper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

// True when text[i, i + word.size()) equals `word` (lowercase) ignoring ASCII case.
bool EqualsFold(std::string_view text, size_t i, std::string_view word) {
  if (i + word.size() > text.size()) {
    return false;
  }
  for (size_t k = 0; k < word.size(); ++k) {
    if (Lower(text[i + k]) != word[k]) {
      return false;
    }
  }
  return true;
}

bool StartsWithAt(std::string_view text, size_t i, std::string_view prefix) {
  return text.size() >= i && text.substr(i).starts_with(prefix);
}

// Length of the run of bytes satisfying `pred` starting at text[i].
template <typename Pred>
size_t RunLength(std::string_view text, size_t i, Pred pred) {
  size_t j = i;
  while (j < text.size() && pred(text[j])) {
    ++j;
  }
  return j - i;
}

struct Candidate {
  size_t begin;
  size_t end;
};
using Sink = std::vector<Candidate>;

// --- sixteen bytes at a time -----------------------------------------------------------------

// GCC/Clang vector extensions: SSE2 on x86-64, NEON on arm64. A compare gives 0xff in each lane
// that holds and 0 elsewhere.
using V16 = uint8_t __attribute__((vector_size(16)));

bool AnyLane(V16 lanes) {
  uint64_t half[2];
  std::memcpy(half, &lanes, sizeof(half));
  return (half[0] | half[1]) != 0;
}

// Offset of the first lane that holds, or sizeof(V16) when none. Lane k is byte k of the words
// on a little-endian machine only: callers use it under that test.
size_t FirstLane(V16 hit) {
  uint64_t half[2];
  std::memcpy(half, &hit, sizeof(half));
  if (half[0] != 0) {
    return static_cast<size_t>(std::countr_zero(half[0])) / 8;
  }
  if (half[1] != 0) {
    return 8 + static_cast<size_t>(std::countr_zero(half[1])) / 8;
  }
  return sizeof(V16);
}

// Bit k set when lane k holds: one bit per byte, SSE2's movemask on x86-64, elsewhere the low bit
// of each lane gathered by a multiply (lane k is byte k of the words: callers use it on a
// little-endian machine only).
uint32_t LaneBits(V16 lanes) {
#if defined(__SSE2__)
  __m128i v;
  std::memcpy(&v, &lanes, sizeof(v));
  return static_cast<uint32_t>(_mm_movemask_epi8(v));
#else
  uint64_t half[2];
  std::memcpy(half, &lanes, sizeof(half));
  auto gather = [](uint64_t h) {
    return static_cast<uint32_t>(((h & 0x0101010101010101ULL) * 0x0102040810204080ULL) >> 56);
  };
  return gather(half[0]) | (gather(half[1]) << 8);
#endif
}

V16 DigitLanes(V16 v) { return (V16)(static_cast<V16>(v - '0') < 10); }
V16 AlnumLanes(V16 v) {
  return (V16)(DigitLanes(v) | (V16)(static_cast<V16>(v - 'A') < 26) |
               (V16)(static_cast<V16>(v - 'a') < 26));
}

// The first position from `i` on whose byte `scalar` accepts (t.size() when none); `lanes` is the
// same test on sixteen bytes. Scanners use it to skip the long stretches between candidates.
template <typename Lanes, typename Scalar>
size_t FindNext(std::string_view t, size_t i, Lanes lanes, Scalar scalar) {
  if constexpr (std::endian::native == std::endian::little) {  // lane k is byte k of the words
    for (; i + sizeof(V16) <= t.size(); i += sizeof(V16)) {
      V16 v;
      std::memcpy(&v, t.data() + i, sizeof(V16));
      if (size_t lane = FirstLane(lanes(v)); lane < sizeof(V16)) {
        return i + lane;
      }
    }
  }
  while (i < t.size() && !scalar(t[i])) {
    ++i;
  }
  return i;
}

// --- e-mail ----------------------------------------------------------------------------------

// Bytes >= 0x80 are allowed so internationalised addresses (RFC 6531) are taken whole.
bool IsLocalChar(char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || U(c) >= 0x80;
}
bool IsLabelChar(char c) { return IsAlnum(c) || c == '-' || U(c) >= 0x80; }
bool IsSlackChar(char c) { return IsAlnum(c) || c == '-'; }

void FindEmails(std::string_view t, Classes /*classes*/, Sink* out) {
  constexpr size_t kMaxLocal = 64;
  size_t floor = 0;  // a local part never reaches back into the previous match
  size_t pos = 0;
  while (pos < t.size()) {
    const void* hit = std::memchr(t.data() + pos, '@', t.size() - pos);
    if (hit == nullptr) {
      return;
    }
    size_t at = static_cast<const char*>(hit) - t.data();
    pos = at + 1;
    size_t b = at;
    while (b > floor && at - b < kMaxLocal && IsLocalChar(t[b - 1])) {
      --b;
    }
    if (b > floor && IsLocalChar(t[b - 1])) {
      continue;  // local part longer than 64
    }
    while (b < at && t[b] == '.') {
      ++b;
    }
    if (b == at) {
      continue;
    }
    // Domain: labels separated by single dots; stop at the first byte that cannot continue it.
    size_t i = at + 1;
    size_t labels = 0;
    size_t last_label = i;
    bool valid = true;
    while (true) {
      size_t len = RunLength(t, i, IsLabelChar);
      if (len == 0 || len > 63 || t[i] == '-' || t[i + len - 1] == '-') {
        valid = false;
        break;
      }
      ++labels;
      last_label = i;
      i += len;
      if (i + 1 < t.size() && t[i] == '.' && IsLabelChar(t[i + 1])) {
        ++i;
        continue;
      }
      break;
    }
    if (!valid || labels < 2 || (i < t.size() && t[i] == '_')) {
      continue;
    }
    size_t tld = i - last_label;
    bool alpha = tld >= 2 && std::all_of(t.begin() + last_label, t.begin() + i, IsAlpha);
    if (!alpha) {
      continue;
    }
    out->push_back({b, i});
    floor = i;
    pos = i;
  }
}

// --- card numbers ----------------------------------------------------------------------------

bool LuhnValid(std::string_view digits_with_separators) {
  int sum = 0;
  bool twice = false;
  for (size_t k = digits_with_separators.size(); k-- > 0;) {
    char c = digits_with_separators[k];
    if (!IsDigit(c)) {
      continue;
    }
    int d = c - '0';
    if (twice) {
      d *= 2;
      if (d > 9) {
        d -= 9;
      }
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

void FindCards(std::string_view t, Classes /*classes*/, Sink* out) {
  constexpr size_t kMinDigits = 13;
  constexpr size_t kMaxDigits = 19;
  const size_t n = t.size();
  size_t i = 0;
  while (i < n) {
    i = FindNext(t, i, DigitLanes, IsDigit);
    if (i == n) {
      return;
    }
    if (i > 0 && IsAlpha(t[i - 1])) {
      i = FindNext(
          t, i, [](V16 v) { return (V16)~AlnumLanes(v); }, [](char c) { return !IsAlnum(c); });
      continue;
    }
    const size_t first_len = RunLength(t, i, IsDigit);
    if (t[i] < '2' || t[i] > '6' || first_len > kMaxDigits) {
      i += first_len;  // the next group may still start a card
      continue;
    }
    // Groups of digits joined by single separators, read no further than 19 digits; remember
    // where each group ends (digit counts only grow, so the arrays are filled in order).
    std::array<size_t, kMaxDigits> ends;  // [0, groups) are set
    std::array<size_t, kMaxDigits> counts;
    size_t groups = 0;
    size_t digits = 0;
    size_t j = i;
    bool run_ended = false;
    while (true) {
      size_t len = RunLength(t, j, IsDigit);
      j += len;
      digits += len;
      if (digits > kMaxDigits) {
        break;
      }
      ends[groups] = j;
      counts[groups] = digits;
      ++groups;
      if (j + 1 < n && (t[j] == ' ' || t[j] == '-') && IsDigit(t[j + 1])) {
        ++j;
        continue;
      }
      run_ended = true;
      break;
    }
    size_t matched = 0;
    for (size_t g = groups; g-- > 0 && counts[g] >= kMinDigits;) {
      bool last = run_ended && g + 1 == groups;
      if (last && j < n && IsAlpha(t[j])) {
        continue;  // glued to a word
      }
      if (LuhnValid(t.substr(i, ends[g] - i))) {
        matched = ends[g];
        break;
      }
    }
    if (matched != 0) {
      out->push_back({i, matched});
      i = matched;
    } else {
      i += first_len;
    }
  }
}

// --- US SSN ----------------------------------------------------------------------------------

void FindSsns(std::string_view t, Classes /*classes*/, Sink* out) {
  constexpr size_t kLen = 11;  // ddd-dd-dddd
  size_t pos = 3;
  while (pos < t.size()) {
    const void* hit = std::memchr(t.data() + pos, '-', t.size() - pos);
    if (hit == nullptr) {
      return;
    }
    size_t dash = static_cast<const char*>(hit) - t.data();
    pos = dash + 1;
    if (dash < 3 || dash + 8 > t.size()) {
      continue;
    }
    size_t b = dash - 3;
    std::string_view s = t.substr(b, kLen);
    if (!(IsDigit(s[0]) && IsDigit(s[1]) && IsDigit(s[2]) && IsDigit(s[4]) && IsDigit(s[5]) &&
          s[6] == '-' && IsDigit(s[7]) && IsDigit(s[8]) && IsDigit(s[9]) && IsDigit(s[10]))) {
      continue;
    }
    size_t e = b + kLen;
    if (b > 0 && (IsAlnum(t[b - 1]) || (t[b - 1] == '-' && b > 1 && IsDigit(t[b - 2])))) {
      continue;
    }
    if (e < t.size() && (IsAlnum(t[e]) || (t[e] == '-' && e + 1 < t.size() && IsDigit(t[e + 1])))) {
      continue;
    }
    std::string_view area = s.substr(0, 3);
    if (area == "000" || area == "666" || area[0] == '9' || s.substr(4, 2) == "00" ||
        s.substr(7, 4) == "0000") {
      continue;
    }
    out->push_back({b, e});
    pos = e;
  }
}

// --- IBAN ------------------------------------------------------------------------------------

bool IbanChecksumValid(std::string_view text) {
  // ISO 13616: move the first four characters to the end, letters become 10..35, mod 97 == 1.
  std::array<char, 34> chars{};
  size_t n = 0;
  for (char c : text) {
    if (c != ' ') {
      chars[n++] = c;
    }
  }
  int r = 0;
  for (size_t k = 0; k < n; ++k) {
    char c = chars[(k + 4) % n];
    if (IsDigit(c)) {
      r = (r * 10 + (c - '0')) % 97;
    } else {
      r = (r * 100 + (c - 'A' + 10)) % 97;
    }
  }
  return r == 1;
}

void FindIbans(std::string_view t, Classes /*classes*/, Sink* out) {
  constexpr size_t kMin = 15;
  constexpr size_t kMax = 34;
  auto iban_char = [](char c) { return IsUpper(c) || IsDigit(c); };
  size_t i = 0;
  while (i + 4 <= t.size()) {
    while (i + 4 <= t.size() && (kClass[U(t[i])] & kUpper) == 0) {
      ++i;
    }
    if (i + 4 > t.size()) {
      return;
    }
    if (!(IsUpper(t[i]) && IsUpper(t[i + 1]) && IsDigit(t[i + 2]) && IsDigit(t[i + 3])) ||
        (i > 0 && IsAlnum(t[i - 1]))) {
      ++i;
      continue;
    }
    struct GroupEnd {
      size_t end;
      size_t chars;
    };
    std::array<GroupEnd, kMax> ends{};
    size_t groups = 0;
    size_t chars = 0;
    size_t j = i;
    while (true) {
      size_t len = RunLength(t, j, iban_char);
      j += len;
      chars += len;
      if (groups < ends.size()) {
        ends[groups++] = {j, chars};
      }
      if (chars <= kMax && j + 1 < t.size() && t[j] == ' ' && iban_char(t[j + 1])) {
        ++j;
        continue;
      }
      break;
    }
    bool right_ok = j == t.size() || !IsLower(t[j]);
    size_t matched = 0;
    for (size_t g = groups; g-- > 0;) {
      const GroupEnd& ge = ends[g];
      if (ge.chars < kMin || ge.chars > kMax || (ge.end == j && !right_ok)) {
        continue;
      }
      if (IbanChecksumValid(t.substr(i, ge.end - i))) {
        matched = ge.end;
        break;
      }
    }
    if (matched != 0) {
      out->push_back({i, matched});
      i = matched;
    } else {
      i += 4;
    }
  }
}

// --- cloud keys ------------------------------------------------------------------------------

// Exactly `len` bytes satisfying `body` at text[i], and the next byte does not.
template <typename Pred>
bool FixedBody(std::string_view t, size_t i, size_t len, Pred body) {
  return RunLength(t, i, body) == len;
}

bool IsAwsSecretChar(char c) { return IsAlnum(c) || c == '/' || c == '+'; }

// At `i` a case-insensitive "secret": when it sits in a label naming an AWS secret key followed
// by an assignment and a 40-character value, returns the value's [begin, end).
bool AwsSecret(std::string_view t, size_t i, Candidate* value) {
  auto ident = [](char c) { return IsAlnum(c) || c == '_' || c == '-'; };
  size_t lb = i;
  while (lb > 0 && ident(t[lb - 1])) {
    --lb;
  }
  size_t le = i + RunLength(t, i, ident);
  std::string label;
  for (size_t k = lb; k < le && label.size() < 64; ++k) {
    if (t[k] != '_' && t[k] != '-') {
      label.push_back(Lower(t[k]));
    }
  }
  if (label.find("secretaccesskey") == std::string::npos &&
      label.find("awssecret") == std::string::npos) {
    return false;
  }
  size_t j = le;
  auto skip = [&](auto pred) {
    while (j < t.size() && pred(t[j])) {
      ++j;
    }
  };
  auto quote = [](char c) { return c == '"' || c == '\''; };
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  if (j < t.size() && quote(t[j])) {
    ++j;
  }
  skip(blank);
  if (j < t.size() && t[j] == ':') {
    ++j;
  } else if (j < t.size() && t[j] == '=') {
    ++j;
    if (j < t.size() && t[j] == '>') {
      ++j;
    }
  } else {
    return false;
  }
  skip(blank);
  if (j < t.size() && quote(t[j])) {
    ++j;
  }
  constexpr size_t kLen = 40;
  if (RunLength(t, j, IsAwsSecretChar) != kLen || (j + kLen < t.size() && t[j + kLen] == '=')) {
    return false;
  }
  *value = {j, j + kLen};
  return true;
}

// A cloud key starting at `i` (a word start); sets `*c` and returns true when one does.
bool CloudKeyAt(std::string_view t, size_t i, Candidate* c) {
  auto upper_alnum = [](char ch) { return IsUpper(ch) || IsDigit(ch); };
  switch (t[i]) {
    case 'A':
      if ((StartsWithAt(t, i, "AKIA") || StartsWithAt(t, i, "ASIA")) &&
          FixedBody(t, i + 4, 16, upper_alnum) && (i + 20 == t.size() || !IsAlnum(t[i + 20]))) {
        *c = {i, i + 20};
        return true;
      }
      if (StartsWithAt(t, i, "AIza") && FixedBody(t, i + 4, 35, IsBase64Url)) {
        *c = {i, i + 39};
        return true;
      }
      return false;
    case 'g':
      if (i + 4 <= t.size() && t[i + 1] == 'h' && t[i + 3] == '_' &&
          std::string_view("pousr").find(t[i + 2]) != std::string_view::npos &&
          FixedBody(t, i + 4, 36, IsAlnum) && (i + 40 == t.size() || t[i + 40] != '_')) {
        *c = {i, i + 40};
        return true;
      }
      if (StartsWithAt(t, i, "github_pat_") &&
          FixedBody(t, i + 11, 82, [](char ch) { return IsAlnum(ch) || ch == '_'; })) {
        *c = {i, i + 93};
        return true;
      }
      return false;
    case 'x':
      if (StartsWithAt(t, i, "xox") && i + 5 <= t.size() &&
          std::string_view("abprs").find(t[i + 3]) != std::string_view::npos && t[i + 4] == '-') {
        size_t len = RunLength(t, i + 5, IsSlackChar);
        while (len > 0 && t[i + 5 + len - 1] == '-') {
          --len;
        }
        if (len >= 10) {
          *c = {i, i + 5 + len};
          return true;
        }
      }
      return false;
    case 's':
    case 'r':
      if (StartsWithAt(t, i + 1, "k_live_")) {
        size_t len = RunLength(t, i + 8, IsAlnum);
        if (len >= 16 && (i + 8 + len == t.size() || t[i + 8 + len] != '_')) {
          *c = {i, i + 8 + len};
          return true;
        }
      }
      return false;
    default:
      return false;
  }
}

// The next position from `i` on where a cloud key can start: a trigger letter at a word start
// (the text's first byte, or one after a byte that is not a letter or digit) — 'A' (AKIA, ASIA,
// AIza), 'g', 's', 'r' (GitHub and Stripe keys) or 'x' (Slack), as `need` allows — or, when the
// text holds ':' or '=', an "sec" in any case, where a label naming an AWS secret may say
// "secret". Sixteen positions at a time, each lane reading its byte, the one before and the two
// after; in text made of long words, as most is, hardly a position qualifies.
size_t NextCloudStart(std::string_view t, size_t i, uint8_t need) {
  const bool sep = (need & kCloudSep) != 0;
  const bool underscore = (need & kCloudUnderscore) != 0;
  const bool dash = (need & kCloudDash) != 0;
  const bool capital_a = (need & kCloudA) != 0;
  auto at = [&](size_t k) {
    const char ch = t[k];
    if (sep && (ch | 0x20) == 's' && k + 2 < t.size() && (t[k + 1] | 0x20) == 'e' &&
        (t[k + 2] | 0x20) == 'c') {
      return true;
    }
    if (k > 0 && IsAlnum(t[k - 1])) {
      return false;
    }
    return (underscore && (ch == 'g' || ch == 's' || ch == 'r')) || (dash && ch == 'x') ||
           (capital_a && ch == 'A');
  };
  if (i == 0) {
    if (!t.empty() && at(0)) {
      return 0;
    }
    i = 1;
  }
  if constexpr (std::endian::native == std::endian::little) {  // lane k is byte k of the words
    constexpr size_t kReach = sizeof(V16) + 2;                 // bytes a step reads from i on
    for (; i + kReach <= t.size(); i += sizeof(V16)) {
      V16 before;
      V16 v;
      V16 next1;
      V16 next2;
      std::memcpy(&before, t.data() + i - 1, sizeof(V16));
      std::memcpy(&v, t.data() + i, sizeof(V16));
      std::memcpy(&next1, t.data() + i + 1, sizeof(V16));
      std::memcpy(&next2, t.data() + i + 2, sizeof(V16));
      V16 starts{};
      if (underscore) {
        starts |= (V16)((v == 'g') | (v == 's') | (v == 'r'));
      }
      if (dash) {
        starts |= (V16)(v == 'x');
      }
      if (capital_a) {
        starts |= (V16)(v == 'A');
      }
      V16 hit = (V16)(starts & ~AlnumLanes(before));
      if (sep) {
        hit |= (V16)(((v | 0x20) == 's') & ((next1 | 0x20) == 'e') & ((next2 | 0x20) == 'c'));
      }
      if (size_t lane = FirstLane(hit); lane < sizeof(V16)) {
        return i + lane;
      }
    }
  }
  while (i < t.size() && !at(i)) {
    ++i;
  }
  return i;
}

void FindCloudKeys(std::string_view t, Classes classes, Sink* out) {
  const uint8_t need = ((classes & kSep) != 0 ? kCloudSep : 0) |
                       ((classes & kUnderscore) != 0 ? kCloudUnderscore : 0) |
                       ((classes & kDash) != 0 ? kCloudDash : 0) |
                       ((classes & kCapitalA) != 0 ? kCloudA : 0);
  size_t i = 0;
  while (i < t.size()) {
    i = NextCloudStart(t, i, need);
    if (i == t.size()) {
      return;
    }
    char ch = t[i];
    Candidate c{};
    if ((ch == 's' || ch == 'S') && EqualsFold(t, i, "secret") && AwsSecret(t, i, &c)) {
      out->push_back(c);
      i = c.end;
      continue;
    }
    if ((ch == 'A' || ch == 'g' || ch == 'x' || ch == 's' || ch == 'r') &&
        (i == 0 || !IsAlnum(t[i - 1])) && CloudKeyAt(t, i, &c)) {
      out->push_back(c);
      i = c.end;
      continue;
    }
    ++i;
  }
}

// --- bearer tokens and JWTs ------------------------------------------------------------------

bool IsToken68(char c) {
  return IsAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

bool JwtAt(std::string_view t, size_t i, Candidate* c) {
  if (!StartsWithAt(t, i, "eyJ")) {
    return false;
  }
  size_t h = RunLength(t, i, IsBase64Url);
  size_t j = i + h;
  if (h < 10 || j >= t.size() || t[j] != '.') {
    return false;
  }
  size_t p = RunLength(t, j + 1, IsBase64Url);
  j += 1 + p;
  if (p < 4 || j >= t.size() || t[j] != '.') {
    return false;
  }
  j += 1 + RunLength(t, j + 1, IsBase64Url);
  *c = {i, j};
  return true;
}

bool BearerAt(std::string_view t, size_t i, Candidate* c) {
  if (!EqualsFold(t, i, "bearer")) {
    return false;
  }
  size_t j = i + 6;
  size_t blanks = RunLength(t, j, [](char ch) { return ch == ' ' || ch == '\t'; });
  if (blanks == 0) {
    return false;
  }
  j += blanks;
  size_t len = RunLength(t, j, IsToken68);
  len += RunLength(t, j + len, [](char ch) { return ch == '='; });
  while (len > 0 && (t[j + len - 1] == '.' || t[j + len - 1] == ',')) {
    --len;
  }
  std::string_view token = t.substr(j, len);
  bool digit = std::any_of(token.begin(), token.end(), IsDigit);
  if (!((len >= 8 && digit) || len >= 20)) {
    return false;
  }
  *c = {j, j + len};
  return true;
}

// True when `t` holds "bear" in any case (where a bearer word must begin, when `words`) or
// "eyJ" (where a JWT must begin, when `jwts`): the scan below runs only then. Sixteen starts at
// a time; ASCII letters fold to lower case with | 0x20.
bool MayHoldBearerOrJwt(std::string_view t, bool words, bool jwts) {
  constexpr size_t kLookahead = 3;
  constexpr size_t kBlock = sizeof(V16) + kLookahead;  // bytes one step reads
  size_t i = 0;
  // The last step starts at t.size() - kBlock (overlapping the one before), so only text shorter
  // than a block is left for the byte-by-byte loop. Starts in the last three bytes are not
  // looked at: no bearer word or JWT fits there.
  for (bool last = t.size() < kBlock; !last; i += sizeof(V16)) {
    if (i + kBlock >= t.size()) {
      i = t.size() - kBlock;
      last = true;
    }
    V16 b0;
    V16 b1;
    V16 b2;
    V16 b3;
    std::memcpy(&b0, t.data() + i, sizeof(V16));
    std::memcpy(&b1, t.data() + i + 1, sizeof(V16));
    std::memcpy(&b2, t.data() + i + 2, sizeof(V16));
    std::memcpy(&b3, t.data() + i + 3, sizeof(V16));
    V16 hit{};
    if (words) {
      hit |= (V16)(((b0 | 0x20) == 'b') & ((b1 | 0x20) == 'e') & ((b2 | 0x20) == 'a') &
                   ((b3 | 0x20) == 'r'));
    }
    if (jwts) {
      hit |= (V16)((b0 == 'e') & (b1 == 'y') & (b2 == 'J'));
    }
    if (AnyLane(hit)) {
      return true;
    }
  }
  if (t.size() >= kBlock) {
    return false;
  }
  for (i = 0; i < t.size(); ++i) {
    if ((words && EqualsFold(t, i, "bear")) || (jwts && StartsWithAt(t, i, "eyJ"))) {
      return true;
    }
  }
  return false;
}

void FindBearerTokens(std::string_view t, Classes classes, Sink* out) {
  const bool words = (classes & kBlank) != 0;
  const bool jwts = (classes & (kCapitalJ | kDot)) == (kCapitalJ | kDot);
  if ((!words && !jwts) || !MayHoldBearerOrJwt(t, words, jwts)) {
    return;
  }
  const std::array<bool, 256>& triggers = words && jwts ? kBearerAndJwtTriggers
                                          : words       ? kBearerWordTriggers
                                                        : kJwtTriggers;
  // Left to right from `floor` (where the scan resumed after the last match), every position is
  // tried as a start: a bearer word where it begins with B/b, a JWT where it begins "eyJ". The
  // JWT start is tried on reaching its 'J', two bytes on; no bearer word can start in between.
  size_t floor = 0;
  size_t i = 0;
  while (i < t.size()) {
    while (i < t.size() && !triggers[U(t[i])]) {
      ++i;
    }
    if (i == t.size()) {
      return;
    }
    char ch = t[i];
    Candidate c{};
    if ((ch == 'B' || ch == 'b') && (i == 0 || !IsAlnum(t[i - 1])) && BearerAt(t, i, &c)) {
      out->push_back(c);
      i = floor = c.end;
      continue;
    }
    if (ch == 'J' && i >= floor + 2 && t[i - 1] == 'y' && t[i - 2] == 'e') {
      size_t start = i - 2;
      if ((start == 0 || !IsBase64Url(t[start - 1])) && JwtAt(t, start, &c)) {
        out->push_back(c);
        i = floor = c.end;
        continue;
      }
    }
    ++i;
  }
}

// --- private keys ----------------------------------------------------------------------------

// At `i` a "-----BEGIN " or "-----END " marker: returns the end of its "… PRIVATE KEY-----"
// line, or 0 when the marker is of something else.
size_t PrivateKeyMarkerEnd(std::string_view t, size_t i, std::string_view marker) {
  constexpr std::string_view kSuffix = "PRIVATE KEY";
  size_t j = i + marker.size();
  size_t label = RunLength(t, j, [](char c) { return IsUpper(c) || IsDigit(c) || c == ' '; });
  std::string_view l = t.substr(j, label);
  if (!l.ends_with(kSuffix) || !StartsWithAt(t, j + label, "-----")) {
    return 0;
  }
  return j + label + 5;
}

void FindPrivateKeys(std::string_view t, Classes /*classes*/, Sink* out) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  constexpr std::string_view kEnd = "-----END ";
  size_t pos = 0;
  while ((pos = t.find(kBegin, pos)) != std::string_view::npos) {
    size_t header_end = PrivateKeyMarkerEnd(t, pos, kBegin);
    if (header_end == 0) {
      pos += kBegin.size();
      continue;
    }
    size_t end = t.size();  // no END line: fail closed, to the end of the text
    for (size_t e = t.find(kEnd, header_end); e != std::string_view::npos;
         e = t.find(kEnd, e + kEnd.size())) {
      if (size_t footer_end = PrivateKeyMarkerEnd(t, e, kEnd); footer_end != 0) {
        end = footer_end;
        break;
      }
    }
    out->push_back({pos, end});
    pos = end;
  }
}

// --- the fixed kinds -------------------------------------------------------------------------

struct FixedKind {
  void (*find)(std::string_view, Classes, Sink*);  // also given the classes the text holds
  size_t min_length;
  Classes all_of;  // classes the text must all hold
  Classes any_of;  // classes of which the text must hold one (0: none needed)
};

const FixedKind& Fixed(DetectorKind kind) {
  static constexpr FixedKind kEmail{FindEmails, 6, kAt | kDot, 0};
  static constexpr FixedKind kCard{FindCards, 13, kDigit | kCardRun, 0};
  static constexpr FixedKind kSsn{FindSsns, 11, kDigit | kDash, 0};
  static constexpr FixedKind kIban{FindIbans, 15, kDigit | kUpper, 0};
  static constexpr FixedKind kCloud{FindCloudKeys, 15, 0, kCapitalA | kUnderscore | kDash | kSep};
  static constexpr FixedKind kBearer{FindBearerTokens, 8, 0, kBlank | kDot};
  static constexpr FixedKind kPrivateKey{FindPrivateKeys, 40, kDash | kUpper | kBlank, 0};
  switch (kind) {
    case DetectorKind::kEmail:
      return kEmail;
    case DetectorKind::kCardNumber:
      return kCard;
    case DetectorKind::kUsSsn:
      return kSsn;
    case DetectorKind::kIban:
      return kIban;
    case DetectorKind::kCloudKey:
      return kCloud;
    case DetectorKind::kBearerToken:
      return kBearer;
    case DetectorKind::kPrivateKey:
    case DetectorKind::kCustom:  // never asked: custom detectors have no fixed scanner
      return kPrivateKey;
  }
  return kPrivateKey;
}

// Bit k of the result set when bits k..k+12 of `bits` all are: where a run of 13 starts.
uint64_t RunsOf13(uint64_t bits) {
  uint64_t r = bits & (bits >> 1);  // runs of 2
  r &= r >> 2;                      // 4
  r &= r >> 4;                      // 8
  return r & (r >> 5);              // 13
}

bool IsCardRunByte(char c) { return IsDigit(c) || c == ' ' || c == '-'; }

// The classes present in `text`, and kCardRun. Sixteen bytes at a time, each class a compare (or
// two) OR-ed into its own lane mask, so the loop has no table lookups and no dependency between
// bytes; a tail shorter than a block is read as the last sixteen bytes (overlap does not matter
// to an OR). Text shorter than one block, and all text on a big-endian machine (where the lane
// bits would come out in another order), goes byte by byte through kClass. kCardRun keeps the
// card-class bits of the last 64 bytes read (the tail's overlap shifted out) and looks for 13
// set in a row. GCC/Clang vector extensions: SSE2 on x86-64, NEON on arm64.
Classes ClassesOf(std::string_view text) {
  size_t i = 0;
  Classes seen = 0;
  if (text.size() >= sizeof(V16) && std::endian::native == std::endian::little) {
    V16 digit{};
    V16 upper{};
    V16 at{};
    V16 dash{};
    V16 underscore{};
    V16 dot{};
    V16 blank{};
    V16 sep{};
    V16 capital_a{};
    V16 capital_j{};
    uint64_t window = 0;  // card-class bits of the last 64 bytes, the newest in the top bits
    uint64_t runs = 0;
    for (bool last = false; !last; i += sizeof(V16)) {
      size_t fresh = sizeof(V16);  // bytes of this block not read before
      if (i + sizeof(V16) >= text.size()) {
        fresh = text.size() - i;
        i = text.size() - sizeof(V16);
        last = true;
      }
      V16 v;
      std::memcpy(&v, text.data() + i, sizeof(V16));
      const V16 d = DigitLanes(v);
      const V16 space = (V16)(v == ' ');
      const V16 minus = (V16)(v == '-');
      digit |= d;
      upper |= (V16)(static_cast<V16>(v - 'A') < 26);
      at |= (V16)(v == '@');
      dash |= minus;
      underscore |= (V16)(v == '_');
      dot |= (V16)(v == '.');
      blank |= (V16)(space | (V16)(v == '\t'));
      sep |= (V16)((v == ':') | (v == '='));
      capital_a |= (V16)(v == 'A');
      capital_j |= (V16)(v == 'J');
      const uint64_t card = LaneBits((V16)(d | space | minus)) >> (sizeof(V16) - fresh);
      window = (window >> fresh) | (card << (64 - fresh));
      runs |= RunsOf13(window);
    }
    auto any = AnyLane;
    seen = (any(digit) ? kDigit : 0) | (any(upper) ? kUpper : 0) | (any(at) ? kAt : 0) |
           (any(dash) ? kDash : 0) | (any(underscore) ? kUnderscore : 0) | (any(dot) ? kDot : 0) |
           (any(blank) ? kBlank : 0) | (any(sep) ? kSep : 0) | (any(capital_a) ? kCapitalA : 0) |
           (any(capital_j) ? kCapitalJ : 0) | (runs != 0 ? kCardRun : 0);
    return seen;
  }
  size_t run = 0;
  for (char c : text) {
    seen |= kClass[U(c)];
    run = IsCardRunByte(c) ? run + 1 : 0;
    if (run >= 13) {
      seen |= kCardRun;
    }
  }
  return seen;
}

}  // namespace

std::string_view DetectorKindName(DetectorKind kind) {
  switch (kind) {
    case DetectorKind::kEmail:
      return "email";
    case DetectorKind::kCardNumber:
      return "card_number";
    case DetectorKind::kUsSsn:
      return "us_ssn";
    case DetectorKind::kIban:
      return "iban";
    case DetectorKind::kCloudKey:
      return "cloud_key";
    case DetectorKind::kBearerToken:
      return "bearer_token";
    case DetectorKind::kPrivateKey:
      return "private_key";
    case DetectorKind::kCustom:
      return "custom";
  }
  return "custom";
}

std::string_view DefaultReplacement(DetectorKind kind) {
  switch (kind) {
    case DetectorKind::kEmail:
      return "[EMAIL_REDACTED]";
    case DetectorKind::kCardNumber:
      return "[CARD_REDACTED]";
    case DetectorKind::kUsSsn:
      return "[SSN_REDACTED]";
    case DetectorKind::kIban:
      return "[IBAN_REDACTED]";
    case DetectorKind::kCloudKey:
      return "[CLOUD_KEY_REDACTED]";
    case DetectorKind::kBearerToken:
      return "[TOKEN_REDACTED]";
    case DetectorKind::kPrivateKey:
      return "[PRIVATE_KEY_REDACTED]";
    case DetectorKind::kCustom:
      return "[REDACTED]";
  }
  return "[REDACTED]";
}

std::vector<DetectorSpec> BuiltinDetectors() {
  std::vector<DetectorSpec> specs;
  for (DetectorKind kind : {DetectorKind::kPrivateKey, DetectorKind::kBearerToken,
                            DetectorKind::kCloudKey, DetectorKind::kEmail, DetectorKind::kIban,
                            DetectorKind::kCardNumber, DetectorKind::kUsSsn}) {
    specs.push_back(
        {kind, std::string(DetectorKindName(kind)), "", std::string(DefaultReplacement(kind))});
  }
  return specs;
}

absl::StatusOr<DetectorSet> DetectorSet::Create(std::vector<DetectorSpec> specs) {
  DetectorSet set;
  set.detectors_.reserve(specs.size());
  for (DetectorSpec& spec : specs) {
    if (spec.id.empty()) {
      spec.id = std::string(DetectorKindName(spec.kind));
    }
    if (spec.replacement.empty()) {
      spec.replacement = std::string(DefaultReplacement(spec.kind));
    }
    for (const Compiled& earlier : set.detectors_) {
      if (earlier.spec.id == spec.id) {
        return absl::InvalidArgumentError(absl::StrCat("detector \"", spec.id, "\": duplicate id"));
      }
    }
    Compiled compiled;
    if (spec.kind == DetectorKind::kCustom) {
      if (spec.pattern.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("detector \"", spec.id, "\": custom detector without a pattern"));
      }
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_shared<const RE2>(spec.pattern, options);
      if (!re->ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("detector \"", spec.id, "\": invalid RE2 pattern: ", re->error()));
      }
      compiled.re = std::move(re);
    } else if (!spec.pattern.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "detector \"", spec.id, "\": a pattern is only allowed on custom detectors"));
    }
    compiled.spec = std::move(spec);
    set.detectors_.push_back(std::move(compiled));
  }
  set.min_text_ = SIZE_MAX;
  for (const Compiled& d : set.detectors_) {
    set.min_text_ =
        std::min(set.min_text_, d.re != nullptr ? size_t{1} : Fixed(d.spec.kind).min_length);
  }
  return set;
}

bool DetectorSet::has_custom() const {
  return std::any_of(detectors_.begin(), detectors_.end(),
                     [](const Compiled& d) { return d.re != nullptr; });
}

bool DetectorSet::FindsAny(std::string_view text) const {
  // Clean text (the common case for a caller asking) runs every detector either way; a text with
  // a match costs a sort of its few matches more than stopping early would.
  thread_local std::vector<Match> matches;
  matches.clear();
  Scan(text, &matches);
  return !matches.empty();
}

void DetectorSet::Scan(std::string_view text, std::vector<Match>* out) const {
  if (text.size() < min_text_ || text.empty() || detectors_.empty()) {
    return;
  }
  const size_t base = out->size();
  Classes classes = 0;
  bool classes_known = false;
  Sink sink;
  for (size_t d = 0; d < detectors_.size(); ++d) {
    const Compiled& det = detectors_[d];
    sink.clear();
    if (det.re != nullptr) {
      re2::StringPiece input(text.data(), text.size());
      re2::StringPiece m;
      size_t pos = 0;
      while (pos < text.size() && det.re->Match(input, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
        size_t b = m.data() - text.data();
        size_t e = b + m.size();
        if (e == b) {
          pos = b + 1;
          continue;
        }
        sink.push_back({b, e});
        pos = e;
      }
    } else {
      const FixedKind& fixed = Fixed(det.spec.kind);
      if (text.size() < fixed.min_length) {
        continue;
      }
      if (!classes_known) {
        classes = ClassesOf(text);
        classes_known = true;
      }
      if ((classes & fixed.all_of) != fixed.all_of ||
          (fixed.any_of != 0 && (classes & fixed.any_of) == 0)) {
        continue;
      }
      fixed.find(text, classes, &sink);
    }
    for (const Candidate& c : sink) {
      out->push_back({c.begin, c.end, d, det.spec.kind});
    }
  }
  // Leftmost, then longest, then the earlier detector; drop what overlaps a winner.
  auto first = out->begin() + static_cast<std::ptrdiff_t>(base);
  std::sort(first, out->end(), [](const Match& a, const Match& b) {
    if (a.begin != b.begin) {
      return a.begin < b.begin;
    }
    if (a.end != b.end) {
      return a.end > b.end;
    }
    return a.detector < b.detector;
  });
  size_t kept = base;
  for (size_t k = base; k < out->size(); ++k) {
    if (kept > base && (*out)[k].begin < (*out)[kept - 1].end) {
      continue;
    }
    (*out)[kept++] = (*out)[k];
  }
  out->resize(kept);
}

bool DetectorSet::Redact(std::string_view text, std::string* out,
                         std::vector<Match>* matches) const {
  std::vector<Match> local;
  std::vector<Match>* found = matches != nullptr ? matches : &local;
  const size_t base = found->size();
  Scan(text, found);
  if (found->size() == base) {
    return false;
  }
  std::string result;
  result.reserve(text.size());
  size_t pos = 0;
  for (size_t k = base; k < found->size(); ++k) {
    const Match& m = (*found)[k];
    result.append(text.substr(pos, m.begin - pos));
    result.append(detectors_[m.detector].spec.replacement);
    pos = m.end;
  }
  result.append(text.substr(pos));
  *out = std::move(result);
  return true;
}

}  // namespace mcpmw::redaction
