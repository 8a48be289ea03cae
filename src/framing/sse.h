// mcpmw framing: Server-Sent Events, the framing of Streamable HTTP's streamed answers.
//
// An event is `id:` (optional), `event:` (optional), one `data:` line per line of the payload,
// and a blank line. A comment (a line starting with ':') keeps an idle stream alive through
// proxies that cut quiet connections. JSON-RPC messages are one line, so a message is one data
// line; a payload with line breaks is split so no event can be cut short or forged by it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mcpmw::framing {

// Appends one event to `out`. `id` and `event` are left out when empty; `retry_ms` > 0 adds a
// `retry:` field.
void AppendSseEvent(std::string* out, std::string_view id, std::string_view data,
                    std::string_view event = {}, uint64_t retry_ms = 0);

// Appends a comment line (`: text` and a blank line), which clients ignore.
void AppendSseComment(std::string* out, std::string_view text);

}  // namespace mcpmw::framing
