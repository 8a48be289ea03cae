// Fuzz target for http::RequestParser: the same bytes must parse the same however they arrive.
//
// The input (after two bytes that pick the limits, so the 431 and 413 paths are reached by small
// inputs) is one connection's byte stream. It is parsed whole, in three reads split at two
// offsets derived from the input, and, when short, one byte at a time; the sequences of events
// (each request's method, target, path, query, headers, body, keep-alive and version, or the
// error status that ended the stream) must be equal. Every event must also keep the parser's
// promises: header names lower-case, values trimmed, body within max_body_bytes and padded for
// simdjson, path and query taken from the target, errors only 400, 413 or 431. Any breach traps.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "simdjson.h"
#include "src/transport/http/request_parser.h"

namespace {

using mcpmw::http::Limits;
using mcpmw::http::Request;
using mcpmw::http::RequestParser;

struct Event {
  int error = 0;
  std::string method, target, path, query, body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = false;
  int version_minor = 0;
  bool operator==(const Event&) const = default;
};

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "http_request_fuzzer: %s\n", what);
  __builtin_trap();
}

bool IsTrimmed(std::string_view v) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  return v.empty() || (!space(v.front()) && !space(v.back()));
}

void CheckRequest(const Request& r, const Limits& limits) {
  if (r.body.size() > limits.max_body_bytes) {
    Fail("a body passed max_body_bytes");
  }
  if (r.body.capacity() < r.body.size() + simdjson::SIMDJSON_PADDING) {
    Fail("a body lacks simdjson padding");
  }
  for (const auto& h : r.headers) {
    for (char c : h.name) {
      if (c >= 'A' && c <= 'Z') {
        Fail("a header name is not lower-case");
      }
    }
    if (!IsTrimmed(h.value)) {
      Fail("a header value is not trimmed");
    }
  }
  if (r.method.empty()) {
    Fail("a request without a method");
  }
  if (r.target.compare(0, r.path.size(), r.path) != 0) {
    Fail("the path is not the start of the target");
  }
  if (!r.query.empty() && r.target.find("?" + r.query) != r.path.size()) {
    Fail("the query does not follow the path's '?'");
  }
  if (r.version_minor < 0 || r.version_minor > 999) {
    Fail("an impossible HTTP version");
  }
}

// Feeds `stream` in reads ending at each of `ends`, keeping unconsumed bytes for the next Feed.
std::vector<Event> Parse(std::string_view stream, const std::vector<size_t>& ends,
                         const Limits& limits) {
  RequestParser parser(limits);
  std::vector<Event> events;
  std::string pending;
  size_t fed = 0;
  for (size_t end : ends) {
    pending.append(stream.substr(fed, end - fed));
    fed = end;
    // Each round consumes at least one byte or stops, so this bounds the loop.
    for (size_t rounds = 0; !pending.empty(); ++rounds) {
      if (rounds > stream.size() + 1) {
        Fail("Feed keeps returning without progress");
      }
      RequestParser::FeedResult r = parser.Feed(pending);
      if (r.consumed > pending.size()) {
        Fail("consumed more than was given");
      }
      pending.erase(0, r.consumed);
      if (r.state == RequestParser::State::kError) {
        int status = parser.error_status();
        if (status != 400 && status != 413 && status != 431) {
          Fail("an error status other than 400, 413 or 431");
        }
        if (parser.error_message().empty()) {
          Fail("an error without a message");
        }
        events.push_back(Event{.error = status});
        return events;
      }
      if (r.state == RequestParser::State::kNeedMore) {
        if (!pending.empty()) {
          Fail("kNeedMore left bytes unconsumed");
        }
        break;
      }
      if (r.consumed == 0) {
        Fail("a request completed without consuming a byte");
      }
      Request req = parser.TakeRequest();
      CheckRequest(req, limits);
      Event e{.method = req.method,
              .target = req.target,
              .path = req.path,
              .query = req.query,
              .body = req.body,
              .keep_alive = req.keep_alive,
              .version_minor = req.version_minor};
      for (auto& h : req.headers) {
        e.headers.emplace_back(std::move(h.name), std::move(h.value));
      }
      events.push_back(std::move(e));
    }
  }
  return events;
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
  if (size < 2) {
    return 0;
  }
  Limits limits;
  limits.max_header_bytes = 32 + size_t{data[0]} * 64;  // 32 .. 16352
  limits.max_body_bytes = size_t{data[1]} * 16;         // 0 .. 4080
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t n = stream.size();
  const uint64_t h = Fnv1a(data, size);
  const auto cut1 = static_cast<size_t>(h % (n + 1));
  const size_t cut2 = cut1 + static_cast<size_t>((h >> 32) % (n - cut1 + 1));

  const std::vector<Event> whole = Parse(stream, {n}, limits);
  if (Parse(stream, {cut1, cut2, n}, limits) != whole) {
    std::fprintf(stderr, "cuts %zu %zu of %zu\n", cut1, cut2, n);
    Fail("split reads parse differently from the whole stream");
  }
  if (n <= 2048) {
    std::vector<size_t> every;
    for (size_t i = 1; i <= n; ++i) {
      every.push_back(i);
    }
    if (Parse(stream, every, limits) != whole) {
      Fail("byte-by-byte reads parse differently from the whole stream");
    }
  }
  return 0;
}
