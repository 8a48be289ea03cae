// mcpmw transport/http: the incremental HTTP/1.1 request parser behind HttpServer's connections.
//
//   socket bytes ─► RequestParser::Feed (http-parser, HTTP_REQUEST) ─► Request ─► Handler
//
// A thin layer over Debian's http-parser 2.9: it collects the method, target, headers and decoded
// body of one request at a time, and enforces mcpmw's limits as the bytes arrive, whatever the
// read sizes: request line + headers over Limits::max_header_bytes is 431, a body over
// Limits::max_body_bytes is 413 (at once from Content-Length, or as chunked data accumulates),
// anything http-parser refuses is 400 (among them: both Transfer-Encoding and Content-Length, a
// Transfer-Encoding whose last coding is not chunked, a bad chunk size).
//
// Not thread-safe; one parser per connection.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "src/transport/http/server.h"

namespace mcpmw::http {

class RequestParser {
 public:
  enum class State {
    kNeedMore,  // every byte given was consumed; the request is not complete yet
    kComplete,  // a request ended; TakeRequest() has it
    kError,     // the bytes are not an acceptable request; see error_status()
  };
  struct FeedResult {
    size_t consumed = 0;  // a prefix of the data given
    State state = State::kNeedMore;
  };

  // `limits` is copied; only max_header_bytes and max_body_bytes are used.
  explicit RequestParser(const Limits& limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses a prefix of `data`, which continues the bytes given before. kComplete stops right
  // after the request's last byte: the rest of `data` (a pipelined request) is left unconsumed
  // for the next Feed, which starts a new request. After kError every Feed returns
  // {0, kError}: the connection cannot be resynchronised and must close.
  FeedResult Feed(std::string_view data);

  // The request completed by the last Feed; the parser is then ready for the next one. Only
  // valid after kComplete (otherwise returns an empty Request). `peer` is left empty.
  Request TakeRequest();
  // Hands back a request taken earlier and no longer used: the next one is parsed into its
  // storage (no effect once the next request has begun).
  void Recycle(Request&& used);

  // True once a byte of the current request was consumed (idle keep-alive vs. a request under
  // way).
  bool started() const { return started_; }
  // True once the current request's headers have all arrived (only its body is outstanding).
  bool headers_complete() const { return headers_complete_; }
  // True when the current request's headers are complete, it is HTTP/1.1 and it sent
  // `Expect: 100-continue` (the client waits for "100 Continue" before sending its body).
  bool expects_continue() const { return expects_continue_; }

  // After kError: 400, 413 or 431, and a short reason for a person ("request headers exceed
  // 16384 bytes").
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  static int OnMessageBegin(http_parser* p);
  static int OnUrl(http_parser* p, const char* at, size_t length);
  static int OnHeaderField(http_parser* p, const char* at, size_t length);
  static int OnHeaderValue(http_parser* p, const char* at, size_t length);
  static int OnHeadersComplete(http_parser* p);
  static int OnBody(http_parser* p, const char* at, size_t length);
  static int OnChunkHeader(http_parser* p);
  static int OnMessageComplete(http_parser* p);

  void StartRequest();
  void Fail(int status, std::string message);
  void FailOverHeaderLimit(bool in_headers);

  Limits limits_;
  http_parser parser_{};
  http_parser_settings settings_{};
  Request request_;
  bool started_ = false;
  bool headers_complete_ = false;
  bool complete_ = false;
  bool expects_continue_ = false;
  bool last_was_value_ = false;  // the previous header callback was a value (a new field starts)
  size_t header_bytes_ = 0;      // request line and headers consumed so far
  bool last_chunk_ = false;      // the zero-size chunk was seen
  bool in_trailers_ = false;     // Feed has seen the pause after it: trailers are counted
  size_t trailer_bytes_ = 0;     // trailer section consumed so far
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace mcpmw::http
