// HttpServer on a real io_uring and real loopback sockets. The server runs on the test's thread
// (Ring::RunUntilDone); the client is plain blocking sockets on another thread, every read
// bounded by SO_RCVTIMEO. When the client is done the server drains (StopAccepting) and the test
// checks that Serve() returned by itself; a guard closes everything if it does not, and the test
// fails. Where the kernel or its sandbox offers no io_uring, each test is skipped with the reason.
#include "src/transport/http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "src/common/fd.h"
#include "src/io/ring.h"
#include "src/io/task.h"
#include "tests/transport/http/loopback_client.h"
#include "tests/transport/http/serve_guard.h"

namespace mcpmw::http {
namespace {

using namespace std::chrono_literals;

constexpr auto kClientTimeout = 5s;

// ---- The client: blocking sockets with a receive timeout.

class Client : public testing_support::LoopbackClient {
 public:
  explicit Client(uint16_t port, int rcvbuf = 0)
      : LoopbackClient(port, std::chrono::duration_cast<std::chrono::seconds>(kClientTimeout),
                       rcvbuf) {}

  // One response framed by Content-Length: head (through the blank line) and body.
  std::pair<std::string, std::string> ReadResponse() {
    std::string head = ReadThrough("\r\n\r\n");
    size_t at = head.find("Content-Length: ");
    if (at == std::string::npos) {
      return {head, {}};
    }
    size_t length = std::stoul(head.substr(at + 16));
    return {head, ReadExactly(length)};
  }
};

// ---- The server side.

class TestHandler final : public Handler {
 public:
  std::function<void(Request&, std::shared_ptr<ResponseStream>)> on_request;
  void OnRequest(Request& request, std::shared_ptr<ResponseStream> stream) override {
    on_request(request, std::move(stream));
  }
};

struct Harness {
  std::unique_ptr<io::Ring> ring;
  TestHandler handler;
  std::unique_ptr<HttpServer> server;
  io::TaskGroup handler_tasks;  // answers given later; joined before the server goes
  bool forced_close = false;    // the drain guard had to call CloseAll
  bool client_finished = false;
  bool serve_returned = false;
};

io::Task<void> Drive(Harness& h, int done_fd) {
  io::TaskGroup group;
  io::SleepOp* guard = nullptr;
  group.Spawn(testing_support::ServeThenCancelGuard(h, guard));
  char c = 0;
  int n = co_await io::ReadOp(*h.ring, done_fd, std::span<char>(&c, 1), 30s);
  h.client_finished = n == 1;
  h.server->StopAccepting();
  if (!h.serve_returned) {  // a handler may have stopped the server already
    group.Spawn(testing_support::CloseAfter(h, guard, 5s));
  }
  co_await group.Join();
  co_await h.handler_tasks.Join();
}

// Serves on this thread while `client` runs on another with the server's port; then drains.
void RunWithClient(Harness& h, const std::function<void(uint16_t)>& client) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd done_read(fds[0]);
  UniqueFd done_write(fds[1]);
  uint16_t port = h.server->port();
  std::thread thread([&client, port, &done_write] {
    client(port);
    ASSERT_EQ(::write(done_write.Get(), "x", 1), 1);
  });
  h.ring->RunUntilDone(Drive(h, done_read.Get()));
  thread.join();
  EXPECT_TRUE(h.client_finished) << "the client did not finish in 30 s";
  EXPECT_EQ(h.server->open_connections(), 0u);
}

// Creates the ring and a listening server. Fails with FailedPrecondition where there is no
// io_uring (the caller skips); a server that cannot listen is a test failure.
absl::Status Start(Harness& h, const Limits& limits) {
  std::signal(SIGPIPE, SIG_IGN);  // as mcpmw itself runs
  auto ring_or = io::Ring::Create(256);
  if (!ring_or.ok()) {
    return ring_or.status();
  }
  h.ring = std::move(*ring_or);
  auto server_or = HttpServer::Listen(*h.ring, h.handler, {.limits = limits});
  if (!server_or.ok()) {
    ADD_FAILURE() << server_or.status();
    return server_or.status();
  }
  h.server = std::move(*server_or);
  return absl::OkStatus();
}

#define START_OR_SKIP(h, limits)                                   \
  do {                                                             \
    if (absl::Status st = Start((h), (limits)); !st.ok()) {        \
      GTEST_SKIP() << "cannot start the server: " << st.message(); \
    }                                                              \
  } while (false)

Response Text(int status, std::string body) {
  return Response{
      .status = status, .headers = {{"Content-Type", "text/plain"}}, .body = std::move(body)};
}

// Answers `stream` after `delay`, on the ring.
io::Task<void> AnswerLater(io::Ring& ring, std::shared_ptr<ResponseStream> stream, Duration delay,
                           std::string body) {
  co_await io::SleepOp(ring, delay);
  stream->Respond(Text(200, std::move(body)));
}

TEST(HttpServer, ServesThreeRequestsInARowOnOneKeepAliveConnection) {
  Harness h;
  START_OR_SKIP(h, Limits());
  std::vector<std::string> peers;
  h.handler.on_request = [&peers](Request& r, const std::shared_ptr<ResponseStream>& s) {
    peers.push_back(r.peer);
    s->Respond(Text(200, r.method + " " + r.path + " " + r.body));
  };
  std::vector<std::pair<std::string, std::string>> responses;
  RunWithClient(h, [&responses](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    for (int i = 0; i < 3; ++i) {
      std::string body = "n=" + std::to_string(i);
      c.Send("POST /req/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body);
      responses.push_back(c.ReadResponse());
    }
  });
  ASSERT_EQ(responses.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    std::string body = "POST /req/" + std::to_string(i) + " n=" + std::to_string(i);
    EXPECT_EQ(responses[i].first,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n");
    EXPECT_EQ(responses[i].second, body);
  }
  ASSERT_EQ(peers.size(), 3u);
  EXPECT_EQ(peers[0], peers[2]) << "one connection served all three";
  EXPECT_TRUE(peers[0].starts_with("127.0.0.1:")) << peers[0];
  EXPECT_EQ(h.server->requests_served(), 3u);
  EXPECT_FALSE(h.forced_close);
}

TEST(HttpServer, AnswersPipelinedRequestsInOrder) {
  Harness h;
  START_OR_SKIP(h, Limits());
  h.handler.on_request = [&h](Request& r, const std::shared_ptr<ResponseStream>& s) {
    // The first answer comes late: the second must still wait for it.
    Duration delay = r.path == "/1" ? 50ms : 0ms;
    h.handler_tasks.Spawn(AnswerLater(*h.ring, s, delay, r.path));
  };
  std::vector<std::string> bodies;
  RunWithClient(h, [&bodies](uint16_t port) {
    Client c(port);
    c.Send("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    bodies.push_back(c.ReadResponse().second);
    bodies.push_back(c.ReadResponse().second);
  });
  EXPECT_EQ(bodies, (std::vector<std::string>{"/1", "/2"}));
  EXPECT_FALSE(h.forced_close);
}

TEST(HttpServer, DeliversAnAnswerGivenLaterBySleepingHandler) {
  Harness h;
  START_OR_SKIP(h, Limits());
  h.handler.on_request = [&h](Request& r, const std::shared_ptr<ResponseStream>& s) {
    h.handler_tasks.Spawn(AnswerLater(*h.ring, s, 100ms, "late " + r.query));
  };
  std::pair<std::string, std::string> response;
  RunWithClient(h, [&response](uint16_t port) {
    Client c(port);
    c.Send("GET /x?q=1 HTTP/1.1\r\n\r\n");
    response = c.ReadResponse();
  });
  EXPECT_TRUE(response.first.starts_with("HTTP/1.1 200 OK\r\n")) << response.first;
  EXPECT_EQ(response.second, "late q=1");
}

// Writes the second chunk only once the client says (through `go_fd`) it has read the first.
io::Task<void> StreamTwoChunks(io::Ring& ring, std::shared_ptr<ResponseStream> stream, int go_fd) {
  stream->Begin(
      Response{.headers = {{"Content-Type", "text/event-stream"}}, .body = "data: 1\n\n"});
  char c = 0;
  int n = co_await io::ReadOp(ring, go_fd, std::span<char>(&c, 1), 10s);
  if (n == 1) {
    stream->Write("data: two\n\n");
    stream->Write("");  // ignored
  }
  stream->End();
}

TEST(HttpServer, StreamsChunksThatTheClientSeesOneByOne) {
  Harness h;
  START_OR_SKIP(h, Limits());
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd go_read(fds[0]);
  UniqueFd go_write(fds[1]);
  h.handler.on_request = [&h, &go_read](Request&, const std::shared_ptr<ResponseStream>& s) {
    h.handler_tasks.Spawn(StreamTwoChunks(*h.ring, s, go_read.Get()));
  };
  std::string head, first, rest;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("GET /sse HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n");
    head = c.ReadThrough("\r\n\r\n");
    first = c.ReadThrough("\n\n\r\n");
    ASSERT_EQ(::write(go_write.Get(), "g", 1), 1);
    rest = c.ReadThrough("0\r\n\r\n");
  });
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
            "chunked\r\n\r\n");
  EXPECT_EQ(first, "9\r\ndata: 1\n\n\r\n");
  EXPECT_EQ(rest, "b\r\ndata: two\n\n\r\n0\r\n\r\n");
}

// Begins a stream and keeps it open until the client goes (or 10 s pass).
io::Task<void> HoldStream(io::Ring& ring, std::shared_ptr<ResponseStream> stream, int* gone_calls) {
  stream->OnClientGone([gone_calls] { ++*gone_calls; });
  stream->Begin(Response{.body = "hello"});
  for (int i = 0; i < 1000 && !stream->client_gone(); ++i) {
    co_await io::SleepOp(ring, 10ms);
  }
  stream->Write("after");  // no-op once gone
  stream->End();           // no-op once gone
}

TEST(HttpServer, CallsOnClientGoneOnceWhenTheClientClosesDuringAStream) {
  Harness h;
  START_OR_SKIP(h, Limits());
  int gone_calls = 0;
  std::shared_ptr<ResponseStream> kept;
  h.handler.on_request = [&](Request&, const std::shared_ptr<ResponseStream>& s) {
    kept = s;
    h.handler_tasks.Spawn(HoldStream(*h.ring, s, &gone_calls));
  };
  std::string first;
  RunWithClient(h, [&first](uint16_t port) {
    Client c(port);
    c.Send("GET /sse HTTP/1.1\r\n\r\n");
    c.ReadThrough("\r\n\r\n");
    first = c.ReadThrough("hello\r\n");
    c.Close();
  });
  EXPECT_EQ(first, "5\r\nhello\r\n");
  EXPECT_EQ(gone_calls, 1);
  ASSERT_NE(kept, nullptr);
  EXPECT_TRUE(kept->client_gone());
  EXPECT_TRUE(kept->finished());
  EXPECT_FALSE(h.forced_close) << "the server noticed the close by itself";
}

TEST(HttpServer, Answers413WithConnectionCloseAndClosesTheSocket) {
  Limits limits;
  limits.max_body_bytes = 1000;
  Harness h;
  START_OR_SKIP(h, limits);
  int calls = 0;
  h.handler.on_request = [&calls](Request&, const std::shared_ptr<ResponseStream>& s) {
    ++calls;
    s->Respond(Text(200, "no"));
  };
  std::string got;
  bool eof = false;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("POST /mcp HTTP/1.1\r\nContent-Length: 1001\r\n\r\n" + std::string(1001, 'x'));
    eof = c.ReadToEof();
    got = c.data();
  });
  EXPECT_TRUE(eof);
  const std::string body = "request body of 1001 bytes exceeds 1000 bytes\n";
  EXPECT_EQ(got,
            "HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: " +
                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, Answers413WhenAChunkedBodyGrowsPastTheLimit) {
  Limits limits;
  limits.max_body_bytes = 10;
  Harness h;
  START_OR_SKIP(h, limits);
  h.handler.on_request = [](Request&, const std::shared_ptr<ResponseStream>& s) {
    s->Respond(Text(200, "no"));
  };
  std::string got;
  bool eof = false;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678");
    eof = c.ReadToEof();
    got = c.data();
  });
  EXPECT_TRUE(eof);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 413 Content Too Large\r\n")) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
}

TEST(HttpServer, Answers431WithConnectionCloseAndClosesTheSocket) {
  Limits limits;
  limits.max_header_bytes = 512;
  Harness h;
  START_OR_SKIP(h, limits);
  h.handler.on_request = [](Request&, const std::shared_ptr<ResponseStream>& s) {
    s->Respond(Text(200, "no"));
  };
  std::string got;
  bool eof = false;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("GET / HTTP/1.1\r\nCookie: " + std::string(600, 'c') + "\r\n\r\n");
    eof = c.ReadToEof();
    got = c.data();
  });
  EXPECT_TRUE(eof);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n")) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(got.ends_with("request line and headers exceed 512 bytes\n")) << got;
}

TEST(HttpServer, Answers400ToAMalformedRequest) {
  Harness h;
  START_OR_SKIP(h, Limits());
  h.handler.on_request = [](Request&, const std::shared_ptr<ResponseStream>& s) {
    s->Respond(Text(200, "no"));
  };
  std::string got;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.ReadToEof();
    got = c.data();
  });
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request\r\n")) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
}

TEST(HttpServer, Answers408WhenHeadersDoNotArriveInTime) {
  Limits limits;
  limits.header_timeout = 200ms;
  Harness h;
  START_OR_SKIP(h, limits);
  h.handler.on_request = [](Request&, const std::shared_ptr<ResponseStream>& s) {
    s->Respond(Text(200, "no"));
  };
  std::string got;
  bool eof = false;
  std::chrono::steady_clock::duration waited{};
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    auto start = std::chrono::steady_clock::now();
    c.Send("GET / HTTP/1.1\r\nHost: slo");
    eof = c.ReadToEof();
    waited = std::chrono::steady_clock::now() - start;
    got = c.data();
  });
  EXPECT_TRUE(eof);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 408 Request Timeout\r\n")) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
  EXPECT_GE(waited, 150ms);
}

TEST(HttpServer, ClosesAKeepAliveConnectionIdleLongerThanTheIdleTimeout) {
  Limits limits;
  limits.idle_timeout = 200ms;
  Harness h;
  START_OR_SKIP(h, limits);
  h.handler.on_request = [](Request&, const std::shared_ptr<ResponseStream>& s) {
    s->Respond(Text(200, "ok"));
  };
  std::pair<std::string, std::string> response;
  bool eof = false;
  std::string after;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("GET / HTTP/1.1\r\n\r\n");
    response = c.ReadResponse();
    eof = c.ReadToEof();
    after = c.data();
  });
  EXPECT_EQ(response.second, "ok");
  EXPECT_TRUE(eof) << "closed by the server, not the client's 5 s timeout";
  EXPECT_EQ(after, "") << "an idle close says nothing";
}

// After an answer given later, the read kept open during the answer is the wait for the next
// request: it carries no timeout of its own, and the server's sweep must still close it.
TEST(HttpServer, ClosesAConnectionIdleAfterALateAnswerOnceTheIdleTimeoutPasses) {
  Limits limits;
  limits.idle_timeout = 200ms;
  Harness h;
  START_OR_SKIP(h, limits);
  h.handler.on_request = [&h](Request&, const std::shared_ptr<ResponseStream>& s) {
    h.handler_tasks.Spawn(AnswerLater(*h.ring, s, 20ms, "late"));
  };
  std::pair<std::string, std::string> response;
  bool eof = false;
  Duration idle{};
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("GET / HTTP/1.1\r\n\r\n");
    response = c.ReadResponse();
    auto answered = std::chrono::steady_clock::now();
    eof = c.ReadToEof();
    idle = std::chrono::steady_clock::now() - answered;
  });
  EXPECT_EQ(response.second, "late");
  EXPECT_TRUE(eof) << "closed by the server, not the client's 5 s timeout";
  EXPECT_GE(idle, 150ms) << "closed before the idle timeout";
  EXPECT_LT(idle, 2s);
}

TEST(HttpServer, ServesTheNextRequestOnTheReadKeptDuringALateAnswer) {
  Harness h;
  START_OR_SKIP(h, Limits());
  int served = 0;
  h.handler.on_request = [&](Request& r, const std::shared_ptr<ResponseStream>& s) {
    ++served;
    h.handler_tasks.Spawn(AnswerLater(*h.ring, s, 10ms, "late " + r.query));
  };
  std::vector<std::string> bodies;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    for (int i = 0; i < 3; ++i) {
      c.Send(absl::StrCat("GET /?n=", i, " HTTP/1.1\r\n\r\n"));
      bodies.push_back(c.ReadResponse().second);
    }
  });
  EXPECT_EQ(served, 3);
  EXPECT_EQ(bodies, (std::vector<std::string>{"late n=0", "late n=1", "late n=2"}));
}

TEST(HttpServer, StopAcceptingLetsTheAnswerInFlightFinishThenServeReturns) {
  Harness h;
  START_OR_SKIP(h, Limits());
  size_t open_when_stopped = 0;
  h.handler.on_request = [&](Request&, const std::shared_ptr<ResponseStream>& s) {
    h.server->StopAccepting();
    open_when_stopped = h.server->open_connections();
    h.handler_tasks.Spawn(AnswerLater(*h.ring, s, 100ms, "finished"));
  };
  std::pair<std::string, std::string> response;
  bool eof = false;
  int refused = 0;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("GET / HTTP/1.1\r\n\r\n");
    response = c.ReadResponse();
    eof = c.ReadToEof();
    Client late(port);
    refused = late.connected() ? 0 : late.connect_errno();
  });
  EXPECT_EQ(open_when_stopped, 1u);
  EXPECT_EQ(response.first,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: "
            "close\r\n\r\n");
  EXPECT_EQ(response.second, "finished");
  EXPECT_TRUE(eof);
  EXPECT_EQ(refused, ECONNREFUSED);
  EXPECT_FALSE(h.forced_close);
}

// One connection was answered at once (it waits on a timed read), the other later (it waits on
// the read kept during its answer): both close when the server stops accepting.
TEST(HttpServer, StopAcceptingClosesConnectionsIdleBetweenRequests) {
  Harness h;
  START_OR_SKIP(h, Limits());
  h.handler.on_request = [&h](Request& r, const std::shared_ptr<ResponseStream>& s) {
    if (r.path == "/late") {
      h.handler_tasks.Spawn(AnswerLater(*h.ring, s, 10ms, "late"));
      return;
    }
    if (r.path == "/stop") {
      h.server->StopAccepting();
    }
    s->Respond(Text(200, "ok"));
  };
  bool idle_closed = false;
  bool idle_after_late_closed = false;
  std::string stop_head;
  RunWithClient(h, [&](uint16_t port) {
    Client idle(port);
    idle.Send("GET / HTTP/1.1\r\n\r\n");
    idle.ReadResponse();  // now idle between requests
    Client idle_after_late(port);
    idle_after_late.Send("GET /late HTTP/1.1\r\n\r\n");
    idle_after_late.ReadResponse();
    Client stopper(port);
    stopper.Send("GET /stop HTTP/1.1\r\n\r\n");
    stop_head = stopper.ReadResponse().first;
    idle_closed = idle.ReadToEof();
    idle_after_late_closed = idle_after_late.ReadToEof();
  });
  EXPECT_TRUE(idle_closed) << "closed by the drain, not the client's 5 s timeout";
  EXPECT_TRUE(idle_after_late_closed) << "closed by the drain, not the client's 5 s timeout";
  EXPECT_NE(stop_head.find("\r\nConnection: close\r\n"), std::string::npos) << stop_head;
  EXPECT_FALSE(h.forced_close);
}

// Writes 16 KiB chunks, giving the writer a turn between them, until the stream closes.
io::Task<void> Flood(io::Ring& ring, std::shared_ptr<ResponseStream> stream, size_t* written,
                     int* gone_calls, int gone_fd) {
  stream->OnClientGone([gone_calls, gone_fd] {
    ++*gone_calls;
    (void)!::write(gone_fd, "g", 1);
  });
  stream->Begin(Response{});
  std::string chunk(size_t{16} * 1024, 'z');
  for (int i = 0; i < 20000 && !stream->finished(); ++i) {
    stream->Write(chunk);
    *written += chunk.size();
    co_await io::SleepOp(ring, 100us);
  }
}

TEST(HttpServer, ClosesTheStreamOfAClientThatStopsReadingPastMaxQueuedBytes) {
  Limits limits;
  limits.max_queued_bytes = size_t{256} * 1024;
  Harness h;
  START_OR_SKIP(h, limits);
  size_t written = 0;
  int gone_calls = 0;
  std::shared_ptr<ResponseStream> kept;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd gone_read(fds[0]);
  UniqueFd gone_write(fds[1]);
  h.handler.on_request = [&](Request&, const std::shared_ptr<ResponseStream>& s) {
    kept = s;
    h.handler_tasks.Spawn(Flood(*h.ring, s, &written, &gone_calls, gone_write.Get()));
  };
  bool told = false;
  bool eof = false;
  size_t received = 0;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port, /*rcvbuf=*/4096);
    c.Send("GET /flood HTTP/1.1\r\n\r\n");
    // Not reading until the server has given up on this stream (bounded wait).
    pollfd p{.fd = gone_read.Get(), .events = POLLIN, .revents = 0};
    told = ::poll(&p, 1, 20000) == 1;
    eof = c.ReadToEof();
    received = c.data().size();
  });
  EXPECT_TRUE(told) << "OnClientGone ran";
  ASSERT_NE(kept, nullptr);
  EXPECT_TRUE(kept->finished());
  EXPECT_TRUE(kept->client_gone());
  EXPECT_EQ(gone_calls, 1);
  EXPECT_TRUE(eof);
  EXPECT_GT(written, limits.max_queued_bytes);
  EXPECT_LT(received, written) << "the rest was dropped, not sent";
}

// What a drain checks before CloseAll: an answer bigger than the socket buffers is counted as
// unwritten once queued, and no longer once the client has read it.
TEST(HttpServer, CountsAnAnswersUnwrittenBytesUntilTheClientHasReadThem) {
  Harness h;
  START_OR_SKIP(h, Limits{});
  constexpr size_t kBody = size_t{4} << 20;
  size_t unwritten_after_answer = 0;
  size_t unwritten_at_next_request = SIZE_MAX;
  h.handler.on_request = [&](Request& request, const std::shared_ptr<ResponseStream>& s) {
    if (request.target == "/big") {
      s->Respond(Text(200, std::string(kBody, 'x')));
      unwritten_after_answer = h.server->unwritten_bytes();
    } else {
      unwritten_at_next_request = h.server->unwritten_bytes();
      s->Respond(Text(200, "ok"));
    }
  };
  RunWithClient(h, [&](uint16_t port) {
    Client c(port, /*rcvbuf=*/4096);
    c.Send("GET /big HTTP/1.1\r\n\r\n");
    auto [head, body] = c.ReadResponse();
    EXPECT_EQ(body.size(), kBody);
    c.Send("GET /next HTTP/1.1\r\n\r\n");
    EXPECT_EQ(c.ReadResponse().second, "ok");
  });
  EXPECT_GT(unwritten_after_answer, kBody);  // the body and its head, none written yet
  EXPECT_EQ(unwritten_at_next_request, 0u);
  EXPECT_EQ(h.server->unwritten_bytes(), 0u);
}

TEST(HttpServer, ClosesConnectionsPastMaxConnectionsAtOnce) {
  Limits limits;
  limits.max_connections = 1;
  Harness h;
  START_OR_SKIP(h, limits);
  h.handler.on_request = [](Request&, const std::shared_ptr<ResponseStream>& s) {
    s->Respond(Text(200, "ok"));
  };
  std::string first_body;
  bool second_closed = false;
  RunWithClient(h, [&](uint16_t port) {
    Client first(port);
    first.Send("GET / HTTP/1.1\r\n\r\n");
    first_body = first.ReadResponse().second;  // accepted and served: one connection open
    Client second(port);
    second_closed = second.ReadToEof();
  });
  EXPECT_EQ(first_body, "ok");
  EXPECT_TRUE(second_closed);
  EXPECT_EQ(h.server->requests_served(), 1u);
}

TEST(HttpServer, AnswersHttp10WithKeepAliveOnlyWhenAsked) {
  Harness h;
  START_OR_SKIP(h, Limits());
  h.handler.on_request = [](Request&, const std::shared_ptr<ResponseStream>& s) {
    s->Respond(Text(200, "ok"));
  };
  std::string kept_head, second_body, closed_head;
  bool closed_eof = false;
  RunWithClient(h, [&](uint16_t port) {
    Client keep(port);
    keep.Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    kept_head = keep.ReadResponse().first;
    keep.Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    second_body = keep.ReadResponse().second;
    Client once(port);
    once.Send("GET / HTTP/1.0\r\n\r\n");
    closed_head = once.ReadResponse().first;
    closed_eof = once.ReadToEof();
  });
  EXPECT_NE(kept_head.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << kept_head;
  EXPECT_EQ(second_body, "ok");
  EXPECT_NE(closed_head.find("\r\nConnection: close\r\n"), std::string::npos) << closed_head;
  EXPECT_TRUE(closed_eof);
}

TEST(HttpServer, SendsContinueToAClientThatExpectsIt) {
  Harness h;
  START_OR_SKIP(h, Limits());
  h.handler.on_request = [](Request& r, const std::shared_ptr<ResponseStream>& s) {
    s->Respond(Text(200, r.body));
  };
  std::string interim;
  std::string body;
  RunWithClient(h, [&](uint16_t port) {
    Client c(port);
    c.Send("POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    interim = c.ReadThrough("\r\n\r\n");
    c.Send("body");
    body = c.ReadResponse().second;
  });
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(body, "body");
}

TEST(HttpServer, ListenNamesTheAddressWhenItCannotBind) {
  auto ring_or = io::Ring::Create(8);
  if (!ring_or.ok()) {
    GTEST_SKIP() << "no io_uring here: " << ring_or.status().message();
  }
  TestHandler handler;
  auto bad = HttpServer::Listen(**ring_or, handler, {.address = "not-an-ip"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "cannot listen on not-an-ip:0: "))
      << bad.status();
  auto first = HttpServer::Listen(**ring_or, handler, {});
  ASSERT_TRUE(first.ok());
  auto taken = HttpServer::Listen(**ring_or, handler, {.port = (*first)->port()});
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().message(),
            "cannot listen on 127.0.0.1:" + std::to_string((*first)->port()) +
                ": Address already in use");
}

TEST(ReasonPhrase, NamesCommonCodesAndSaysUnknownOtherwise) {
  EXPECT_EQ(ReasonPhrase(200), "OK");
  EXPECT_EQ(ReasonPhrase(404), "Not Found");
  EXPECT_EQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(ReasonPhrase(799), "Unknown");
}

}  // namespace
}  // namespace mcpmw::http
