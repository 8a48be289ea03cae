// SessionMux in front of a real MCP server: @modelcontextprotocol/server-everything (Node), run
// once, shared by 50 client sessions that all use the same request ids and progress tokens.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/process.h"
#include "simdjson.h"
#include "src/common/strings.h"
#include "src/proxy/session_mux.h"

#ifndef MCPMW_SOURCE_DIR
#error "MCPMW_SOURCE_DIR must name the source tree (tests/proxy/CMakeLists.txt sets it)"
#endif

namespace mcpmw::proxy {
namespace {

constexpr char kEverything[] = MCPMW_SOURCE_DIR
    "/tests/integration/node_modules/@modelcontextprotocol/server-everything/dist/index.js";
constexpr int kSessions = 50;
constexpr int kSteps = 3;  // progress notifications per long-running call
constexpr auto kDeadline = std::chrono::seconds(60);

// What one client session saw, decoded.
struct SeenBySession {
  std::vector<std::string> lines;
  // Responses by id, written as `n` for a number and `"s"` for a string.
  std::map<std::string, std::vector<std::string>> responses;
  // Progress values by token, in arrival order, keyed like ids.
  std::map<std::string, std::vector<int64_t>> progress;
  bool initialized = false;
};

std::string Key(simdjson::dom::element e) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) {
    return absl::StrCat("\"", std::string(s), "\"");
  }
  int64_t n = 0;
  if (e.get_int64().get(n) == simdjson::SUCCESS) {
    return absl::StrCat(n);
  }
  return "?";
}

class Harness {
 public:
  explicit Harness(pool::Child& child) : child_(child) {}

  void Apply(const MuxOutput& out) {
    for (const std::string& line : out.to_worker) {
      to_worker_ += line;
      to_worker_ += '\n';
    }
    for (const Delivery& d : out.to_clients) {
      Record(d.session, d.line);
    }
  }

  void FromClient(SessionMux& mux, SessionId s, const std::string& line) {
    Apply(mux.FromClient(s, line));
  }

  // Writes what is pending and handles what the worker wrote, waiting at most `ms`. False once
  // the worker's stdout closed.
  bool Pump(SessionMux& mux, int ms) {
    pollfd fds[2] = {
        {child_.stdout_fd.Get(), POLLIN, 0},
        {child_.stdin_fd.Get(), static_cast<short>(to_worker_.empty() ? 0 : POLLOUT), 0}};
    if (::poll(fds, 2, ms) < 0) {
      return errno == EINTR;
    }
    if ((fds[1].revents & POLLOUT) != 0) {
      ssize_t n = ::write(child_.stdin_fd.Get(), to_worker_.data(), to_worker_.size());
      if (n > 0) {
        to_worker_.erase(0, static_cast<size_t>(n));
      }
    }
    if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) {
      char buf[65536];
      ssize_t n = ::read(child_.stdout_fd.Get(), buf, sizeof(buf));
      if (n == 0) {
        return false;
      }
      if (n > 0) {
        from_worker_.append(buf, static_cast<size_t>(n));
      }
      size_t nl;
      while ((nl = from_worker_.find('\n')) != std::string::npos) {
        std::string line = from_worker_.substr(0, nl);
        from_worker_.erase(0, nl + 1);
        ++worker_lines_;
        Apply(mux.FromWorker(line));
      }
    }
    return true;
  }

  std::map<SessionId, SeenBySession>& seen() { return seen_; }
  int worker_lines() const { return worker_lines_; }

 private:
  void Record(SessionId s, const std::string& line) {
    SeenBySession& seen = seen_[s];
    seen.lines.push_back(line);
    simdjson::dom::element doc;
    ASSERT_EQ(parser_.parse(line).get(doc), simdjson::SUCCESS) << line;
    simdjson::dom::element id;
    if (doc["id"].get(id) == simdjson::SUCCESS) {
      seen.responses[Key(id)].push_back(line);
      if (Key(id) == "1") {
        seen.initialized = true;
      }
      return;
    }
    std::string_view method;
    if (doc["method"].get(method) == simdjson::SUCCESS && method == "notifications/progress") {
      simdjson::dom::element token;
      int64_t value = 0;
      ASSERT_EQ(doc["params"]["progressToken"].get(token), simdjson::SUCCESS) << line;
      ASSERT_EQ(doc["params"]["progress"].get_int64().get(value), simdjson::SUCCESS) << line;
      seen.progress[Key(token)].push_back(value);
    }
  }

  pool::Child& child_;
  simdjson::dom::parser parser_;
  std::string to_worker_;
  std::string from_worker_;
  int worker_lines_ = 0;
  std::map<SessionId, SeenBySession> seen_;
};

std::string Initialize(int i) {
  return absl::StrCat(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",)",
      R"("capabilities":{},"clientInfo":{"name":"session-)", i, R"(","version":"1.0.0"}}})");
}

std::string LongRunning(std::string_view id, std::string_view token) {
  return absl::StrCat(
      R"({"jsonrpc":"2.0","id":)", Sv(id),
      R"(,"method":"tools/call","params":{"name":"trigger-long-running-operation",)",
      R"("arguments":{"duration":0.3,"steps":)", kSteps, R"(},"_meta":{"progressToken":)",
      Sv(token), "}}}");
}

TEST(SessionMuxWithServerEverything,
     FiftySessionsUsingTheSameIdsAndTokensGetExactlyTheirOwnResponsesAndProgress) {
  if (!std::filesystem::exists(kEverything)) {
    GTEST_SKIP() << kEverything
                 << " is missing; run `npm ci` in tests/integration to install server-everything";
  }
  absl::StatusOr<pool::Child> spawned =
      pool::Spawn({.argv = {"node", kEverything, "stdio"}, .inherit_stderr = false});
  if (absl::IsNotFound(spawned.status())) {
    GTEST_SKIP() << "node is not installed: " << spawned.status().message();
  }
  ASSERT_TRUE(spawned.ok()) << spawned.status();
  pool::Child child = *std::move(spawned);
  ASSERT_EQ(::fcntl(child.stdin_fd.Get(), F_SETFL, O_NONBLOCK), 0);
  ASSERT_EQ(::fcntl(child.stdout_fd.Get(), F_SETFL, O_NONBLOCK), 0);

  SessionMux mux;
  Harness h(child);
  std::vector<SessionId> sessions;
  sessions.reserve(kSessions);
  for (int i = 0; i < kSessions; ++i) {
    sessions.push_back(mux.OpenSession());
  }
  // Every session initializes with id 1: one initialize reaches the worker, the other 49 wait for
  // its answer and get the cached result.
  for (int i = 0; i < kSessions; ++i) {
    h.FromClient(mux, sessions[i], Initialize(i));
  }
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  auto all = [&h, &sessions](auto pred) {
    for (SessionId s : sessions) {
      if (!pred(h.seen()[s])) {
        return false;
      }
    }
    return true;
  };
  while (!all([](const SeenBySession& s) { return s.initialized; })) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "initialize was not answered";
    ASSERT_TRUE(h.Pump(mux, 1000)) << "server-everything exited during initialize";
  }
  EXPECT_EQ(mux.TotalInFlight(), 0u);

  // Interleave the calls across sessions: every session uses the ids 2, 3 and "3" and the
  // progress tokens 7 and "7"; the long-running calls of early sessions report progress while
  // later sessions are still sending.
  for (SessionId s : sessions) {
    h.FromClient(mux, s, R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  }
  for (SessionId s : sessions) {
    h.FromClient(mux, s, LongRunning("3", "7"));
  }
  for (int i = 0; i < kSessions; ++i) {
    h.FromClient(mux, sessions[i],
                 absl::StrCat(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":)",
                              R"({"name":"echo","arguments":{"message":"session-)", i, R"("}}})"));
    h.FromClient(mux, sessions[i], LongRunning(R"("3")", R"("7")"));
  }
  EXPECT_EQ(mux.TotalInFlight(), static_cast<size_t>(3 * kSessions));
  while (!all([](const SeenBySession& s) { return s.responses.size() == 4; })) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "not every call was answered within " << kDeadline.count() << " s";
    ASSERT_TRUE(h.Pump(mux, 1000)) << "server-everything exited during the calls";
  }
  EXPECT_EQ(mux.TotalInFlight(), 0u);
  EXPECT_EQ(mux.WorkerInFlight(), 0u);

  const std::vector<int64_t> steps = [] {
    std::vector<int64_t> v;
    for (int i = 1; i <= kSteps; ++i) {
      v.push_back(i);
    }
    return v;
  }();
  for (int i = 0; i < kSessions; ++i) {
    SCOPED_TRACE(absl::StrCat("session-", i));
    SeenBySession& seen = h.seen()[sessions[i]];
    // Exactly its four responses, once each, with its own ids.
    ASSERT_EQ(seen.responses.size(), 4u);
    for (const char* id : {"1", "2", "3", "\"3\""}) {
      ASSERT_EQ(seen.responses[id].size(), 1u) << "id " << id;
    }
    EXPECT_THAT(seen.responses["1"][0], ::testing::HasSubstr(R"("serverInfo")"));
    // The echo carries this session's message and nobody else's ("session-1" is a prefix of
    // "session-10", hence the closing quote).
    EXPECT_THAT(seen.responses["2"][0],
                ::testing::HasSubstr(absl::StrCat("Echo: session-", i, "\"")));
    EXPECT_THAT(seen.responses["3"][0], ::testing::HasSubstr("Long running operation completed"));
    EXPECT_THAT(seen.responses["\"3\""][0],
                ::testing::HasSubstr("Long running operation completed"));
    // Only its own progress, under its own tokens: 1..kSteps once each per call.
    ASSERT_EQ(seen.progress.size(), 2u);
    EXPECT_EQ(seen.progress["7"], steps);
    EXPECT_EQ(seen.progress["\"7\""], steps);
  }

  // The worker saw one initialize, and at most one line per call plus the handshake.
  EXPECT_GE(h.worker_lines(), 1 + 3 * kSessions + 2 * kSteps * kSessions);

  // Closing every session now sends nothing: nothing is in flight.
  for (SessionId s : sessions) {
    EXPECT_TRUE(mux.CloseSession(s).to_worker.empty());
  }
  pool::SignalChild(child, SIGKILL);
  pollfd exit_wait{child.pidfd.Get(), POLLIN, 0};
  ASSERT_EQ(::poll(&exit_wait, 1, 10000), 1);
  ASSERT_TRUE(pool::Reap(child).ok());
}

}  // namespace
}  // namespace mcpmw::proxy
