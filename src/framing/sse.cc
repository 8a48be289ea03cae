#include "src/framing/sse.h"

#include "absl/strings/str_cat.h"

namespace mcpmw::framing {

void AppendSseEvent(std::string* out, std::string_view id, std::string_view data,
                    std::string_view event, uint64_t retry_ms) {
  if (!event.empty()) {
    out->append("event: ").append(event).append("\n");
  }
  if (!id.empty()) {
    out->append("id: ").append(id).append("\n");
  }
  if (retry_ms > 0) {
    absl::StrAppend(out, "retry: ", retry_ms, "\n");
  }
  // Every CR, LF or CRLF in the payload starts a new data line.
  size_t start = 0;
  while (true) {
    size_t end = data.find_first_of("\r\n", start);
    out->append("data: ").append(data.substr(start, end - start)).append("\n");
    if (end == std::string_view::npos) {
      break;
    }
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') {
      ++start;
    }
  }
  out->append("\n");
}

void AppendSseComment(std::string* out, std::string_view text) {
  out->append(": ").append(text).append("\n\n");
}

}  // namespace mcpmw::framing
