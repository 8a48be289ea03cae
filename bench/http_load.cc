// mcpmw-http-load: closed-loop HTTP/1.1 load generator for Streamable HTTP MCP gateways, and for a
// static responder that serves as the ceiling any HTTP server on this machine can reach.
//
//   mcpmw-http-load --port P [--host 127.0.0.1] [--path /mcp] [--mode static|mcp|mcp-stateless]
//                   [--connections C] [--duration S | --requests N] [--warmup S] [--text T]
//                   [--json]
//
// C keep-alive connections each keep exactly one request in flight. Modes:
//   static         GET PATH; any 200 counts as a call.
//   mcp            per connection, the 2025-06-18 session handshake: POST initialize (the
//                  Mcp-Session-Id of its answer, when there is one, goes on every later POST),
//                  POST notifications/initialized (must be answered 202), then POST tools/call
//                  {"name":"echo","arguments":{"text":T}} in a loop.
//   mcp-stateless  2026-07-28: no handshake; every POST is a tools/call carrying
//                  MCP-Protocol-Version, Mcp-Method and Mcp-Name, and the protocol version and
//                  (empty) client capabilities in params._meta.
// An MCP answer may be application/json or text/event-stream (the JSON-RPC response is the
// `data:` of the event whose id matches), with a Content-Length, chunked, or up to the close of the
// connection. A call succeeds when the answer is a 200 whose JSON-RPC response has the request's
// id (ids are unique across connections, so a gateway that crosses sessions is caught) and a
// result whose content[0].text is T. Anything else counts as an error, and the connection goes on
// (it is reopened when the framing broke); a connection that cannot be opened, a failed handshake,
// or no successful call for kStallSeconds ends the run with exit status 1.
//
// Timing: after every handshake is done, calls run for --warmup seconds unrecorded, then either
// for --duration seconds or until --requests calls have succeeded; round trips of the calls that
// succeed inside that window are recorded (from the request's write to the read that completed its
// answer, steady clock). Then no new call starts and the ones in flight are drained. The report
// gives successful calls/s over the window, p50/p99/p999 in µs and the error count; --json prints
// one JSON object on one line instead, for bench/run_bench.sh.
//
// One thread and one epoll set over all connections, so the generator costs little CPU beside the
// server it measures; every socket is non-blocking and a request goes out in one write.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_json.h"
#include "simdjson.h"

namespace mcpmw::bench {
namespace {

namespace od = simdjson::ondemand;

constexpr int kStallSeconds = 10;
constexpr int kDrainSeconds = 5;
constexpr size_t kMaxHeadBytes = size_t{64} * 1024;
constexpr size_t kReadChunk = size_t{64} * 1024;
constexpr uint64_t kMaxReconnects = 10000;
constexpr std::string_view kModernVersion = "2026-07-28";
constexpr std::string_view kSessionVersion = "2025-06-18";

enum class Mode { kStatic, kMcp, kMcpStateless };

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/mcp";
  Mode mode = Mode::kMcp;
  uint32_t connections = 16;
  double duration_s = 5;
  uint64_t requests = 0;  // 0: run for duration_s
  double warmup_s = 1;
  std::string text = "hello";
  bool json = false;
};

void Usage() {
  std::fprintf(stderr,
               "usage: mcpmw-http-load --port P [--host 127.0.0.1] [--path /mcp]\n"
               "                       [--mode static|mcp|mcp-stateless] [--connections C]\n"
               "                       [--duration S | --requests N] [--warmup S] [--text T] "
               "[--json]\n");
}

bool ParseUint(std::string_view s, uint64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

bool ParseSeconds(const char* s, double* out) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 86400) {
    return false;
  }
  *out = v;
  return true;
}

bool ParseOptions(int argc, char** argv, Options* opt) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--json") {
      opt->json = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      return false;
    }
    std::string_view name = arg;
    const char* value = nullptr;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = argv[i] + eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    if (value == nullptr) {
      std::fprintf(stderr, "mcpmw-http-load: %s needs a value\n", argv[i]);
      return false;
    }
    uint64_t v = 0;
    bool ok = true;
    if (name == "--host") {
      opt->host = value;
    } else if (name == "--port") {
      ok = ParseUint(value, &v) && v >= 1 && v <= 65535;
      opt->port = static_cast<uint16_t>(v);
    } else if (name == "--path") {
      opt->path = value;
      ok = !opt->path.empty() && opt->path[0] == '/';
    } else if (name == "--mode") {
      std::string_view m = value;
      if (m == "static") {
        opt->mode = Mode::kStatic;
      } else if (m == "mcp") {
        opt->mode = Mode::kMcp;
      } else if (m == "mcp-stateless") {
        opt->mode = Mode::kMcpStateless;
      } else {
        ok = false;
      }
    } else if (name == "--connections") {
      ok = ParseUint(value, &v) && v >= 1 && v <= 10000;
      opt->connections = static_cast<uint32_t>(v);
    } else if (name == "--duration") {
      ok = ParseSeconds(value, &opt->duration_s) && opt->duration_s > 0;
    } else if (name == "--requests") {
      ok = ParseUint(value, &opt->requests) && opt->requests >= 1 &&
           opt->requests <= (uint64_t{1} << 32);
    } else if (name == "--warmup") {
      ok = ParseSeconds(value, &opt->warmup_s);
    } else if (name == "--text") {
      opt->text = value;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "mcpmw-http-load: bad option %.*s %s\n", static_cast<int>(name.size()),
                   name.data(), value);
      return false;
    }
  }
  if (opt->port == 0) {
    std::fprintf(stderr, "mcpmw-http-load: --port is required\n");
    return false;
  }
  return true;
}

std::string ErrnoText(int err) {
  char buf[128];
  return ::strerror_r(err, buf, sizeof(buf));  // the GNU variant: returns the text
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return AsciiLower(x) == AsciiLower(y);
         });
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) {
      return true;
    }
  }
  return false;
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// `text` as a JSON string literal, quotes included.
std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", static_cast<unsigned>(c));
      out.append(esc);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

// One HTTP/1.1 response, read incrementally from a connection's input buffer: the head, then a
// body delimited by Content-Length, by chunked transfer coding, or by the close of the connection.
// The body is kept decoded in body().
class ResponseReader {
 public:
  enum class Result { kMore, kDone, kError };

  // Ready for the next response; the body keeps its allocation.
  void Reset() {
    std::string body = std::move(body_);
    body.clear();
    *this = ResponseReader();
    body_ = std::move(body);
  }

  // Consumes bytes of `in` from *pos on; kError leaves the reason in error().
  Result Feed(std::string_view in, size_t* pos);
  // The peer closed the connection: kDone when the body was delimited by the close.
  Result FeedEof();

  int status() const { return status_; }
  bool keep_alive() const { return keep_alive_; }
  bool event_stream() const { return event_stream_; }
  const std::string& session_id() const { return session_id_; }
  const std::string& body() const { return body_; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kHead, kLength, kChunkSize, kChunkData, kChunkEnd, kTrailer, kUntilClose };

  Result ParseHead(std::string_view head);
  Result Fail(std::string what) {
    error_ = std::move(what);
    return Result::kError;
  }

  State state_ = State::kHead;
  int status_ = 0;
  bool keep_alive_ = true;
  bool event_stream_ = false;
  bool chunked_ = false;
  bool has_length_ = false;
  uint64_t remaining_ = 0;
  std::string session_id_;
  std::string body_;
  std::string error_;
};

ResponseReader::Result ResponseReader::ParseHead(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  uint64_t code = 0;
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      !ParseUint(status_line.substr(9, 3), &code)) {
    return Fail("a status line that is not HTTP/1.x: " + std::string(status_line.substr(0, 80)));
  }
  status_ = static_cast<int>(code);
  keep_alive_ = status_line[7] != '0';
  std::string_view rest = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  while (!rest.empty()) {
    eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? "" : rest.substr(eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Fail("a header line without a colon: " + std::string(line.substr(0, 80)));
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = TrimBlanks(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      if (!ParseUint(value, &remaining_)) {
        return Fail("a Content-Length that is not a number: " + std::string(value));
      }
      has_length_ = true;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      chunked_ = ContainsIgnoreCase(value, "chunked");
    } else if (EqualsIgnoreCase(name, "content-type")) {
      event_stream_ = ContainsIgnoreCase(value, "text/event-stream");
    } else if (EqualsIgnoreCase(name, "connection")) {
      if (ContainsIgnoreCase(value, "close")) {
        keep_alive_ = false;
      } else if (ContainsIgnoreCase(value, "keep-alive")) {
        keep_alive_ = true;
      }
    } else if (EqualsIgnoreCase(name, "mcp-session-id")) {
      session_id_ = value;
    }
  }
  if (status_ == 204 || status_ == 304) {
    remaining_ = 0;
    state_ = State::kLength;
  } else if (chunked_) {  // chunked wins over a Content-Length (RFC 9112 §6.3)
    state_ = State::kChunkSize;
  } else if (has_length_) {
    state_ = State::kLength;
  } else {
    keep_alive_ = false;
    state_ = State::kUntilClose;
  }
  return Result::kMore;
}

ResponseReader::Result ResponseReader::Feed(std::string_view in, size_t* pos) {
  while (true) {
    std::string_view avail = in.substr(*pos);
    switch (state_) {
      case State::kHead: {
        size_t end = avail.find("\r\n\r\n");
        if (end == std::string_view::npos) {
          return avail.size() > kMaxHeadBytes ? Fail("a response head over 64 KiB") : Result::kMore;
        }
        *pos += end + 4;
        if (Result r = ParseHead(avail.substr(0, end)); r != Result::kMore) {
          return r;
        }
        if (status_ >= 100 && status_ < 200) {  // an interim answer: the real one follows
          Reset();
        }
        break;
      }
      case State::kLength: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, avail.size()));
        body_.append(avail.substr(0, take));
        *pos += take;
        remaining_ -= take;
        if (remaining_ > 0) {
          return Result::kMore;
        }
        return Result::kDone;
      }
      case State::kChunkSize: {
        size_t eol = avail.find("\r\n");
        if (eol == std::string_view::npos) {
          return avail.size() > 1024 ? Fail("a chunk-size line over 1 KiB") : Result::kMore;
        }
        std::string_view line = avail.substr(0, eol);
        line = TrimBlanks(line.substr(0, line.find(';')));
        auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), remaining_, 16);
        if (ec != std::errc() || end != line.data() + line.size() || line.empty()) {
          return Fail("a chunk size that is not hexadecimal: " + std::string(line.substr(0, 40)));
        }
        *pos += eol + 2;
        state_ = remaining_ == 0 ? State::kTrailer : State::kChunkData;
        break;
      }
      case State::kChunkData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, avail.size()));
        body_.append(avail.substr(0, take));
        *pos += take;
        remaining_ -= take;
        if (remaining_ > 0) {
          return Result::kMore;
        }
        state_ = State::kChunkEnd;
        break;
      }
      case State::kChunkEnd:
        if (avail.size() < 2) {
          return Result::kMore;
        }
        if (avail.substr(0, 2) != "\r\n") {
          return Fail("chunk data not followed by CRLF");
        }
        *pos += 2;
        state_ = State::kChunkSize;
        break;
      case State::kTrailer: {
        size_t eol = avail.find("\r\n");
        if (eol == std::string_view::npos) {
          return avail.size() > kMaxHeadBytes ? Fail("trailers over 64 KiB") : Result::kMore;
        }
        *pos += eol + 2;
        if (eol == 0) {
          return Result::kDone;
        }
        break;
      }
      case State::kUntilClose:
        body_.append(avail);
        *pos = in.size();
        return Result::kMore;
    }
  }
}

ResponseReader::Result ResponseReader::FeedEof() {
  if (state_ == State::kUntilClose) {
    return Result::kDone;
  }
  return Fail(state_ == State::kHead ? "the connection closed before a response"
                                     : "the connection closed in the middle of a response body");
}

// The members of a JSON-RPC response this generator looks at.
struct RpcResponse {
  bool has_id = false;
  uint64_t id = 0;
  bool has_result = false;
  bool has_error = false;
  bool text_matches = false;
};

// Parses JSON documents with the SIMDJSON_PADDING that On-Demand needs after them; one per
// generator, reused for every answer.
class JsonChecker {
 public:
  // What `json` says; false when it is not a JSON object.
  bool Parse(std::string_view json, std::string_view expected_text, RpcResponse* out) {
    if (json.size() + simdjson::SIMDJSON_PADDING > capacity_) {
      capacity_ = 2 * (json.size() + simdjson::SIMDJSON_PADDING);
      buf_ = std::make_unique<char[]>(capacity_);
    }
    std::memcpy(buf_.get(), json.data(), json.size());
    std::memset(buf_.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);
    return ForEachLineMember(
        parser_, {buf_.get(), json.size()},
        [out, expected_text](std::string_view key, od::value v) {
          if (key == "id") {
            out->has_id = v.get_uint64().get(out->id) == simdjson::SUCCESS;
          } else if (key == "error") {
            out->has_error = true;
          } else if (key == "result") {
            out->has_result = true;
            return ForEachMember(v, [out, expected_text](std::string_view name, od::value r) {
              if (name != "content") {
                return true;
              }
              od::array content;
              if (r.get_array().get(content) != simdjson::SUCCESS) {
                return false;
              }
              for (auto element : content) {
                od::object item;
                std::string_view text;
                if (element.get_object().get(item) == simdjson::SUCCESS &&
                    item.find_field_unordered("text").get_string().get(text) == simdjson::SUCCESS) {
                  out->text_matches = text == expected_text;
                }
                break;  // only the first item matters
              }
              return true;
            });
          }
          return true;
        });
  }

  // Finds the JSON-RPC response with id `id` in `body` (application/json, or an SSE stream whose
  // events carry one message each) and reads it into *out. False with a reason when there is none.
  bool Find(std::string_view body, bool event_stream, uint64_t id, std::string_view expected_text,
            RpcResponse* out, std::string* why) {
    if (!event_stream) {
      *out = RpcResponse();
      if (!Parse(body, expected_text, out)) {
        *why = "an application/json body that is not a JSON object";
        return false;
      }
      if (!out->has_id || out->id != id) {
        *why = "a JSON-RPC response whose id is not the request's";
        return false;
      }
      return true;
    }
    // SSE: events are separated by a blank line; the data lines of one event are joined with LF.
    std::string data;
    bool in_data = false;
    auto dispatch = [&]() {
      if (!in_data) {
        return false;
      }
      in_data = false;
      *out = RpcResponse();
      bool parsed = Parse(data, expected_text, out);
      data.clear();
      return parsed && out->has_id && out->id == id && (out->has_result || out->has_error);
    };
    while (!body.empty()) {
      size_t eol = body.find('\n');
      std::string_view line = body.substr(0, eol);
      body = eol == std::string_view::npos ? std::string_view() : body.substr(eol + 1);
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
      }
      if (line.empty()) {
        if (dispatch()) {
          return true;
        }
        continue;
      }
      if (line.substr(0, 5) == "data:") {
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') {
          line.remove_prefix(1);
        }
        if (in_data) {
          data.push_back('\n');
        }
        data.append(line);
        in_data = true;
      }
    }
    if (dispatch()) {
      return true;
    }
    *why = "an event stream without the JSON-RPC response to the request";
    return false;
  }

 private:
  od::parser parser_;
  std::unique_ptr<char[]> buf_;
  size_t capacity_ = 0;
};

enum class Phase { kInitialize, kInitialized, kCall, kDone };

struct Conn {
  int fd = -1;
  Phase phase = Phase::kCall;
  std::string out;
  size_t out_off = 0;
  std::string in;
  size_t in_pos = 0;
  ResponseReader reader;
  bool in_flight = false;
  bool want_write = false;
  uint64_t id = 0;
  int64_t sent_ns = 0;
  std::string session_id;  // from the answer to initialize; empty for a server without sessions
};

class HttpLoadRun {
 public:
  explicit HttpLoadRun(const Options& opt) : opt_(opt), conns_(opt.connections) {}
  int Run();

 private:
  [[noreturn]] void Fail(std::string_view what, std::string_view body = {});
  void Open(uint32_t index);
  void Close(Conn& c);
  void AppendPost(Conn& c, std::string_view body, std::string_view mcp_method);
  void Send(uint32_t index, int64_t now);
  void StartNext(uint32_t index, int64_t now);
  bool Flush(uint32_t index);
  void OnReadable(uint32_t index, int64_t now);
  void OnResponse(uint32_t index, int64_t now);
  void OnCallResult(uint32_t index, bool ok, int64_t now);
  void Report();

  const Options& opt_;
  std::vector<Conn> conns_;
  int epoll_ = -1;
  sockaddr_in addr_{};
  std::string host_header_;
  std::string expected_json_text_;
  JsonChecker checker_;
  std::string why_;
  std::unique_ptr<char[]> read_scratch_ = std::make_unique<char[]>(kReadChunk);

  uint64_t next_id_ = 1;
  uint32_t handshaking_ = 0;
  uint32_t in_flight_ = 0;
  bool issuing_ = true;
  bool recording_ = false;
  int64_t warmup_end_ns_ = 0;
  int64_t measure_start_ns_ = 0;
  int64_t measure_end_ns_ = 0;
  int64_t last_progress_ns_ = 0;
  uint64_t errors_ = 0;
  uint64_t reconnects_ = 0;
  uint64_t warmup_calls_ = 0;
  std::string first_error_;
  std::vector<int64_t> rtt_ns_;
};

void HttpLoadRun::Fail(std::string_view what, std::string_view body) {
  std::fprintf(stderr, "mcpmw-http-load: FAIL: %.*s\n", static_cast<int>(what.size()), what.data());
  if (!body.empty()) {
    constexpr size_t kShown = 400;
    std::fprintf(stderr, "mcpmw-http-load: the body was: %.*s%s\n",
                 static_cast<int>(std::min(body.size(), kShown)), body.data(),
                 body.size() > kShown ? "..." : "");
  }
  std::fflush(stdout);
  _exit(1);
}

void HttpLoadRun::Open(uint32_t index) {
  Conn& c = conns_[index];
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    Fail("socket: " + ErrnoText(errno));
  }
  // Loopback connects complete at once, so the blocking connect costs nothing and keeps the state
  // machine free of a connecting state.
  int r;
  do {
    r = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof(addr_));
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    Fail("connect to " + host_header_ + ": " + ErrnoText(errno));
  }
  int one = 1;
  ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = index;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
    Fail("epoll_ctl: " + ErrnoText(errno));
  }
  c.want_write = false;
}

void HttpLoadRun::Close(Conn& c) {
  if (c.fd >= 0) {
    ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
  }
  c.in.clear();
  c.in_pos = 0;
  c.out.clear();
  c.out_off = 0;
  c.reader.Reset();
}

void HttpLoadRun::AppendPost(Conn& c, std::string_view body, std::string_view mcp_method) {
  c.out.append("POST ").append(opt_.path).append(" HTTP/1.1\r\nHost: ").append(host_header_);
  c.out.append(
      "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n");
  if (opt_.mode == Mode::kMcpStateless) {
    c.out.append("MCP-Protocol-Version: ").append(kModernVersion).append("\r\nMcp-Method: ");
    c.out.append(mcp_method).append("\r\nMcp-Name: echo\r\n");
  } else if (c.phase != Phase::kInitialize) {
    c.out.append("MCP-Protocol-Version: ").append(kSessionVersion).append("\r\n");
    if (!c.session_id.empty()) {
      c.out.append("Mcp-Session-Id: ").append(c.session_id).append("\r\n");
    }
  }
  char length[48];
  int n = std::snprintf(length, sizeof(length), "Content-Length: %zu\r\n\r\n", body.size());
  c.out.append(length, n);
  c.out.append(body);
}

void HttpLoadRun::Send(uint32_t index, int64_t now) {
  Conn& c = conns_[index];
  if (c.fd < 0) {  // closed after the previous answer
    if (++reconnects_ > kMaxReconnects) {
      Fail("the target keeps closing connections (over 10000 reconnects)");
    }
    Open(index);
  }
  c.out.clear();
  c.out_off = 0;
  c.reader.Reset();
  c.id = next_id_++;
  char head[160];
  switch (c.phase) {
    case Phase::kInitialize: {
      int n = std::snprintf(head, sizeof(head), R"({"jsonrpc":"2.0","id":%llu,)",
                            static_cast<unsigned long long>(c.id));
      std::string body(head, n);
      body.append(R"("method":"initialize","params":{"protocolVersion":")");
      body.append(kSessionVersion);
      body.append(R"(","capabilities":{},"clientInfo":{"name":"mcpmw-http-load",)"
                  R"("version":"0.1.0"}}})");
      AppendPost(c, body, "initialize");
      break;
    }
    case Phase::kInitialized:
      AppendPost(c, R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                 "notifications/initialized");
      break;
    case Phase::kCall:
      if (opt_.mode == Mode::kStatic) {
        c.out.append("GET ").append(opt_.path).append(" HTTP/1.1\r\nHost: ");
        c.out.append(host_header_).append("\r\n\r\n");
      } else {
        int n = std::snprintf(head, sizeof(head),
                              R"({"jsonrpc":"2.0","id":%llu,"method":"tools/call","params":{)",
                              static_cast<unsigned long long>(c.id));
        std::string body(head, n);
        if (opt_.mode == Mode::kMcpStateless) {
          body.append(R"("_meta":{"io.modelcontextprotocol/protocolVersion":")");
          body.append(kModernVersion);
          body.append(R"(","io.modelcontextprotocol/clientCapabilities":{}},)");
        }
        body.append(R"("name":"echo","arguments":{"text":)");
        body.append(expected_json_text_).append("}}}");
        AppendPost(c, body, "tools/call");
      }
      break;
    case Phase::kDone:
      return;
  }
  c.sent_ns = now;
  c.in_flight = true;
  ++in_flight_;
  Flush(index);
}

bool HttpLoadRun::Flush(uint32_t index) {
  Conn& c = conns_[index];
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        if (!c.want_write) {
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLOUT;
          ev.data.u32 = index;
          ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
          c.want_write = true;
        }
        return false;
      }
      return false;  // the read side sees the reset and handles it
    }
    c.out_off += static_cast<size_t>(n);
  }
  if (c.want_write) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = index;
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_write = false;
  }
  return true;
}

void HttpLoadRun::StartNext(uint32_t index, int64_t now) {
  Conn& c = conns_[index];
  if (c.phase == Phase::kCall && !issuing_) {
    c.phase = Phase::kDone;
    return;
  }
  Send(index, now);
}

void HttpLoadRun::OnReadable(uint32_t index, int64_t now) {
  Conn& c = conns_[index];
  bool eof = false;
  bool broken = false;
  // Drain what the socket holds (level-triggered epoll would call again anyway, but one answer
  // usually arrives whole and this saves a wake-up when it does not). Reads land in one scratch
  // buffer and only what arrived is appended: growing c.in by a whole chunk would zero-fill it.
  while (true) {
    ssize_t n = ::recv(c.fd, read_scratch_.get(), kReadChunk, 0);
    if (n > 0) {
      c.in.append(read_scratch_.get(), static_cast<size_t>(n));
      if (static_cast<size_t>(n) < kReadChunk) {
        break;
      }
      continue;
    }
    if (n == 0) {
      eof = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN) {
      broken = true;
      eof = true;
    }
    break;
  }
  if (!c.in_flight) {
    // Only after the run (every connection with an answer in hand sends again at once): a server
    // that closes an idle keep-alive connection, or speaks out of turn.
    if (eof || c.in.size() > c.in_pos) {
      Close(c);
    }
    return;
  }
  ResponseReader::Result r = c.reader.Feed(c.in, &c.in_pos);
  if (r == ResponseReader::Result::kMore && eof) {
    r = c.reader.FeedEof();
  }
  if (r == ResponseReader::Result::kMore) {
    return;
  }
  c.in_flight = false;
  --in_flight_;
  if (c.phase != Phase::kCall) {
    last_progress_ns_ = now;  // a handshake step; calls count only when they succeed
  }
  bool reuse = r == ResponseReader::Result::kDone && !eof && !broken && c.reader.keep_alive() &&
               c.out_off == c.out.size() && c.in_pos == c.in.size();
  if (r == ResponseReader::Result::kError) {
    if (c.phase != Phase::kCall) {
      Fail("the handshake's answer could not be read: " + c.reader.error());
    }
    if (first_error_.empty()) {
      first_error_ = c.reader.error();
    }
    ++errors_;
  } else {
    OnResponse(index, now);
  }
  if (!reuse) {
    Close(c);  // the next request, if any, opens a new connection
  } else {
    c.in.clear();
    c.in_pos = 0;
  }
  StartNext(index, now);
}

void HttpLoadRun::OnResponse(uint32_t index, int64_t now) {
  Conn& c = conns_[index];
  const ResponseReader& resp = c.reader;
  RpcResponse rpc;
  switch (c.phase) {
    case Phase::kInitialize:
      why_.clear();
      if (resp.status() != 200) {
        Fail("initialize was answered with HTTP " + std::to_string(resp.status()), resp.body());
      }
      if (!checker_.Find(resp.body(), resp.event_stream(), c.id, "", &rpc, &why_) ||
          !rpc.has_result) {
        Fail("initialize: " + (why_.empty() ? std::string("an error, not a result") : why_),
             resp.body());
      }
      // Each connection runs its own session, kept across reconnects.
      c.session_id = resp.session_id();
      c.phase = Phase::kInitialized;
      return;
    case Phase::kInitialized:
      if (resp.status() != 202) {
        Fail("notifications/initialized was answered with HTTP " + std::to_string(resp.status()) +
                 ", not 202",
             resp.body());
      }
      c.phase = Phase::kCall;
      if (--handshaking_ == 0) {
        warmup_end_ns_ = now + static_cast<int64_t>(opt_.warmup_s * 1e9);
      }
      return;
    case Phase::kCall:
      break;
    case Phase::kDone:
      return;
  }
  bool ok = false;
  why_.clear();
  if (opt_.mode == Mode::kStatic) {
    ok = resp.status() == 200;
    if (!ok) {
      why_ = "HTTP " + std::to_string(resp.status());
    }
  } else if (resp.status() != 200) {
    why_ = "HTTP " + std::to_string(resp.status()) + ": " + resp.body().substr(0, 200);
  } else if (checker_.Find(resp.body(), resp.event_stream(), c.id, opt_.text, &rpc, &why_)) {
    if (rpc.has_error || !rpc.has_result) {
      why_ = "a JSON-RPC error: " + resp.body().substr(0, 200);
    } else if (!rpc.text_matches) {
      why_ = "a result whose content[0].text is not the text sent: " + resp.body().substr(0, 200);
    } else {
      ok = true;
    }
  } else {
    why_ += ": " + resp.body().substr(0, 200);
  }
  OnCallResult(index, ok, now);
}

void HttpLoadRun::OnCallResult(uint32_t index, bool ok, int64_t now) {
  if (!ok) {
    ++errors_;
    if (first_error_.empty()) {
      first_error_ = why_;
    }
    return;
  }
  last_progress_ns_ = now;
  if (!recording_) {
    if (issuing_) {  // not yet measuring, rather than measured and draining
      ++warmup_calls_;
    }
    return;
  }
  rtt_ns_.push_back(now - conns_[index].sent_ns);
  if (opt_.requests > 0 && rtt_ns_.size() == opt_.requests) {
    measure_end_ns_ = now;
    recording_ = false;
    issuing_ = false;
  }
}

double Percentile(const std::vector<int64_t>& sorted, double q) {
  size_t i =
      std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[i]) / 1000.0;
}

void HttpLoadRun::Report() {
  if (errors_ > 0) {
    std::fprintf(stderr, "mcpmw-http-load: %llu errors; the first: %s\n",
                 static_cast<unsigned long long>(errors_), first_error_.c_str());
  }
  if (rtt_ns_.empty()) {
    Fail("no call succeeded in the measured window");
  }
  std::sort(rtt_ns_.begin(), rtt_ns_.end());
  double measured_s = static_cast<double>(measure_end_ns_ - measure_start_ns_) / 1e9;
  double rate = measured_s > 0 ? static_cast<double>(rtt_ns_.size()) / measured_s : 0;
  double sum = 0;
  for (int64_t v : rtt_ns_) {
    sum += static_cast<double>(v);
  }
  double mean_us = sum / static_cast<double>(rtt_ns_.size()) / 1000.0;
  double p50 = Percentile(rtt_ns_, 0.50);
  double p99 = Percentile(rtt_ns_, 0.99);
  double p999 = Percentile(rtt_ns_, 0.999);
  double max = static_cast<double>(rtt_ns_.back()) / 1000.0;
  static constexpr const char* kModeNames[] = {"static", "mcp", "mcp-stateless"};
  const char* mode = kModeNames[static_cast<int>(opt_.mode)];
  auto calls = static_cast<unsigned long long>(rtt_ns_.size());
  auto errors = static_cast<unsigned long long>(errors_);
  if (opt_.json) {
    std::printf(R"({"mode":"%s","connections":%u,"calls":%llu,"errors":%llu,"calls_per_s":%.0f,)"
                R"("p50_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,"max_us":%.1f,"mean_us":%.1f,)"
                R"("measured_s":%.3f,"warmup_calls":%llu,"reconnects":%llu})"
                "\n",
                mode, opt_.connections, calls, errors, rate, p50, p99, p999, max, mean_us,
                measured_s, static_cast<unsigned long long>(warmup_calls_),
                static_cast<unsigned long long>(reconnects_));
  } else {
    std::printf("mode %s, %u connections, %llu calls measured in %.3f s after %.1f s warmup\n",
                mode, opt_.connections, calls, measured_s, opt_.warmup_s);
    std::printf("throughput  %.0f calls/s (%llu errors, %llu reconnects)\n", rate, errors,
                static_cast<unsigned long long>(reconnects_));
    std::printf("latency µs  p50 %.1f  p99 %.1f  p999 %.1f  max %.1f  mean %.1f\n", p50, p99, p999,
                max, mean_us);
  }
  std::fflush(stdout);
}

int HttpLoadRun::Run() {
  std::signal(SIGPIPE, SIG_IGN);
  addr_.sin_family = AF_INET;
  addr_.sin_port = htons(opt_.port);
  if (::inet_pton(AF_INET, opt_.host.c_str(), &addr_.sin_addr) != 1) {
    Fail("--host must be an IPv4 address, not " + opt_.host);
  }
  host_header_ = opt_.host + ":" + std::to_string(opt_.port);
  expected_json_text_ = JsonString(opt_.text);
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) {
    Fail("epoll_create1: " + ErrnoText(errno));
  }
  const auto warmup_ns = static_cast<int64_t>(opt_.warmup_s * 1e9);
  const auto duration_ns = static_cast<int64_t>(opt_.duration_s * 1e9);
  int64_t now = NowNs();
  last_progress_ns_ = now;
  bool handshake = opt_.mode == Mode::kMcp;
  handshaking_ = handshake ? opt_.connections : 0;
  if (!handshake) {
    warmup_end_ns_ = now + warmup_ns;
  }
  for (uint32_t i = 0; i < opt_.connections; ++i) {
    conns_[i].phase = handshake ? Phase::kInitialize : Phase::kCall;
    Open(i);
  }
  for (uint32_t i = 0; i < opt_.connections; ++i) {
    Send(i, now);
  }

  enum class Stage { kHandshake, kWarmup, kMeasure, kDrain };
  Stage stage = handshake ? Stage::kHandshake : Stage::kWarmup;
  int64_t measure_deadline_ns = 0;
  int64_t drain_deadline_ns = 0;
  std::vector<epoll_event> events(conns_.size());
  while (in_flight_ > 0) {
    now = NowNs();
    if (stage == Stage::kHandshake && handshaking_ == 0) {
      stage = Stage::kWarmup;
    }
    if (stage == Stage::kWarmup && now >= warmup_end_ns_) {
      stage = Stage::kMeasure;
      recording_ = true;
      measure_start_ns_ = now;
      measure_deadline_ns = now + duration_ns;
    }
    if (stage == Stage::kMeasure && opt_.requests == 0 && now >= measure_deadline_ns) {
      measure_end_ns_ = now;
      recording_ = false;
      issuing_ = false;
    }
    if (stage == Stage::kMeasure && !issuing_) {  // by the deadline or the request count
      stage = Stage::kDrain;
      drain_deadline_ns = now + int64_t{kDrainSeconds} * 1'000'000'000;
    }
    if (stage == Stage::kDrain && now >= drain_deadline_ns) {
      std::fprintf(stderr, "mcpmw-http-load: %u calls still unanswered %d s after the end\n",
                   in_flight_, kDrainSeconds);
      break;
    }
    if (now - last_progress_ns_ > int64_t{kStallSeconds} * 1'000'000'000) {
      Fail("no call succeeded for " + std::to_string(kStallSeconds) + " s (" +
           std::to_string(in_flight_) + " requests in flight, " + std::to_string(errors_) +
           " errors" + (first_error_.empty() ? "" : "; the first: " + first_error_) + ")");
    }
    int64_t next_ns = now + 1'000'000'000;  // the stall check's granularity
    if (stage == Stage::kWarmup) {
      next_ns = std::min(next_ns, warmup_end_ns_);
    } else if (stage == Stage::kMeasure && opt_.requests == 0) {
      next_ns = std::min(next_ns, measure_deadline_ns);
    }
    int timeout_ms = static_cast<int>(std::max<int64_t>(0, (next_ns - now + 999'999) / 1'000'000));
    int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      Fail("epoll_wait: " + ErrnoText(errno));
    }
    now = NowNs();
    for (int i = 0; i < n; ++i) {
      uint32_t index = events[i].data.u32;
      if (conns_[index].fd < 0) {
        continue;
      }
      if ((events[i].events & EPOLLOUT) != 0 && conns_[index].out_off < conns_[index].out.size()) {
        Flush(index);
      }
      if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        OnReadable(index, now);
      }
    }
  }
  for (Conn& c : conns_) {
    Close(c);
  }
  ::close(epoll_);
  Report();
  return 0;
}

}  // namespace
}  // namespace mcpmw::bench

int main(int argc, char** argv) {
  mcpmw::bench::Options opt;
  if (!mcpmw::bench::ParseOptions(argc, argv, &opt)) {
    mcpmw::bench::Usage();
    return 2;
  }
  try {
    mcpmw::bench::HttpLoadRun run(opt);
    return run.Run();
  } catch (const std::exception& e) {  // std::bad_alloc
    std::fprintf(stderr, "mcpmw-http-load: FAIL: %s\n", e.what());
    return 1;
  }
}
