// mcpmw framing: splits a byte stream into JSON-RPC messages, and frames messages for output.
//
// Sits first on the message path: bytes in ─► Framer ─► envelope. Two framings exist on stdio:
// newline-delimited JSON (the MCP standard: one message per line) and `Content-Length:` headers
// (LSP style, the earlier prototype's). A Framer detects which one a stream uses from its first
// non-blank byte and sticks to it. Frames are views into the caller's buffer: nothing is copied.
// A frame larger than the configured maximum is reported once and skipped without buffering it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mcpmw::framing {

enum class Framing : uint8_t {
  kUnknown,        // not detected yet
  kNdjson,         // one JSON text per line, LF (CRLF tolerated)
  kContentLength,  // "Content-Length: N\r\n\r\n" then N bytes
};

std::string_view FramingName(Framing f);

enum class FrameStatus : uint8_t {
  kFrame,            // `payload` holds one complete message
  kNeedMore,         // the data holds no complete frame yet; read more and call again
  kOversized,        // a frame over the maximum was found; it is being skipped
  kMalformedHeader,  // a Content-Length header block could not be read; it was skipped
};

struct FrameResult {
  FrameStatus status = FrameStatus::kNeedMore;
  // kFrame: the JSON text (no header, no line terminator). A view into the data passed to Next().
  std::string_view payload;
  // kFrame: the frame as it arrived (header + body, or line + LF); forwarded as-is when the
  // output framing is the input's.
  std::string_view wire;
  // Bytes the caller must drop from the front of its data after handling this result.
  size_t consumed = 0;
  // kOversized: the frame's size as far as it is known (declared length, or bytes seen so far).
  size_t frame_bytes = 0;
};

// One per input stream. Not thread-safe.
class Framer {
 public:
  // `max_message_bytes`: the largest payload accepted. `forced`: kUnknown to auto-detect.
  explicit Framer(size_t max_message_bytes, Framing forced = Framing::kUnknown)
      : max_(max_message_bytes), framing_(forced) {}

  // Examines `data` (the unconsumed bytes of the stream, whose prefix must be exactly what was
  // passed last time minus what was consumed) and returns the next event. After each result drop
  // `consumed` bytes; call again until a kNeedMore that consumed nothing (blank lines and skipped
  // bytes come back as kNeedMore with `consumed` > 0).
  FrameResult Next(std::string_view data);

  // At end of stream: bytes of an incomplete frame still held (they are dropped, and worth a
  // warning), 0 if the stream ended cleanly.
  size_t PendingBytes(std::string_view data) const;

  // How many bytes of buffer the incomplete frame at the front needs in total, when known (a
  // Content-Length frame whose header has arrived); 0 otherwise. Lets the caller size one read.
  size_t BytesWanted() const { return wanted_; }

  Framing framing() const { return framing_; }
  size_t max_message_bytes() const { return max_; }

 private:
  FrameResult NextLine(std::string_view data);
  FrameResult NextContentLength(std::string_view data);

  size_t max_;
  Framing framing_;
  size_t scanned_ = 0;          // ndjson: bytes at the front already known to hold no LF
  bool skipping_line_ = false;  // ndjson: dropping the rest of an oversized line
  size_t skip_left_ = 0;        // content-length: body bytes of an oversized frame still to drop
  size_t wanted_ = 0;
};

// Appends `payload` framed as `framing` to `out` (kUnknown frames as ndjson). For ndjson, raw CR
// and LF bytes in the payload are replaced by spaces: outside strings they are whitespace, and
// inside strings they are invalid JSON anyway, so the message means the same on one line.
void AppendFramed(Framing framing, std::string_view payload, std::string* out);

// The header that precedes `payload_size` bytes in Content-Length framing.
std::string ContentLengthHeader(size_t payload_size);

}  // namespace mcpmw::framing
