#include "src/framing/framer.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "src/common/strings.h"

namespace mcpmw::framing {
namespace {

// A header block (blank line included) longer than this is not a Content-Length header.
constexpr size_t kMaxHeaderBytes = size_t{8} * 1024;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

size_t LeadingBlanks(std::string_view data) {
  size_t i = 0;
  while (i < data.size() && IsBlank(data[i])) {
    ++i;
  }
  return i;
}

std::string_view TrimLine(std::string_view line) {
  while (!line.empty() && IsBlank(line.back())) {
    line.remove_suffix(1);
  }
  while (!line.empty() && IsBlank(line.front())) {
    line.remove_prefix(1);
  }
  return line;
}

// Finds the end of a header block: returns the offset just past "\r\n\r\n" (or "\n\n"), or npos.
size_t HeaderEnd(std::string_view data) {
  const char* begin = data.data();
  const char* end = begin + data.size();
  for (const char* p = begin; p < end;) {
    const void* lf = std::memchr(p, '\n', end - p);
    if (lf == nullptr) {
      break;
    }
    const char* q = static_cast<const char*>(lf) + 1;
    if (q < end && *q == '\n') {
      return q + 1 - begin;
    }
    if (q + 1 < end && q[0] == '\r' && q[1] == '\n') {
      return q + 2 - begin;
    }
    p = q;
  }
  return std::string_view::npos;
}

// Trims what absl::ascii_isspace calls space (also \v and \f) from a header name or value.
std::string_view TrimHeaderSpace(std::string_view s) {
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  return s;
}

// Reads the Content-Length value from a header block; false when absent or not a number. Header
// names are case-insensitive; other headers (Content-Type) are ignored.
bool ParseContentLength(std::string_view headers, size_t* length) {
  while (!headers.empty()) {
    size_t eol = headers.find('\n');
    std::string_view line = headers.substr(0, eol);
    headers.remove_prefix(eol == std::string_view::npos ? headers.size() : eol + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    std::string_view name = TrimHeaderSpace(line.substr(0, colon));
    constexpr std::string_view kName = "content-length";
    if (name.size() != kName.size() ||
        !std::equal(name.begin(), name.end(), kName.begin(),
                    [](char a, char b) { return absl::ascii_tolower(a) == b; })) {
      continue;
    }
    std::string_view value = TrimHeaderSpace(line.substr(colon + 1));
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
        return false;  // more than 64 bits: no frame anyone could send
      }
      n = n * 10 + digit;
    }
    *length = n;
    return true;
  }
  return false;
}

}  // namespace

std::string_view FramingName(Framing f) {
  switch (f) {
    case Framing::kNdjson:
      return "ndjson";
    case Framing::kContentLength:
      return "content-length";
    case Framing::kUnknown:
      break;
  }
  return "auto";
}

FrameResult Framer::Next(std::string_view data) {
  wanted_ = 0;
  if (framing_ == Framing::kUnknown) {
    size_t blanks = LeadingBlanks(data);
    if (blanks == data.size()) {
      return {.status = FrameStatus::kNeedMore, .consumed = blanks};
    }
    char first = data[blanks];
    framing_ = (first == 'C' || first == 'c') ? Framing::kContentLength : Framing::kNdjson;
  }
  return framing_ == Framing::kContentLength ? NextContentLength(data) : NextLine(data);
}

FrameResult Framer::NextLine(std::string_view data) {
  if (skipping_line_) {
    const void* lf = std::memchr(data.data(), '\n', data.size());
    if (lf == nullptr) {
      return {.status = FrameStatus::kNeedMore, .consumed = data.size()};
    }
    skipping_line_ = false;
    size_t end = static_cast<const char*>(lf) - data.data() + 1;
    return {.status = FrameStatus::kNeedMore, .consumed = end};
  }
  // Blank lines and the blanks in front of a line are dropped first (the caller calls again), so
  // the size checks below see the line from its first byte: how much padding came in one read
  // must not decide whether the line fits.
  size_t blanks = LeadingBlanks(data);
  if (blanks > 0) {
    scanned_ = 0;
    return {.status = FrameStatus::kNeedMore, .consumed = blanks};
  }
  size_t from = std::min(scanned_, data.size());
  const void* lf = std::memchr(data.data() + from, '\n', data.size() - from);
  if (lf == nullptr) {
    if (data.size() > max_ + 2) {  // +2: a CRLF may still be on its way
      skipping_line_ = true;
      scanned_ = 0;
      return {
          .status = FrameStatus::kOversized, .consumed = data.size(), .frame_bytes = data.size()};
    }
    scanned_ = data.size();
    return {.status = FrameStatus::kNeedMore};
  }
  size_t end = static_cast<const char*>(lf) - data.data() + 1;
  scanned_ = 0;
  std::string_view line = data.substr(0, end);
  std::string_view payload = TrimLine(line);
  if (payload.size() > max_) {
    return {.status = FrameStatus::kOversized, .consumed = end, .frame_bytes = payload.size()};
  }
  if (end - 1 > max_ + 2) {
    // Trailing blanks took the line past the bound an unterminated line is held to; had the LF
    // come in a later read, the line would have been dropped as oversized, so it is here too.
    return {.status = FrameStatus::kOversized, .consumed = end, .frame_bytes = end - 1};
  }
  return {.status = FrameStatus::kFrame, .payload = payload, .wire = line, .consumed = end};
}

FrameResult Framer::NextContentLength(std::string_view data) {
  if (skip_left_ > 0) {
    size_t n = std::min(skip_left_, data.size());
    skip_left_ -= n;
    return {.status = FrameStatus::kNeedMore, .consumed = n};
  }
  size_t blanks = LeadingBlanks(data);
  if (blanks > 0) {
    return {.status = FrameStatus::kNeedMore, .consumed = blanks};
  }
  if (data.empty()) {
    return {.status = FrameStatus::kNeedMore};
  }
  // The header block, blank line included, must end within the first kMaxHeaderBytes. The verdict
  // and what it drops depend only on that window, never on how many bytes happen to have arrived,
  // so they do not change with how reads split the stream.
  size_t header_end = HeaderEnd(data.substr(0, std::min(data.size(), kMaxHeaderBytes)));
  if (header_end == std::string_view::npos) {
    if (data.size() >= kMaxHeaderBytes) {
      return {.status = FrameStatus::kMalformedHeader, .consumed = kMaxHeaderBytes};
    }
    return {.status = FrameStatus::kNeedMore};
  }
  size_t length = 0;
  if (!ParseContentLength(data.substr(0, header_end), &length)) {
    return {.status = FrameStatus::kMalformedHeader, .consumed = header_end};
  }
  if (length > max_) {
    skip_left_ = length;
    return {.status = FrameStatus::kOversized, .consumed = header_end, .frame_bytes = length};
  }
  if (data.size() - header_end < length) {
    wanted_ = header_end + length;
    return {.status = FrameStatus::kNeedMore};
  }
  return {.status = FrameStatus::kFrame,
          .payload = data.substr(header_end, length),
          .wire = data.substr(0, header_end + length),
          .consumed = header_end + length};
}

size_t Framer::PendingBytes(std::string_view data) const {
  if (skipping_line_ || skip_left_ > 0) {
    return 0;
  }
  return data.size() - LeadingBlanks(data);
}

std::string ContentLengthHeader(size_t payload_size) {
  return absl::StrCat("Content-Length: ", payload_size, "\r\n\r\n");
}

void AppendFramed(Framing framing, std::string_view payload, std::string* out) {
  if (framing == Framing::kContentLength) {
    absl::StrAppend(out, ContentLengthHeader(payload.size()), Sv(payload));
    return;
  }
  size_t start = out->size();
  out->append(payload);
  for (size_t i = start; i < out->size(); ++i) {
    char& c = (*out)[i];
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  out->push_back('\n');
}

}  // namespace mcpmw::framing
