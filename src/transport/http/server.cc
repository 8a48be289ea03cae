#include "src/transport/http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/common/fd.h"
#include "src/common/log.h"
#include "src/common/strings.h"
#include "src/io/buffer.h"
#include "src/transport/http/request_parser.h"

namespace mcpmw::http {
namespace {

// Reads ask for at least this much room; an idle connection holds one small buffer.
constexpr size_t kMinRead = size_t{4} * 1024;
constexpr size_t kSteadyBuffer = size_t{8} * 1024;
// Bytes a client may send ahead (pipelining) while its previous request is being answered. Past
// this the connection stops reading until the answer ends: the kernel's socket buffer and then
// TCP flow control hold the client back.
constexpr size_t kMaxReadAhead = size_t{64} * 1024;
// Before parsing a pipelined request, wait for the output queue to drain below this: a client
// that pipelines without reading cannot pile up answers.
constexpr size_t kPipelineQueueLimit = size_t{64} * 1024;
// Segments per writev; the rest goes out in the next one.
constexpr size_t kMaxIov = 64;
// After an error answer, how long the server keeps reading (and dropping) what the client still
// sends before it closes: closing with unread bytes makes the kernel send a reset, which can
// destroy the answer before the client read it.
constexpr Duration kLingerTimeout = std::chrono::seconds(2);
constexpr size_t kMaxLingerBytes = size_t{1} << 20;
// How long a connection with a full read-ahead buffer parks before looking again (it is woken
// when its answer ends; this only bounds the wait if nothing does).
constexpr Duration kPark = std::chrono::minutes(10);
// After accept fails for lack of fds or memory, wait this long before accepting again.
constexpr Duration kAcceptBackoff = std::chrono::milliseconds(100);
// Bounds of the idle sweep's period (a quarter of the idle timeout, within these).
constexpr Duration kMinSweep = std::chrono::milliseconds(5);
constexpr Duration kMaxSweep = std::chrono::seconds(1);

std::string PeerText(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(in.sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
    return absl::StrCat("[", text, "]:", ntohs(in6.sin6_port));
  }
  return "unknown";
}

bool StatusHasBody(int status) { return status >= 200 && status != 204 && status != 304; }

}  // namespace

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

class Connection;

// The server's state, at namespace scope so that Connection can name it (HttpServer::Impl, which
// is only this, is private to HttpServer).
class ServerCore {
 public:
  ServerCore(io::Ring& ring, Handler& handler, ListenOptions options, UniqueFd listener,
             uint16_t port)
      : ring_(ring),
        handler_(handler),
        options_(std::move(options)),
        listener_(std::move(listener)),
        port_(port) {}

  static io::Task<void> Serve(ServerCore& self);
  // Closes connections whose untimed wait for the next request passed the idle timeout, every
  // quarter of that timeout, until the last connection is gone.
  static io::Task<void> Sweep(ServerCore& self);
  void StopAccepting();
  void CloseAll();
  size_t UnwrittenBytes() const;

  io::Ring& ring_;
  Handler& handler_;
  const ListenOptions options_;
  UniqueFd listener_;
  const uint16_t port_;
  io::TaskGroup connection_tasks_;
  std::unordered_set<Connection*> connections_;
  io::Operation* pending_accept_ = nullptr;  // the accept or its back-off sleep
  io::SleepOp* pending_sweep_ = nullptr;
  bool sweep_done_ = false;
  io::TaskGroup sweeper_;
  bool stopping_ = false;
  uint64_t requests_served_ = 0;
};

class HttpServer::Impl : public ServerCore {
 public:
  using ServerCore::ServerCore;
};

// The answer channel of one request. The connection it writes to may go first: then conn_ is
// null and every method is a no-op.
class Stream final : public ResponseStream {
 public:
  explicit Stream(Connection* conn) : conn_(conn) {}

  void Respond(Response response) override;
  void Begin(Response response) override;
  void Write(std::string_view data) override;
  void End() override;
  bool finished() const override { return finished_; }
  bool client_gone() const override { return client_gone_; }
  void OnClientGone(std::function<void()> callback) override;
  size_t queued_bytes() const override;

  // The connection failed or closed before the stream finished: no more output.
  void MarkGone() {
    finished_ = true;
    client_gone_ = true;
    conn_ = nullptr;
  }
  // MarkGone, and runs the OnClientGone callback (once). Called by the connection's coroutine,
  // never from inside a ResponseStream method, so handler code is not re-entered.
  void NotifyGone() {
    MarkGone();
    if (!gone_notified_) {
      gone_notified_ = true;
      std::function<void()> callback = std::exchange(callback_, nullptr);
      if (callback) {
        callback();
      }
    }
  }

 private:
  void CheckBackpressure();

  Connection* conn_;
  bool begun_ = false;
  bool finished_ = false;
  bool client_gone_ = false;
  bool gone_notified_ = false;
  std::function<void()> callback_;
};

// One accepted socket: a reader coroutine (Run) that parses requests and hands them to the
// handler one at a time, and a writer coroutine (Writer) that flushes queued output with one
// writev in flight. The reader owns the Connection; it finishes only after the writer did.
class Connection {
 public:
  Connection(ServerCore& server, UniqueFd fd, std::string peer)
      : server_(server),
        ring_(server.ring_),
        limits_(server.options_.limits),
        fd_(std::move(fd)),
        peer_(std::move(peer)),
        parser_(limits_),
        buffer_(kSteadyBuffer),
        wait_start_(ring_.clock().Now()) {
    server_.connections_.insert(this);
  }
  ~Connection() {
    if (stream_ != nullptr) {
      stream_->MarkGone();
    }
    server_.connections_.erase(this);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  static io::Task<void> Run(std::unique_ptr<Connection> self);

  // ---- Called by Stream.
  const Limits& limits() const { return limits_; }
  size_t queued_bytes() const { return out_bytes_; }
  void SendResponse(const Response& response);
  void BeginStream(const Response& response);
  void WriteChunk(std::string_view data);
  void EndStream();
  // The stream's answer is complete: the reader may go on with the next request.
  void StreamFinished();
  // The stream passed max_queued_bytes: the connection is closed.
  void Overflowed() { Fail(); }

  // ---- Called by the server.
  // StopAccepting: close when idle between requests, else after the answer in flight.
  void Drain();
  // CloseAll: close now, dropping unsent output.
  void Fail();
  // Sweep: wakes the reader when its untimed wait for the next request passed the idle timeout
  // (it then closes quietly, as a timed wait would have).
  void CheckIdle(TimePoint now);

 private:
  io::Task<void> Loop();
  io::Task<void> Shutdown();
  static io::Task<void> Writer(Connection& c);
  // Reads into the buffer; returns the read's result. `timeout` <= 0 means none.
  io::Task<int> Read(Duration timeout, size_t max_buffered);
  // Parks until Wake(): used when the read-ahead buffer is full.
  io::Task<void> Park();
  // Cancels the reader's pending read or park so it looks at the connection's state again.
  void Wake();
  void Dispatch();
  void SendError(int status, std::string_view message);
  void Queue(std::string bytes);
  // Status line and headers. Decides whether the connection closes after this answer.
  std::string Head(const Response& response, bool streamed, size_t content_length);

  ServerCore& server_;
  io::Ring& ring_;
  const Limits limits_;
  UniqueFd fd_;
  std::string peer_;
  RequestParser parser_;
  io::ReadBuffer buffer_;

  // Reader state.
  io::Operation* pending_read_ = nullptr;  // the read or park the reader waits on
  bool woken_ = false;                     // Wake() cancelled pending_read_
  // pending_read_ is the read that was kept while the last answer was in flight, and now waits
  // for the next request without a timeout of its own: the server's sweep enforces idle_timeout.
  // Re-arming a timed read after every answer would cost a cancel, a new read and a linked
  // timeout per request.
  bool untimed_wait_ = false;
  TimePoint wait_start_;       // when the connection began waiting for a request
  TimePoint request_start_{};  // when the current request's first byte was parsed
  bool served_one_ = false;    // a request was answered (idle_timeout applies)
  bool continue_sent_ = false;

  // The request being answered.
  std::shared_ptr<Stream> stream_;
  bool keep_alive_ = true;     // the request allows another one after it
  bool http10_ = false;        // HTTP/1.0: no chunked encoding
  bool head_request_ = false;  // HEAD: the answer has no body
  bool stream_raw_ = false;    // a stream to an HTTP/1.0 client: body unframed, close at end
  bool no_body_ = false;       // the current answer carries no body (HEAD, 204, 304, 1xx)

  // Connection state.
  bool close_after_response_ = false;  // close once the answer in flight is written
  bool linger_ = false;                // an error answer: drain the client before closing
  bool draining_ = false;
  bool aborted_ = false;  // the client left, a write failed or CloseAll: no more I/O

  // Writer state.
  std::deque<std::string> out_;
  size_t out_offset_ = 0;  // bytes of out_.front() already written
  size_t out_bytes_ = 0;   // unwritten bytes in out_
  bool writer_running_ = false;
  io::WritevOp* pending_write_ = nullptr;
  io::TaskGroup writer_;
};

// ---- Stream.

void Stream::Respond(Response response) {
  if (finished_ || begun_ || conn_ == nullptr) {
    return;
  }
  finished_ = true;
  Connection* conn = std::exchange(conn_, nullptr);
  conn->SendResponse(response);
  conn->StreamFinished();
}

void Stream::Begin(Response response) {
  if (finished_ || begun_ || conn_ == nullptr) {
    return;
  }
  begun_ = true;
  conn_->BeginStream(response);
  CheckBackpressure();
}

void Stream::Write(std::string_view data) {
  if (finished_ || !begun_ || conn_ == nullptr || data.empty()) {
    return;
  }
  conn_->WriteChunk(data);
  CheckBackpressure();
}

void Stream::End() {
  if (finished_ || conn_ == nullptr) {
    return;
  }
  if (!begun_) {
    Begin(Response());
    if (finished_) {
      return;
    }
  }
  finished_ = true;
  Connection* conn = std::exchange(conn_, nullptr);
  conn->EndStream();
  conn->StreamFinished();
}

void Stream::OnClientGone(std::function<void()> callback) {
  if (gone_notified_) {
    // The client left before anyone listened: tell the late listener at once.
    if (callback) {
      callback();
    }
    return;
  }
  callback_ = std::move(callback);
}

size_t Stream::queued_bytes() const { return conn_ != nullptr ? conn_->queued_bytes() : 0; }

void Stream::CheckBackpressure() {
  if (conn_ != nullptr && conn_->queued_bytes() > conn_->limits().max_queued_bytes) {
    // The connection notifies the callback from its own coroutine, not from inside Write().
    Connection* conn = conn_;
    finished_ = true;
    client_gone_ = true;
    conn_ = nullptr;
    conn->Overflowed();
  }
}

// ---- Connection: output.

std::string Connection::Head(const Response& response, bool streamed, size_t content_length) {
  no_body_ = head_request_ || !StatusHasBody(response.status);
  // Sized once for the head and, when it follows in the same string, the body.
  size_t size = 96;
  for (const auto& [name, value] : response.headers) {
    size += name.size() + value.size() + 4;
  }
  std::string head;
  head.reserve(size + (streamed ? 0 : content_length));
  absl::StrAppend(&head, "HTTP/1.1 ", response.status, " ", Sv(ReasonPhrase(response.status)),
                  "\r\n");
  bool connection_header = false;
  for (const auto& [name, value] : response.headers) {
    // The server frames the body itself.
    if (absl::EqualsIgnoreCase(name, "content-length") ||
        absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      continue;
    }
    if (absl::EqualsIgnoreCase(name, "connection")) {
      connection_header = true;
      if (absl::StrContains(absl::AsciiStrToLower(value), "close")) {
        close_after_response_ = true;
      }
    }
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  stream_raw_ = streamed && http10_;
  if (!keep_alive_ || draining_ || stream_raw_) {
    close_after_response_ = true;
  }
  if (streamed) {
    if (!stream_raw_ && StatusHasBody(response.status)) {
      head.append("Transfer-Encoding: chunked\r\n");
    }
  } else if (StatusHasBody(response.status)) {
    absl::StrAppend(&head, "Content-Length: ", content_length, "\r\n");
  }
  if (!connection_header) {
    if (close_after_response_) {
      head.append("Connection: close\r\n");
    } else if (http10_) {
      head.append("Connection: keep-alive\r\n");
    }
  }
  head.append("\r\n");
  return head;
}

void Connection::SendResponse(const Response& response) {
  std::string bytes = Head(response, /*streamed=*/false, response.body.size());
  if (!no_body_) {
    bytes.append(response.body);
  }
  Queue(std::move(bytes));
}

void Connection::BeginStream(const Response& response) {
  std::string bytes = Head(response, /*streamed=*/true, 0);
  Queue(std::move(bytes));
  if (!response.body.empty()) {
    WriteChunk(response.body);
  }
}

void Connection::WriteChunk(std::string_view data) {
  if (no_body_) {
    return;
  }
  if (stream_raw_) {
    Queue(std::string(data));
    return;
  }
  std::string chunk = absl::StrCat(absl::Hex(data.size()), "\r\n");
  chunk.reserve(chunk.size() + data.size() + 2);
  chunk.append(data);
  chunk.append("\r\n");
  Queue(std::move(chunk));
}

void Connection::EndStream() {
  if (!no_body_ && !stream_raw_) {
    Queue("0\r\n\r\n");
  }
}

void Connection::SendError(int status, std::string_view message) {
  keep_alive_ = false;
  http10_ = false;
  head_request_ = false;
  linger_ = true;
  Response response{.status = status,
                    .headers = {{"Content-Type", "text/plain; charset=utf-8"}},
                    .body = absl::StrCat(Sv(message), "\n")};
  SendResponse(response);
}

void Connection::Queue(std::string bytes) {
  if (aborted_ || bytes.empty()) {
    return;
  }
  out_bytes_ += bytes.size();
  out_.push_back(std::move(bytes));
  if (!writer_running_) {
    writer_running_ = true;
    writer_.Spawn(Writer(*this));
  }
}

io::Task<void> Connection::Writer(Connection& c) {
  std::array<iovec, kMaxIov> iov{};
  while (!c.out_.empty() && !c.aborted_) {
    // Everything queued so far goes out in one writev: a stream's small chunks coalesce.
    size_t count = 0;
    for (size_t i = 0; i < c.out_.size() && count < kMaxIov; ++i) {
      std::string& s = c.out_[i];
      size_t skip = i == 0 ? c.out_offset_ : 0;
      iov[count++] = {s.data() + skip, s.size() - skip};
    }
    io::WritevOp op(c.ring_, c.fd_.Get(), std::span<const iovec>(iov.data(), count));
    c.pending_write_ = &op;
    int n = co_await op;
    c.pending_write_ = nullptr;
    if (n == -EINTR || n == -EAGAIN) {
      continue;
    }
    if (n <= 0) {
      // The client is gone (EPIPE, ECONNRESET) or CloseAll cancelled the write.
      c.Fail();
      break;
    }
    auto written = static_cast<size_t>(n);
    c.out_bytes_ -= written;
    while (written > 0) {
      size_t left = c.out_.front().size() - c.out_offset_;
      if (written < left) {
        c.out_offset_ += written;
        break;
      }
      written -= left;
      c.out_.pop_front();
      c.out_offset_ = 0;
    }
  }
  c.writer_running_ = false;
}

// ---- Connection: the reader.

void Connection::Wake() {
  if (pending_read_ != nullptr && !woken_) {
    woken_ = true;
    ring_.Cancel(pending_read_);
  }
}

void Connection::Fail() {
  if (aborted_) {
    return;
  }
  aborted_ = true;
  if (stream_ != nullptr) {
    stream_->MarkGone();  // notified (callback) by the reader on its way out
  }
  if (pending_write_ != nullptr) {
    ring_.Cancel(pending_write_);
  }
  Wake();
}

void Connection::Drain() {
  draining_ = true;
  if (stream_ == nullptr && !parser_.started()) {
    Wake();
  }
}

void Connection::StreamFinished() {
  stream_.reset();
  if (draining_) {
    close_after_response_ = true;
  }
  served_one_ = true;
  wait_start_ = ring_.clock().Now();
  if (buffer_.Size() == 0 && !close_after_response_ && pending_read_ != nullptr && !woken_) {
    // Nothing pipelined to parse and the connection stays open: the read kept during the answer
    // goes on as the wait for the next request.
    untimed_wait_ = true;
    return;
  }
  Wake();
}

void Connection::CheckIdle(TimePoint now) {
  if (untimed_wait_ && now - wait_start_ >= limits_.idle_timeout) {
    Wake();
  }
}

void Connection::Dispatch() {
  Request request = parser_.TakeRequest();
  request.peer = peer_;
  keep_alive_ = request.keep_alive;
  http10_ = request.version_minor == 0;
  head_request_ = request.method == "HEAD";
  stream_raw_ = false;
  no_body_ = false;
  continue_sent_ = false;
  if (buffer_.Size() == 0) {
    buffer_.Recycle();
    buffer_.ShrinkTo(kSteadyBuffer);  // give back what one large request needed
  }
  auto stream = std::make_shared<Stream>(this);
  stream_ = stream;
  ++server_.requests_served_;
  // The handler may answer right here (StreamFinished clears stream_) or later.
  server_.handler_.OnRequest(request, std::move(stream));
  parser_.Recycle(std::move(request));  // handlers keep nothing of it past OnRequest
}

io::Task<int> Connection::Read(Duration timeout, size_t max_buffered) {
  std::span<char> tail = buffer_.WritableTail(kMinRead, max_buffered);
  int n = 0;
  if (timeout.count() > 0) {
    io::ReadOp op(ring_, fd_.Get(), tail, timeout);
    pending_read_ = &op;
    int r = co_await op;
    n = r;
  } else {
    io::ReadOp op(ring_, fd_.Get(), tail);
    pending_read_ = &op;
    int r = co_await op;
    n = r;
  }
  pending_read_ = nullptr;
  if (n > 0) {
    buffer_.Commit(static_cast<size_t>(n));
  }
  co_return n;
}

io::Task<void> Connection::Park() {
  io::SleepOp op(ring_, kPark);
  pending_read_ = &op;
  co_await op;
  pending_read_ = nullptr;
  woken_ = false;
}

io::Task<void> Connection::Loop() {
  while (!aborted_) {
    if (stream_ != nullptr) {
      // An answer is in flight. Keep one read pending so a client that leaves is noticed at
      // once (the handler may be waiting on an upstream for minutes); what a pipelining client
      // sends meanwhile is kept, unparsed, up to kMaxReadAhead.
      if (buffer_.Size() >= kMaxReadAhead) {
        co_await Park();
        continue;
      }
      int n = co_await Read(Duration::zero(), kMaxReadAhead);
      bool answered = std::exchange(untimed_wait_, false);
      bool woken = std::exchange(woken_, false);
      if (n > 0 || n == -EINTR || n == -EAGAIN || (n == -ECANCELED && woken)) {
        continue;
      }
      if (answered) {
        co_return;  // closed between requests: what is queued of the answer is still written
      }
      Fail();  // EOF or a socket error before the answer finished: the client is gone
      co_return;
    }
    if (close_after_response_) {
      co_return;
    }
    if (draining_ && !parser_.started()) {
      co_return;
    }
    if (buffer_.Size() > 0) {
      if (out_bytes_ > kPipelineQueueLimit) {
        co_await writer_.Join();
        continue;
      }
      bool was_started = parser_.started();
      RequestParser::FeedResult r = parser_.Feed(buffer_.Data());
      buffer_.Consume(r.consumed);
      if (!was_started && parser_.started()) {
        request_start_ = ring_.clock().Now();
      }
      if (r.state == RequestParser::State::kError) {
        SendError(parser_.error_status(), parser_.error_message());
        co_return;
      }
      if (r.state == RequestParser::State::kComplete) {
        Dispatch();
        continue;
      }
      if (parser_.expects_continue() && !continue_sent_) {
        continue_sent_ = true;
        Queue("HTTP/1.1 100 Continue\r\n\r\n");
      }
    }
    // Waiting for bytes. Each read carries a linked timeout for what is left of the current
    // deadline rather than a separate timer coroutine racing it: one completion says which came
    // first, nothing needs cancelling on the common path, and a client that trickles bytes
    // cannot stretch the header deadline because every read gets only the time that is left.
    TimePoint now = ring_.clock().Now();
    TimePoint deadline;
    bool answer_408 = true;
    if (!parser_.started()) {
      deadline = wait_start_ + (served_one_ ? limits_.idle_timeout : limits_.header_timeout);
      answer_408 = false;  // nothing was asked: close quietly
    } else if (!parser_.headers_complete()) {
      deadline = request_start_ + limits_.header_timeout;
    } else {
      deadline = now + limits_.idle_timeout;  // a body must keep moving
    }
    int n = -ECANCELED;
    if (deadline > now) {
      int r = co_await Read(deadline - now, SIZE_MAX);
      n = r;
    }
    bool woken = std::exchange(woken_, false);
    if (n > 0 || n == -EINTR || n == -EAGAIN || (n == -ECANCELED && woken)) {
      continue;
    }
    if (n == -ECANCELED) {  // the deadline passed
      if (answer_408) {
        SendError(408, "request headers or body did not arrive in time");
      }
      co_return;
    }
    co_return;  // the client closed (or the socket failed) between requests
  }
}

io::Task<void> Connection::Shutdown() {
  if (stream_ != nullptr) {
    std::shared_ptr<Stream> stream = std::move(stream_);
    stream->NotifyGone();
  }
  // Graceful: everything queued is written. After Fail(): the writer stops at once.
  co_await writer_.Join();
  if (!aborted_ && linger_) {
    ::shutdown(fd_.Get(), SHUT_WR);
    TimePoint until = ring_.clock().Now() + kLingerTimeout;
    size_t dropped = 0;
    while (dropped < kMaxLingerBytes) {
      TimePoint now = ring_.clock().Now();
      if (now >= until) {
        break;
      }
      buffer_.Clear();
      int n = co_await Read(until - now, SIZE_MAX);
      woken_ = false;
      if (n <= 0 && n != -EINTR && n != -EAGAIN) {
        break;
      }
      dropped += n > 0 ? static_cast<size_t>(n) : 0;
    }
  }
  out_.clear();
  out_bytes_ = 0;
  fd_.Reset();
}

io::Task<void> Connection::Run(std::unique_ptr<Connection> self) {
  Connection& c = *self;
  co_await c.Loop();
  co_await c.Shutdown();
  // Gone before this task counts as finished: Serve() may complete (and the server be destroyed)
  // as soon as the last connection task ends, before its frame is freed.
  self.reset();
}

// ---- The server.

io::Task<void> ServerCore::Sweep(ServerCore& self) {
  const Duration period =
      std::clamp<Duration>(self.options_.limits.idle_timeout / 4, kMinSweep, kMaxSweep);
  while (!self.sweep_done_) {
    io::SleepOp op(self.ring_, period);
    self.pending_sweep_ = &op;
    co_await op;
    self.pending_sweep_ = nullptr;
    TimePoint now = self.ring_.clock().Now();
    for (Connection* c : self.connections_) {
      c->CheckIdle(now);
    }
  }
}

io::Task<void> ServerCore::Serve(ServerCore& self) {
  self.sweeper_.Spawn(Sweep(self));
  while (!self.stopping_ && self.listener_.Valid()) {
    io::AcceptOp op(self.ring_, self.listener_.Get());
    self.pending_accept_ = &op;
    int fd = co_await op;
    self.pending_accept_ = nullptr;
    if (fd >= 0) {
      UniqueFd socket(fd);
      if (self.stopping_ || self.connections_.size() >= self.options_.limits.max_connections) {
        continue;  // closed at once
      }
      // Answers are written whole or in deliberate chunks; Nagle would only add latency.
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto conn = std::make_unique<Connection>(self, std::move(socket), PeerText(op.peer()));
      self.connection_tasks_.Spawn(Connection::Run(std::move(conn)));
      continue;
    }
    if (fd == -ECANCELED || self.stopping_) {
      break;
    }
    if (fd == -EINTR || fd == -EAGAIN || fd == -ECONNABORTED) {
      continue;
    }
    if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
      LogError("http: cannot accept a connection on port ", self.port_, ": ", ErrnoText(-fd),
               "; retrying in ",
               std::chrono::duration_cast<std::chrono::milliseconds>(kAcceptBackoff).count(),
               " ms");
      io::SleepOp backoff(self.ring_, kAcceptBackoff);
      self.pending_accept_ = &backoff;
      co_await backoff;
      self.pending_accept_ = nullptr;
      continue;
    }
    LogError("http: accepting on port ", self.port_, " failed: ", ErrnoText(-fd),
             "; no longer accepting");
    break;
  }
  self.listener_.Reset();
  co_await self.connection_tasks_.Join();
  self.sweep_done_ = true;
  if (self.pending_sweep_ != nullptr) {
    self.ring_.Cancel(self.pending_sweep_);
  }
  co_await self.sweeper_.Join();
}

void ServerCore::StopAccepting() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  if (pending_accept_ != nullptr) {
    ring_.Cancel(pending_accept_);
  }
  // A pending accept keeps its own reference to the socket until its cancellation lands;
  // closing the descriptor now makes the port free as soon as it does.
  listener_.Reset();
  for (Connection* c : connections_) {
    c->Drain();
  }
}

void ServerCore::CloseAll() {
  for (Connection* c : connections_) {
    c->Fail();
  }
}

size_t ServerCore::UnwrittenBytes() const {
  size_t n = 0;
  for (const Connection* c : connections_) {
    n += c->queued_bytes();
  }
  return n;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Listen(io::Ring& ring, Handler& handler,
                                                               ListenOptions options) {
  const std::string where = options.address.find(':') != std::string::npos
                                ? absl::StrCat("[", options.address, "]:", options.port)
                                : absl::StrCat(options.address, ":", options.port);
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  auto* in = reinterpret_cast<sockaddr_in*>(&addr);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, options.address.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(options.port);
    addr_len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, options.address.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(options.port);
    addr_len = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", where,
                     ": not an IPv4 or IPv6 address literal (use 127.0.0.1, ::1, "
                     "0.0.0.0 or ::)"));
  }
  UniqueFd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", where, ": socket: ", ErrnoText(errno)));
  }
  int one = 1;
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.Get(), reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 ||
      ::listen(fd.Get(), options.backlog) != 0) {
    int err = errno;
    return absl::UnavailableError(absl::StrCat("cannot listen on ", where, ": ", ErrnoText(err)));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (::getsockname(fd.Get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", where, ": getsockname: ", ErrnoText(errno)));
  }
  uint16_t port = bound.ss_family == AF_INET
                      ? ntohs(reinterpret_cast<const sockaddr_in&>(bound).sin_port)
                      : ntohs(reinterpret_cast<const sockaddr_in6&>(bound).sin6_port);
  auto impl = std::make_unique<Impl>(ring, handler, std::move(options), std::move(fd), port);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() = default;

uint16_t HttpServer::port() const { return impl_->port_; }

io::Task<void> HttpServer::Serve() { return Impl::Serve(*impl_); }

void HttpServer::StopAccepting() { impl_->StopAccepting(); }

void HttpServer::CloseAll() { impl_->CloseAll(); }

size_t HttpServer::unwritten_bytes() const { return impl_->UnwrittenBytes(); }

size_t HttpServer::open_connections() const { return impl_->connections_.size(); }

uint64_t HttpServer::requests_served() const { return impl_->requests_served_; }

}  // namespace mcpmw::http
