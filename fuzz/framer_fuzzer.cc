// Fuzz target for framing::Framer: a differential test against a naive reference framer.
//
// The input is one byte stream. It is framed three times: whole, and as three reads appended to a
// buffer that is consumed as the Framer reports, split at two offsets derived from the input. The
// three event sequences (status, payload) and the bytes left pending at the end must equal what
// ReferenceFrames(), a byte-at-a-time restatement of the framing rules, computes for the whole
// stream. The first byte also picks the maximum message size (64..4096) so that the oversized
// paths are reached by small inputs. Any disagreement traps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "src/framing/framer.h"

namespace {

using mcpmw::framing::Framer;
using mcpmw::framing::FrameResult;
using mcpmw::framing::FrameStatus;

// framer.cc's limit: a Content-Length header block, blank line included, fits in this many bytes.
constexpr size_t kMaxHeaderBytes = size_t{8} * 1024;

struct Event {
  FrameStatus status;
  std::string payload;  // kFrame only
  bool operator==(const Event&) const = default;
};

struct Outcome {
  std::vector<Event> events;
  size_t pending = 0;  // PendingBytes() at the end of the stream
  bool operator==(const Outcome&) const = default;
};

const char* StatusName(FrameStatus s) {
  switch (s) {
    case FrameStatus::kFrame:
      return "frame";
    case FrameStatus::kNeedMore:
      return "need-more";
    case FrameStatus::kOversized:
      return "oversized";
    case FrameStatus::kMalformedHeader:
      return "malformed-header";
  }
  return "?";
}

void Print(const char* who, const Outcome& o) {
  std::fprintf(stderr, "%s: %zu events, pending %zu\n", who, o.events.size(), o.pending);
  for (const Event& e : o.events) {
    std::fprintf(stderr, "  %s %zu bytes [%.*s]\n", StatusName(e.status), e.payload.size(),
                 static_cast<int>(std::min<size_t>(e.payload.size(), 80)), e.payload.data());
  }
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "framer_fuzzer: %s\n", what);
  __builtin_trap();
}

// ---- The reference: the framing rules spelt out one byte at a time, with no state carried
// between reads because it sees the whole stream at once.

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// absl::StripAsciiWhitespace's set, which the header parser trims with.
bool IsAsciiSpace(char c) { return IsBlank(c) || c == '\v' || c == '\f'; }

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view TrimAsciiSpace(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && IsAsciiSpace(s[b])) {
    ++b;
  }
  while (e > b && IsAsciiSpace(s[e - 1])) {
    --e;
  }
  return s.substr(b, e - b);
}

bool IsContentLengthName(std::string_view name) {
  static constexpr std::string_view kName = "content-length";
  if (name.size() != kName.size()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (Lower(name[i]) != kName[i]) {
      return false;
    }
  }
  return true;
}

// The first header line named Content-Length (any case) decides; its value must be decimal
// digits that fit in 64 bits.
bool ReferenceContentLength(std::string_view block, uint64_t* length) {
  size_t line_start = 0;
  for (size_t i = 0; i <= block.size(); ++i) {
    if (i < block.size() && block[i] != '\n') {
      continue;
    }
    std::string_view line = block.substr(line_start, i - line_start);
    line_start = i + 1;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos ||
        !IsContentLengthName(TrimAsciiSpace(line.substr(0, colon)))) {
      continue;
    }
    std::string_view value = TrimAsciiSpace(line.substr(colon + 1));
    if (value.empty()) {
      return false;
    }
    uint64_t n = 0;
    for (char c : value) {
      if (c < '0' || c > '9') {
        return false;
      }
      auto digit = static_cast<uint64_t>(c - '0');
      if (n > (UINT64_MAX - digit) / 10) {
        return false;
      }
      n = n * 10 + digit;
    }
    *length = n;
    return true;
  }
  return false;
}

Outcome ReferenceFrames(std::string_view s, size_t max) {
  Outcome out;
  size_t i = 0;
  auto skip_blanks = [&s, &i] {
    while (i < s.size() && IsBlank(s[i])) {
      ++i;
    }
  };
  skip_blanks();
  if (i == s.size()) {
    return out;
  }
  // The first non-blank byte decides the framing for the whole stream.
  const bool content_length = s[i] == 'C' || s[i] == 'c';
  while (true) {
    skip_blanks();  // blank lines and padding between messages
    if (i == s.size()) {
      return out;
    }
    const size_t start = i;
    if (!content_length) {
      // A line runs from its first non-blank byte to the LF. Longer than max + 2 bytes (room for
      // a CR) it is oversized however it trims; otherwise its payload is the line right-trimmed.
      while (i < s.size() && s[i] != '\n') {
        ++i;
      }
      const size_t len = i - start;
      if (i == s.size()) {  // unterminated at end of stream
        if (len > max + 2) {
          out.events.push_back({FrameStatus::kOversized, {}});
        } else {
          out.pending = len;
        }
        return out;
      }
      ++i;  // the LF
      size_t payload_len = len;
      while (payload_len > 0 && IsBlank(s[start + payload_len - 1])) {
        --payload_len;
      }
      if (len > max + 2 || payload_len > max) {
        out.events.push_back({FrameStatus::kOversized, {}});
      } else {
        out.events.push_back({FrameStatus::kFrame, std::string(s.substr(start, payload_len))});
      }
      continue;
    }
    // Content-Length: a header block ends at the first LF followed by LF or CRLF.
    size_t header_end = std::string_view::npos;
    for (size_t j = start; j < s.size(); ++j) {
      if (s[j] != '\n') {
        continue;
      }
      if (j + 1 < s.size() && s[j + 1] == '\n') {
        header_end = j + 2;
        break;
      }
      if (j + 2 < s.size() && s[j + 1] == '\r' && s[j + 2] == '\n') {
        header_end = j + 3;
        break;
      }
    }
    if (header_end == std::string_view::npos || header_end - start > kMaxHeaderBytes) {
      if (s.size() - start < kMaxHeaderBytes) {
        out.pending = s.size() - start;
        return out;
      }
      out.events.push_back({FrameStatus::kMalformedHeader, {}});
      i = start + kMaxHeaderBytes;
      continue;
    }
    uint64_t length = 0;
    if (!ReferenceContentLength(s.substr(start, header_end - start), &length)) {
      out.events.push_back({FrameStatus::kMalformedHeader, {}});
      i = header_end;
      continue;
    }
    const size_t body_left = s.size() - header_end;
    if (length > max) {
      out.events.push_back({FrameStatus::kOversized, {}});
      i = header_end + static_cast<size_t>(std::min<uint64_t>(length, body_left));
      continue;
    }
    if (body_left < length) {
      out.pending = s.size() - start;
      return out;
    }
    out.events.push_back({FrameStatus::kFrame, std::string(s.substr(header_end, length))});
    i = header_end + length;
  }
}

// ---- The Framer, driven the way a reader drives it.

// Appends the stream to a buffer in reads ending at each of `cuts` (and at the end), calling
// Next() after each read until it asks for more without consuming anything. Consumed bytes are
// skipped by an offset, as ReadBuffer does, so the driver stays linear.
Outcome RunFramer(std::string_view s, size_t max, std::initializer_list<size_t> cuts) {
  Outcome out;
  Framer framer(max);
  std::string buffer;
  size_t begin = 0;  // consumed bytes at the front of `buffer`
  size_t fed = 0;
  std::vector<size_t> ends(cuts);
  ends.push_back(s.size());
  for (size_t end : ends) {
    buffer.append(s.substr(fed, end - fed));
    fed = end;
    // Every call consumes at least one byte or ends the loop, so this bounds it.
    for (size_t calls = 0;; ++calls) {
      if (calls > s.size() + 1) {
        Fail("Next() keeps returning without progress");
      }
      std::string_view data = std::string_view(buffer).substr(begin);
      FrameResult r = framer.Next(data);
      if (r.consumed > data.size()) {
        Fail("consumed more than the data");
      }
      switch (r.status) {
        case FrameStatus::kFrame:
          if (r.wire.data() != data.data() || r.wire.size() != r.consumed ||
              r.payload.data() < r.wire.data() ||
              r.payload.data() + r.payload.size() > r.wire.data() + r.wire.size() ||
              r.payload.size() > max) {
            Fail("a frame's views do not sit in its wire bytes");
          }
          out.events.push_back({r.status, std::string(r.payload)});
          break;
        case FrameStatus::kOversized:
        case FrameStatus::kMalformedHeader:
          out.events.push_back({r.status, {}});
          break;
        case FrameStatus::kNeedMore:
          if (r.consumed == 0 && framer.BytesWanted() != 0 && framer.BytesWanted() <= data.size()) {
            Fail("BytesWanted() asks for bytes already there");
          }
          break;
      }
      if (r.status != FrameStatus::kNeedMore && r.consumed == 0) {
        Fail("an event consumed nothing");
      }
      begin += r.consumed;
      if (r.status == FrameStatus::kNeedMore && r.consumed == 0) {
        break;
      }
    }
  }
  out.pending = framer.PendingBytes(std::string_view(buffer).substr(begin));
  return out;
}

uint64_t Fnv1a(const uint8_t* data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < size; ++i) {
    h = (h ^ data[i]) * 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  const size_t max = 64 + data[0] * (4096 - 64) / 255;
  const uint64_t h = Fnv1a(data, size);
  const auto cut1 = static_cast<size_t>(h % (size + 1));
  const size_t cut2 = cut1 + static_cast<size_t>((h >> 32) % (size - cut1 + 1));

  const Outcome expected = ReferenceFrames(stream, max);
  const Outcome whole = RunFramer(stream, max, {});
  const Outcome split = RunFramer(stream, max, {cut1, cut2});
  if (whole != expected || split != expected) {
    std::fprintf(stderr, "max %zu, cuts %zu %zu, %zu bytes\n", max, cut1, cut2, size);
    Print("reference", expected);
    Print("whole", whole);
    Print("split", split);
    Fail("the Framer disagrees with the reference");
  }
  return 0;
}
