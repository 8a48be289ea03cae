// mcpmw-echo-server: the cheapest MCP server a benchmark can talk to.
//
// Reads newline-delimited JSON-RPC on stdin with plain read(2) in big chunks and answers each
// request line; the replies to everything one read delivered leave in one write(2). Answers
// initialize, ping, tools/list (one tool, "echo") and tools/call, whose result echoes
// params.arguments.text:
//   {"jsonrpc":"2.0","id":<id>,"result":{"content":[{"type":"text","text":<text>}]}}
// The id and the text are copied as raw tokens, so they come back byte for byte as sent.
// Notifications get no reply; other methods get -32601. Exits 0 at end of input.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "bench/bench_json.h"
#include "simdjson.h"

namespace mcpmw::bench {
namespace {

namespace od = simdjson::ondemand;

constexpr size_t kInitialCapacity = 1 << 20;

// The members of a request this server looks at. Views into the line or the parser's buffers;
// valid until the next line is parsed.
struct Request {
  bool has_id = false;
  std::string_view id;                // raw token
  std::string_view method;            // unescaped
  std::string_view text;              // params.arguments.text, raw token
  std::string_view protocol_version;  // params.protocolVersion, raw token
};

bool ReadParams(od::value value, Request* req) {
  return ForEachMember(value, [req](std::string_view key, od::value v) {
    if (key == "protocolVersion") {
      req->protocol_version = TrimRight(v.raw_json_token());
    } else if (key == "arguments") {
      return ForEachMember(v, [req](std::string_view name, od::value arg) {
        if (name == "text") {
          req->text = TrimRight(arg.raw_json_token());
        }
        return true;
      });
    }
    return true;
  });
}

// `line` must be followed by SIMDJSON_PADDING readable bytes.
bool Parse(od::parser& parser, std::string_view line, Request* req) {
  return ForEachLineMember(parser, line, [req](std::string_view key, od::value v) {
    if (key == "id") {
      req->has_id = !v.is_null();
      req->id = TrimRight(v.raw_json_token());
    } else if (key == "method") {
      return v.get_string().get(req->method) == simdjson::SUCCESS;
    } else if (key == "params") {
      return ReadParams(v, req);
    }
    return true;
  });
}

void AppendReplyHead(std::string_view id, std::string* out) {
  out->append(R"({"jsonrpc":"2.0","id":)");
  out->append(id);
}

void HandleLine(od::parser& parser, std::string_view line, std::string* out) {
  Request req;
  if (!Parse(parser, line, &req)) {
    if (!req.has_id) {
      out->append(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})"
                  "\n");
      return;
    }
    AppendReplyHead(req.id, out);
    out->append(R"(,"error":{"code":-32600,"message":"Invalid Request"}})"
                "\n");
    return;
  }
  if (!req.has_id) {
    return;  // a notification
  }
  AppendReplyHead(req.id, out);
  if (req.method == "tools/call") {
    out->append(R"(,"result":{"content":[{"type":"text","text":)");
    out->append(req.text.empty() ? std::string_view(R"("")") : req.text);
    out->append("}]}}\n");
  } else if (req.method == "initialize") {
    out->append(R"(,"result":{"protocolVersion":)");
    out->append(req.protocol_version.empty() ? std::string_view(R"("2025-06-18")")
                                             : req.protocol_version);
    out->append(R"(,"capabilities":{"tools":{}},"serverInfo":{"name":"mcpmw-echo-server",)"
                R"("version":"0.1.0"}}})"
                "\n");
  } else if (req.method == "tools/list") {
    out->append(R"(,"result":{"tools":[{"name":"echo","description":"Returns its text.",)"
                R"("inputSchema":{"type":"object","properties":{"text":{"type":"string"}},)"
                R"("required":["text"]}}]}})"
                "\n");
  } else if (req.method == "ping") {
    out->append(R"(,"result":{}})"
                "\n");
  } else {
    out->append(R"(,"error":{"code":-32601,"message":"Method not found"}})"
                "\n");
  }
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

int Run() {
  // A reader that went away is the end of the conversation, not a crash.
  std::signal(SIGPIPE, SIG_IGN);
  od::parser parser;
  size_t capacity = kInitialCapacity;
  std::unique_ptr<char[]> buf(new char[capacity + simdjson::SIMDJSON_PADDING]());
  size_t begin = 0;
  size_t end = 0;
  std::string out;
  out.reserve(kInitialCapacity);
  while (true) {
    if (end == capacity) {
      if (begin > 0) {
        std::memmove(buf.get(), buf.get() + begin, end - begin);
        end -= begin;
        begin = 0;
      } else {  // one line longer than the buffer
        std::unique_ptr<char[]> bigger(new char[2 * capacity + simdjson::SIMDJSON_PADDING]());
        std::memcpy(bigger.get(), buf.get(), end);
        buf = std::move(bigger);
        capacity *= 2;
      }
    }
    ssize_t n = ::read(STDIN_FILENO, buf.get() + end, capacity - end);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::perror("mcpmw-echo-server: read");
      return 1;
    }
    if (n == 0) {
      return 0;
    }
    end += static_cast<size_t>(n);
    // Every complete line is followed in memory by at least the padding: the data ends at or
    // before `capacity` and the allocation extends SIMDJSON_PADDING beyond it.
    while (begin < end) {
      const void* lf = std::memchr(buf.get() + begin, '\n', end - begin);
      if (lf == nullptr) {
        break;
      }
      size_t line_end = static_cast<const char*>(lf) - buf.get();
      std::string_view line = TrimRight({buf.get() + begin, line_end - begin});
      if (!line.empty()) {
        HandleLine(parser, line, &out);
      }
      begin = line_end + 1;
    }
    if (begin == end) {
      begin = end = 0;
    }
    if (!out.empty()) {
      if (!WriteAll(STDOUT_FILENO, out)) {
        return errno == EPIPE ? 0 : 1;
      }
      out.clear();
    }
  }
}

}  // namespace
}  // namespace mcpmw::bench

int main() {
  try {
    return mcpmw::bench::Run();
  } catch (const std::exception& e) {  // std::bad_alloc for a line the machine cannot hold
    std::fprintf(stderr, "mcpmw-echo-server: %s\n", e.what());
    return 1;
  }
}
