// mcpmw transport/http: an HTTP/1.1 server on one io_uring Ring (ARCHITECTURE.md §7).
//
//   accept ─► Connection ─► read ─► RequestParser (http-parser) ─► Handler::OnRequest(req, resp)
//                 ▲                                                         │
//                 └──── next request after resp.End() (keep-alive) ◄───────┘
//
// One Connection per accepted socket, a coroutine on the server's Ring. Requests on one connection
// are served one at a time: after a complete request the connection stops parsing (pipelined
// bytes stay buffered, which is the backpressure) until the handler ends the response, then it
// parses the next one or closes (Connection: close, HTTP/1.0 without keep-alive, an error).
//
// The handler answers through a ResponseStream, now or later, from any code on the same thread:
// a whole response (Respond), or a streamed one (Begin, then Write… then End) sent with chunked
// transfer encoding — what SSE answers use. Writes are queued and flushed by the connection in
// order; a stream whose unflushed bytes pass Limits::max_queued_bytes is closed (a client that
// does not read cannot make mcpmw buffer without bound).
//
// The server answers by itself: 400 for a request http-parser refuses, 413 when the body (with
// Content-Length, or chunked as it arrives) passes max_body_bytes, 431 when the request line and
// headers pass max_header_bytes, 408 when the headers do not arrive within header_timeout; an
// idle keep-alive connection is closed after idle_timeout. Those responses carry
// `Connection: close`.
//
// Threading: everything runs on the Ring's thread; ResponseStream methods must be called there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "src/common/clock.h"
#include "src/io/ring.h"
#include "src/io/task.h"

namespace mcpmw::http {

struct Limits {
  size_t max_header_bytes = 16 * 1024;        // request line + headers
  size_t max_body_bytes = 4 * 1024 * 1024;    // decoded body
  size_t max_queued_bytes = 8 * 1024 * 1024;  // unflushed response bytes per connection
  Duration header_timeout = std::chrono::seconds(10);
  Duration idle_timeout = std::chrono::seconds(60);  // keep-alive with no request
  size_t max_connections = 10'000;                   // beyond: accepted and closed at once
};

struct Header {
  std::string name;   // lower-cased
  std::string value;  // surrounding whitespace trimmed
};

// One complete request. `body` holds the decoded body (chunked bodies joined) and has at least
// simdjson::SIMDJSON_PADDING bytes of capacity past its size, so it can be parsed in place.
struct Request {
  std::string method;  // "GET", "POST", …
  std::string target;  // as sent: path and query
  std::string path;    // target up to '?'
  std::string query;   // after '?', without it; empty when none
  std::vector<Header> headers;
  std::string body;
  bool keep_alive = true;  // what the request asked for (HTTP/1.1 default, Connection header)
  int version_minor = 1;   // 1 for HTTP/1.1, 0 for HTTP/1.0 (answered without chunked encoding)
  std::string peer;        // "127.0.0.1:53422"

  // The first header named `lower_name` (already lower-case), or nullptr.
  const std::string* Find(std::string_view lower_name) const;
  // Back to a default Request, keeping the strings' and the header list's capacity (the parser
  // reuses an answered request for the next one instead of allocating all of it again).
  void Clear();
};

// One response. Handlers build these; the server adds Content-Length (or Transfer-Encoding:
// chunked for streams), Date is not sent, and `Connection: close` when the connection will close.
struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given
  std::string body;
};

// The reason phrase for a status code ("Not Found"); "Unknown" for codes it does not know.
std::string_view ReasonPhrase(int status);

// The answer channel of one request. Owned jointly (shared_ptr) by the connection and whoever
// answers later; every method is a no-op once the stream is finished or the client has gone.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // The whole response at once. Finishes the stream. Not subject to max_queued_bytes (the
  // handler chose the size). Ignored after Begin().
  virtual void Respond(Response response) = 0;
  // Sends the status line and headers of a streamed (chunked) response; `response.body`, when
  // not empty, goes out as the first chunk. An HTTP/1.0 client gets the body unframed and the
  // connection closes at End(). Ignored when already begun.
  virtual void Begin(Response response) = 0;
  // One chunk of a begun stream (empty data is ignored; ignored before Begin()).
  virtual void Write(std::string_view data) = 0;
  // The terminating chunk. Finishes the stream. Before Begin() it begins a default (200, no
  // headers) stream first.
  virtual void End() = 0;
  // True once Respond/End ran or the client went away (or the stream was closed for backpressure).
  virtual bool finished() const = 0;
  // True when the client closed its side (or the connection failed) before the stream finished.
  virtual bool client_gone() const = 0;
  // Called once, on the Ring's thread, when the client goes away before the stream finished
  // (a dropped SSE connection, a stream closed for backpressure, CloseAll). Not called after a
  // normal finish. Replaces an earlier callback. Never runs inside another ResponseStream method;
  // registered after the client has already gone, it runs at once.
  virtual void OnClientGone(std::function<void()> callback) = 0;
  // Bytes queued and not yet written to the socket.
  virtual size_t queued_bytes() const = 0;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // A complete request. Answer through `stream`, now or later; the connection reads no further
  // request until the stream finishes. `request` lives only for this call: move out what a later
  // answer needs (its body keeps its simdjson padding when moved).
  virtual void OnRequest(Request& request, std::shared_ptr<ResponseStream> stream) = 0;
};

struct ListenOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal; "0.0.0.0" / "::" for all
  uint16_t port = 0;                  // 0: an ephemeral port (see HttpServer::port())
  int backlog = 1024;
  Limits limits;
};

class HttpServer {
 public:
  // Binds and listens (SO_REUSEADDR); errors name the address and the errno text
  // ("cannot listen on 127.0.0.1:80: Permission denied"). Nothing runs until Serve().
  static absl::StatusOr<std::unique_ptr<HttpServer>> Listen(io::Ring& ring, Handler& handler,
                                                            ListenOptions options);
  // Only once Serve() has completed, or was never started.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the real one when options.port was 0).
  uint16_t port() const;
  // Accepts and serves connections until StopAccepting(); completes when accepting has stopped
  // and every connection has closed.
  io::Task<void> Serve();
  // Drain, step 1: closes the listening socket; connections waiting for their next request
  // close now, connections with a request in flight close after its response. Idempotent.
  void StopAccepting();
  // Drain, step 2 (after a grace period): closes every connection, finished or not.
  void CloseAll();
  // Bytes of answers queued on open connections and not yet written to their sockets: what
  // CloseAll would drop.
  size_t unwritten_bytes() const;
  size_t open_connections() const;
  uint64_t requests_served() const;

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcpmw::http
