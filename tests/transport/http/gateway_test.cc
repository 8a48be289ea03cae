// The Streamable HTTP gateway end to end: Gateway + HttpServer on a real io_uring Ring (this
// thread, Ring::RunUntilDone), a real PoolManager whose workers are the fake MCP server
// (tests/proxy/fake_server.cc), Governance with an allow-all or a small deny bundle, and a client
// of plain blocking loopback sockets on another thread, every read bounded by SO_RCVTIMEO. When
// the client is done the gateway drains and the server stops accepting; a guard closes the
// connections if they do not close by themselves. Where the kernel offers no io_uring, each test
// is skipped with the reason.
#include "src/transport/http/gateway.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/pool_manager.h"
#include "pool/sandbox/host.h"
#include "src/common/fd.h"
#include "src/common/strings.h"
#include "src/io/ring.h"
#include "src/io/task.h"
#include "src/proxy/governance.h"
#include "src/transport/http/server.h"
#include "tests/common/temp_dir.h"
#include "tests/pool/probed_host.h"
#include "tests/transport/http/loopback_client.h"
#include "tests/transport/http/serve_guard.h"

namespace mcpmw::http {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr auto kClientTimeout = 10s;
constexpr std::string_view kAccept = "application/json, text/event-stream";
constexpr std::string_view kInitialize =
    R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",)"
    R"("capabilities":{},"clientInfo":{"name":"gateway-test","version":"1"}}})";
constexpr std::string_view kCapabilities = R"({"tools":{"listChanged":false}})";
constexpr std::string_view kStatelessMeta =
    R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"})";

// ---- The client: blocking sockets with a receive timeout.

struct Reply {
  int status = 0;
  Headers headers;  // names lower-cased
  std::string body;

  std::string Header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers) {
      if (name == lower_name) {
        return value;
      }
    }
    return "";
  }
};

// One HTTP request. Host defaults to the server's loopback address, the credential to "good".
struct Call {
  std::string method = "POST";
  std::string path = "/servers/fake/mcp";
  std::string body;
  std::string authorization = "Bearer good";  // empty: none sent
  std::string host;                           // empty: 127.0.0.1:<port>
  std::string session;                        // Mcp-Session-Id; empty: none
  Headers extra;
};

class Client : public testing_support::LoopbackClient {
 public:
  explicit Client(uint16_t port)
      : LoopbackClient(port, std::chrono::duration_cast<std::chrono::seconds>(kClientTimeout)),
        port_(port) {}

  using LoopbackClient::Send;
  bool Send(const Call& call) {
    std::string out = call.method + " " + call.path + " HTTP/1.1\r\n";
    out +=
        "Host: " + (call.host.empty() ? "127.0.0.1:" + std::to_string(port_) : call.host) + "\r\n";
    if (!call.authorization.empty()) {
      out += "Authorization: " + call.authorization + "\r\n";
    }
    if (!call.session.empty()) {
      out += "Mcp-Session-Id: " + call.session + "\r\n";
    }
    if (call.method == "POST") {
      out += "Accept: " + std::string(kAccept) + "\r\nContent-Type: application/json\r\n";
    }
    for (const auto& [name, value] : call.extra) {
      out.append(name).append(": ").append(value).append("\r\n");
    }
    out += "Content-Length: " + std::to_string(call.body.size()) + "\r\n\r\n" + call.body;
    return Send(out);
  }

  // One whole response: Content-Length or chunked (read through the last chunk). Status 0 when
  // the connection ended or timed out first.
  Reply Read() {
    Reply r;
    std::string head = ReadThrough("\r\n\r\n");
    if (head.empty()) {
      return r;
    }
    size_t line_end = head.find("\r\n");
    std::string_view status_line = std::string_view(head).substr(0, line_end);
    if (status_line.size() < 12 || !absl::SimpleAtoi(Sv(status_line.substr(9, 3)), &r.status)) {
      return r;
    }
    size_t at = line_end + 2;
    while (at < head.size() - 2) {
      size_t end = head.find("\r\n", at);
      std::string line = head.substr(at, end - at);
      size_t colon = line.find(':');
      r.headers.emplace_back(absl::AsciiStrToLower(line.substr(0, colon)),
                             std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
      at = end + 2;
    }
    if (r.Header("transfer-encoding") == "chunked") {
      while (true) {
        std::string size_line = ReadThrough("\r\n");
        size_t size = 0;
        if (size_line.empty() ||
            !absl::SimpleHexAtoi(size_line.substr(0, size_line.size() - 2), &size)) {
          r.status = 0;
          return r;
        }
        if (size == 0) {
          ReadThrough("\r\n");
          return r;
        }
        r.body += ReadExactly(size);
        ReadExactly(2);
      }
    }
    size_t length = 0;
    if (absl::SimpleAtoi(r.Header("content-length"), &length)) {
      r.body = ReadExactly(length);
    }
    return r;
  }

  Reply Do(const Call& call) {
    if (!Send(call)) {
      return {};
    }
    return Read();
  }

 private:
  uint16_t port_;
};

struct SseEvent {
  std::string id;
  std::string data;
};

// The events of an SSE body (comments skipped; one data line per event, as the gateway sends).
std::vector<SseEvent> ParseSse(std::string_view body) {
  std::vector<SseEvent> out;
  SseEvent current;
  bool any = false;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string_view::npos) {
      end = body.size();
    }
    std::string_view line = body.substr(at, end - at);
    at = end + 1;
    if (line.empty()) {
      if (any) {
        out.push_back(std::move(current));
      }
      current = {};
      any = false;
    } else if (line.starts_with("id: ")) {
      current.id = std::string(line.substr(4));
      any = true;
    } else if (line.starts_with("data: ")) {
      current.data += std::string(line.substr(6));
      any = true;
    }
  }
  return out;
}

std::string ToolCall(int id, std::string_view tool, std::string_view arguments,
                     std::string_view extra_params = "") {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
         R"(,"method":"tools/call","params":{"name":")" + std::string(tool) + R"(","arguments":)" +
         std::string(arguments) + (extra_params.empty() ? "" : "," + std::string(extra_params)) +
         "}}";
}

// The fake server's `progress` request: `count` notifications/progress for `token`,
// `interval_ms` apart, then {"done":true}.
std::string ProgressCall(int id, int count, int interval_ms, std::string_view token) {
  return absl::StrCat(R"({"jsonrpc":"2.0","id":)", id, R"(,"method":"progress","params":{)",
                      R"("count":)", count, R"(,"interval_ms":)", interval_ms,
                      R"(,"_meta":{"progressToken":")", Sv(token), R"("}}})");
}

// initialize then notifications/initialized on `c`; returns the session id ("" on failure, with
// the failure recorded).
std::string OpenSession(Client& c, const std::string& authorization = "Bearer good",
                        const std::string& path = "/servers/fake/mcp") {
  Reply init =
      c.Do({.path = path, .body = std::string(kInitialize), .authorization = authorization});
  EXPECT_EQ(init.status, 200) << init.body;
  EXPECT_THAT(init.body, StartsWith(R"({"jsonrpc":"2.0","id":0,"result":{)")) << init.body;
  std::string sid = init.Header("mcp-session-id");
  EXPECT_FALSE(sid.empty());
  Reply ack = c.Do({.path = path,
                    .body = R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                    .authorization = authorization,
                    .session = sid,
                    .extra = {{"MCP-Protocol-Version", "2025-06-18"}}});
  EXPECT_EQ(ack.status, 202) << ack.body;
  return sid;
}

// ---- The server side.

// Forwards every answer to the real stream and notes on the ring's log when it finishes.
class RecordingStream final : public ResponseStream {
 public:
  RecordingStream(std::shared_ptr<ResponseStream> inner, std::string name,
                  std::vector<std::string>& log)
      : inner_(std::move(inner)), name_(std::move(name)), log_(log) {}
  void Respond(Response response) override {
    log_.push_back(name_ + " answered " + std::to_string(response.status));
    inner_->Respond(std::move(response));
  }
  void Begin(Response response) override {
    log_.push_back(name_ + " began " + std::to_string(response.status));
    inner_->Begin(std::move(response));
  }
  void Write(std::string_view data) override { inner_->Write(data); }
  void End() override {
    log_.push_back(name_ + " ended");
    inner_->End();
  }
  bool finished() const override { return inner_->finished(); }
  bool client_gone() const override { return inner_->client_gone(); }
  void OnClientGone(std::function<void()> callback) override {
    inner_->OnClientGone(std::move(callback));
  }
  size_t queued_bytes() const override { return inner_->queued_bytes(); }

 private:
  std::shared_ptr<ResponseStream> inner_;
  std::string name_;
  std::vector<std::string>& log_;
};

struct Harness;
io::Task<void> DrainAndLog(Harness& h);

// In front of the gateway: with `drain_on_slow`, a POST calling the tool "slow" is recorded and,
// once the gateway has it in flight, the gateway starts draining and the client is told (one
// byte on `drain_started_fd`).
class FrontHandler final : public Handler {
 public:
  explicit FrontHandler(Harness& h) : h_(h) {}
  void OnRequest(Request& request, std::shared_ptr<ResponseStream> stream) override;

 private:
  Harness& h_;
};

struct Harness {
  Harness() : front(*this) {}
  std::string dir;
  std::unique_ptr<io::Ring> ring;
  GatewayConfig config;
  std::unique_ptr<proxy::Governance> governance;
  std::unique_ptr<pool::PoolManager> pools;
  std::unique_ptr<Gateway> gateway;
  FrontHandler front;
  std::unique_ptr<HttpServer> server;
  io::TaskGroup side_tasks;  // the drain started by FrontHandler
  std::vector<std::string> log;
  bool drain_on_slow = false;
  bool drain_started = false;
  int drain_started_fd = -1;
  bool client_finished = false;
  bool serve_returned = false;
  bool forced_close = false;
};

io::Task<void> DrainAndLog(Harness& h) {
  co_await h.gateway->Drain();
  h.log.emplace_back("drain done");
}

void FrontHandler::OnRequest(Request& request, std::shared_ptr<ResponseStream> stream) {
  if (!h_.drain_on_slow || h_.drain_started || request.method != "POST" ||
      request.body.find(R"("name":"slow")") == std::string::npos) {
    h_.gateway->OnRequest(request, std::move(stream));
    return;
  }
  h_.gateway->OnRequest(request, std::make_shared<RecordingStream>(stream, "slow", h_.log));
  h_.drain_started = true;
  // Drain() marks the gateway draining before its first suspension, so the client's next
  // request sees it.
  h_.side_tasks.Spawn(DrainAndLog(h_));
  if (::write(h_.drain_started_fd, "d", 1) != 1) {
    ADD_FAILURE() << "cannot tell the client the drain started";
  }
}

AuthOutcome Authenticate(const Request& request) {
  AuthOutcome out;
  const std::string* auth = request.Find("authorization");
  if (auth != nullptr && (*auth == "Bearer good" || *auth == "Bearer other")) {
    out.ok = true;
    out.principal.tenant = "acme";
    out.principal.user = auth->substr(7);
    out.credential_id = "key:" + auth->substr(7);
    return out;
  }
  out.status = 401;
  out.www_authenticate =
      R"(Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource")";
  out.error = "invalid_token";
  out.message = "send Authorization: Bearer <token>";
  return out;
}

io::Task<void> Drive(Harness& h, int done_fd) {
  io::TaskGroup group;
  io::SleepOp* guard = nullptr;
  group.Spawn(h.gateway->Run());
  group.Spawn(testing_support::ServeThenCancelGuard(h, guard));
  char c = 0;
  int n = co_await io::ReadOp(*h.ring, done_fd, std::span<char>(&c, 1), 60s);
  h.client_finished = n == 1;
  if (!h.drain_started) {
    h.drain_started = true;
    h.side_tasks.Spawn(DrainAndLog(h));
  }
  co_await h.side_tasks.Join();
  h.server->StopAccepting();
  if (!h.serve_returned) {
    group.Spawn(testing_support::CloseAfter(h, guard, 5s));
  }
  co_await group.Join();
}

class GatewayTest : public testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);  // as mcpmw itself runs
    absl::StatusOr<std::unique_ptr<io::Ring>> ring = io::Ring::Create(256);
    if (!ring.ok()) {
      GTEST_SKIP() << "no io_uring here: " << ring.status().message();
    }
    h_.ring = *std::move(ring);
    h_.dir = mcpmw::testing_support::MakeTempDir("mcpmw-gateway-test");
    ASSERT_TRUE(std::filesystem::is_directory(h_.dir)) << h_.dir;
  }

  void TearDown() override {
    h_.server.reset();
    h_.gateway.reset();
    if (h_.pools != nullptr) {
      h_.pools->Shutdown();
    }
    if (!h_.dir.empty()) {
      std::filesystem::remove_all(h_.dir);
    }
  }

  // Governance (allow-all, or `bundle_json` written to a file), a pool of fake servers named
  // "fake", the gateway and its listener.
  void Start(std::string_view bundle_json = "") {
    proxy::GovernanceOptions gov;
    if (!bundle_json.empty()) {
      gov.policy_path = h_.dir + "/bundle.json";
      std::ofstream(gov.policy_path) << bundle_json;
    }
    absl::StatusOr<std::unique_ptr<proxy::Governance>> governance =
        proxy::Governance::Create(gov, SteadyClock::Instance());
    ASSERT_TRUE(governance.ok()) << governance.status();
    h_.governance = *std::move(governance);

    pool::Profile p;
    p.name = "fake";
    p.argv = {MCPMW_FAKE_SERVER};
    p.env_set = {{"FAKE_CAPABILITIES", std::string(kCapabilities)}};
    p.env_set.insert(worker_env_.begin(), worker_env_.end());
    p.min_warm = 1;
    p.max_workers = 8;
    p.sandbox = {};
    h_.config.servers = {p};
    h_.config.allowed_origins = {"https://app.example"};
    h_.config.drain_timeout = 5s;
    pool::PoolOptions options;
    options.host = pool::testing_support::ProbedHost();
    options.kill_timeout = 2000ms;
    absl::StatusOr<std::unique_ptr<pool::PoolManager>> pools =
        pool::PoolManager::Start(h_.config.servers, std::move(options));
    ASSERT_TRUE(pools.ok()) << pools.status();
    h_.pools = *std::move(pools);

    h_.gateway =
        std::make_unique<Gateway>(h_.config, GatewayDeps{.ring = h_.ring.get(),
                                                         .pools = h_.pools.get(),
                                                         .governance = h_.governance.get(),
                                                         .authenticate = Authenticate,
                                                         .protected_resource_metadata = "{}",
                                                         .clock = &SteadyClock::Instance()});
    absl::StatusOr<std::unique_ptr<HttpServer>> server =
        HttpServer::Listen(*h_.ring, h_.front, h_.config.listen);
    ASSERT_TRUE(server.ok()) << server.status();
    h_.server = *std::move(server);
  }

  // Serves on this thread while `client` runs on another with the server's port; then drains.
  void RunWithClient(const std::function<void(uint16_t)>& client) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    UniqueFd done_read(fds[0]);
    UniqueFd done_write(fds[1]);
    uint16_t port = h_.server->port();
    std::thread thread([&client, port, &done_write] {
      client(port);
      EXPECT_EQ(::write(done_write.Get(), "x", 1), 1);
    });
    h_.ring->RunUntilDone(Drive(h_, done_read.Get()));
    thread.join();
    EXPECT_TRUE(h_.client_finished) << "the client did not finish in 60 s";
    EXPECT_FALSE(h_.forced_close) << "connections stayed open after the drain";
    EXPECT_EQ(h_.gateway->session_count(), 0u) << "the drain left sessions behind";
  }

  Harness h_;
  std::vector<std::pair<std::string, std::string>> worker_env_;  // for the next Start()
};

TEST_F(GatewayTest, InitializeThenToolsCallAnswersAsJsonOnAHexSession) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply init;
  Reply call;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    init = c.Do({.body = std::string(kInitialize)});
    std::string sid = init.Header("mcp-session-id");
    Reply ack =
        c.Do({.body = R"({"jsonrpc":"2.0","method":"notifications/initialized"})", .session = sid});
    EXPECT_EQ(ack.status, 202);
    call = c.Do({.body = ToolCall(2, "echo", R"({"text":"hello"})"),
                 .session = sid,
                 .extra = {{"MCP-Protocol-Version", "2025-06-18"}}});
  });
  EXPECT_EQ(init.status, 200) << init.body;
  EXPECT_EQ(init.Header("content-type"), "application/json");
  EXPECT_TRUE(std::regex_match(init.Header("mcp-session-id"), std::regex("[0-9a-f]{32}")))
      << init.Header("mcp-session-id");
  EXPECT_EQ(init.body, std::string(R"({"jsonrpc":"2.0","id":0,"result":{"protocolVersion":)"
                                   R"("2025-06-18","capabilities":)") +
                           std::string(kCapabilities) +
                           R"(,"serverInfo":{"name":"fake","version":"1"}}})");
  EXPECT_EQ(call.status, 200) << call.body;
  EXPECT_EQ(call.Header("content-type"), "application/json");
  EXPECT_EQ(call.Header("mcp-session-id"), init.Header("mcp-session-id"));
  EXPECT_EQ(call.body,
            R"({"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"hello"}]}})");
}

TEST_F(GatewayTest, RefusesForeignSessionIdsMissingIdsAndMissingCredentialsAndEndsOnDelete) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply foreign, no_sid, no_auth, del, after;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    std::string sid = OpenSession(c);
    ASSERT_FALSE(sid.empty());
    std::string call = ToolCall(3, "echo", R"({"text":"x"})");
    foreign = c.Do({.body = call, .authorization = "Bearer other", .session = sid});
    no_sid = c.Do({.body = call});
    no_auth = c.Do({.body = call, .authorization = "", .session = sid});
    del = c.Do({.method = "DELETE", .session = sid});
    after = c.Do({.body = call, .session = sid});
  });
  EXPECT_EQ(foreign.status, 404) << foreign.body;
  EXPECT_THAT(foreign.body, HasSubstr(R"("error":{"code":-32006,)"));
  EXPECT_EQ(no_sid.status, 400) << no_sid.body;
  EXPECT_THAT(no_sid.body, StartsWith(R"({"jsonrpc":"2.0","id":3,"error":{"code":-32600,)"));
  EXPECT_EQ(no_auth.status, 401) << no_auth.body;
  EXPECT_EQ(no_auth.Header("www-authenticate"),
            R"(Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource")");
  EXPECT_THAT(no_auth.body, StartsWith(R"({"error":"invalid_token",)"));
  EXPECT_EQ(del.status, 204);
  EXPECT_EQ(del.body, "");
  EXPECT_EQ(after.status, 404) << after.body;
  EXPECT_THAT(after.body, HasSubstr(R"("error":{"code":-32006,)"));
}

TEST_F(GatewayTest, RefusesAnOriginNotAllowedAndAForeignHostOnLoopbackWith403) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply evil_origin, evil_host, good_origin;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    evil_origin =
        c.Do({.body = std::string(kInitialize), .extra = {{"Origin", "https://evil.example"}}});
    evil_host = c.Do({.body = std::string(kInitialize), .host = "evil.example"});
    good_origin =
        c.Do({.body = std::string(kInitialize), .extra = {{"Origin", "https://app.example"}}});
  });
  EXPECT_EQ(evil_origin.status, 403);
  EXPECT_EQ(evil_origin.body,
            "Origin https://evil.example is not allowed (add it to allowedOrigins in the gateway "
            "config)\n");
  EXPECT_EQ(evil_host.status, 403);
  EXPECT_EQ(evil_host.body,
            "Host evil.example is not served here (add it to allowedHosts in the gateway "
            "config)\n");
  EXPECT_EQ(good_origin.status, 200) << good_origin.body;
  EXPECT_EQ(good_origin.Header("mcp-session-id").size(), 32u);
}

constexpr std::string_view kDenyDelete = R"({"bundleVersion":"v1","policyRules":[
  {"ruleId":"allow-all","status":"allow","conditionDsl":"*","priority":100},
  {"ruleId":"deny-delete","status":"deny","conditionDsl":"tool.name == \"delete_file\"",
   "priority":1,"reasonCode":"no-delete","message":"Deleting files is not allowed."}]})";

TEST_F(GatewayTest, AnswersAPolicyDeniedToolWith200AndMinus32011CarryingTheReasonCode) {
  ASSERT_NO_FATAL_FAILURE(Start(kDenyDelete));
  Reply denied, allowed;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    std::string sid = OpenSession(c);
    denied = c.Do({.body = ToolCall(4, "delete_file", R"({"path":"/tmp/x"})"), .session = sid});
    allowed = c.Do({.body = ToolCall(5, "echo", R"({"text":"still here"})"), .session = sid});
  });
  EXPECT_EQ(denied.status, 200) << denied.body;
  EXPECT_EQ(denied.Header("content-type"), "application/json");
  EXPECT_THAT(denied.body, StartsWith(R"({"jsonrpc":"2.0","id":4,"error":{"code":-32011,)"
                                      R"("message":"Deleting files is not allowed.","data":{)"));
  EXPECT_THAT(denied.body, HasSubstr(R"("reasonCode":"no-delete")"));
  EXPECT_THAT(denied.body, HasSubstr(R"("ruleId":"deny-delete")"));
  EXPECT_EQ(allowed.status, 200);
  EXPECT_EQ(allowed.body, R"({"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text",)"
                          R"("text":"still here"}]}})");
}

TEST_F(GatewayTest, ServesStatelessDiscoverAndCallsAndRefusesAMismatchedMcpName) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply discover, call, mismatch;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    discover = c.Do(
        {.body = R"({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{)" +
                 std::string(kStatelessMeta) + "}}",
         .extra = {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "server/discover"}}});
    std::string body = ToolCall(2, "echo", R"({"text":"stateless"})", kStatelessMeta);
    call = c.Do({.body = body,
                 .extra = {{"MCP-Protocol-Version", "2026-07-28"},
                           {"Mcp-Method", "tools/call"},
                           {"Mcp-Name", "echo"}}});
    mismatch = c.Do({.body = body,
                     .extra = {{"MCP-Protocol-Version", "2026-07-28"},
                               {"Mcp-Method", "tools/call"},
                               {"Mcp-Name", "delete_file"}}});
  });
  EXPECT_EQ(discover.status, 200) << discover.body;
  EXPECT_EQ(discover.Header("content-type"), "application/json");
  EXPECT_EQ(discover.Header("mcp-session-id"), "") << "the stateless era has no sessions";
  EXPECT_THAT(discover.body, StartsWith(R"({"jsonrpc":"2.0","id":1,"result":{)"
                                        R"("resultType":"complete",)"
                                        R"("supportedVersions":["2026-07-28"],"capabilities":)" +
                                        std::string(kCapabilities) + ","));
  EXPECT_THAT(discover.body, HasSubstr(R"("serverInfo":{"name":"fake","version":"1"})"));
  EXPECT_EQ(call.status, 200) << call.body;
  EXPECT_EQ(call.Header("content-type"), "application/json");
  EXPECT_EQ(call.body, R"({"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text",)"
                       R"("text":"stateless"}]}})");
  EXPECT_EQ(mismatch.status, 400) << mismatch.body;
  EXPECT_THAT(mismatch.body, StartsWith(R"({"jsonrpc":"2.0","id":2,"error":{"code":-32020,)"));
}

TEST_F(GatewayTest, StreamsServerNotificationsAsSseWithEventIdsAndResumesAfterLastEventId) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply stream, resumed;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    std::string sid = OpenSession(c);
    // The fake server's `progress` sends two notifications/progress, then its answer.
    stream = c.Do({.body = ProgressCall(6, 2, 0, "tok"), .session = sid});
    std::vector<SseEvent> events = ParseSse(stream.body);
    ASSERT_FALSE(events.empty()) << stream.body;
    resumed = c.Do({.method = "GET",
                    .session = sid,
                    .extra = {{"Accept", "text/event-stream"}, {"Last-Event-ID", events[0].id}}});
  });
  EXPECT_EQ(stream.status, 200);
  EXPECT_EQ(stream.Header("content-type"), "text/event-stream");
  std::vector<SseEvent> events = ParseSse(stream.body);
  ASSERT_EQ(events.size(), 3u) << stream.body;
  EXPECT_EQ(events[0].data,
            R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok",)"
            R"("progress":1}})");
  EXPECT_EQ(events[1].data,
            R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok",)"
            R"("progress":2}})");
  EXPECT_EQ(events[2].data, R"({"jsonrpc":"2.0","id":6,"result":{"done":true}})");
  uint64_t first = 0;
  ASSERT_TRUE(absl::SimpleAtoi(events[0].id, &first)) << "event id: " << events[0].id;
  EXPECT_EQ(events[1].id, std::to_string(first + 1));
  EXPECT_EQ(events[2].id, std::to_string(first + 2));

  EXPECT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(resumed.Header("content-type"), "text/event-stream");
  std::vector<SseEvent> replay = ParseSse(resumed.body);
  ASSERT_EQ(replay.size(), 2u) << resumed.body;
  EXPECT_EQ(replay[0].id, events[1].id);
  EXPECT_EQ(replay[0].data, events[1].data);
  EXPECT_EQ(replay[1].id, events[2].id);
  EXPECT_EQ(replay[1].data, events[2].data);
}

// notifications/progress names its request by `params.progressToken`: with two requests open
// in one session, each request's progress goes on its own stream, not the latest one's.
TEST_F(GatewayTest, SendsProgressOnTheStreamOfTheRequestThatAskedForIt) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply with_progress, later;
  RunWithClient([&](uint16_t port) {
    Client a(port);
    Client b(port);
    ASSERT_TRUE(a.connected());
    ASSERT_TRUE(b.connected());
    std::string sid = OpenSession(a);
    // The worker takes 300 ms before its first progress: request 9 is in flight by then (it
    // waits behind request 8 in the single-threaded fake server).
    ASSERT_TRUE(a.Send({.body = ProgressCall(8, 2, 300, "t8"), .session = sid}));
    later = b.Do({.body = ToolCall(9, "echo", R"({"text":"nine"})"), .session = sid});
    with_progress = a.Read();
  });
  EXPECT_EQ(later.status, 200);
  EXPECT_EQ(later.Header("content-type"), "application/json") << later.body;
  EXPECT_EQ(later.body, R"({"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text",)"
                        R"("text":"nine"}]}})");
  EXPECT_EQ(with_progress.status, 200);
  EXPECT_EQ(with_progress.Header("content-type"), "text/event-stream") << with_progress.body;
  std::vector<SseEvent> events = ParseSse(with_progress.body);
  ASSERT_EQ(events.size(), 3u) << with_progress.body;
  EXPECT_THAT(events[0].data, HasSubstr(R"("progressToken":"t8","progress":1)"));
  EXPECT_THAT(events[1].data, HasSubstr(R"("progressToken":"t8","progress":2)"));
  EXPECT_EQ(events[2].data, R"({"jsonrpc":"2.0","id":8,"result":{"done":true}})");
}

TEST_F(GatewayTest, AnswersMinus32001WhenTheWorkerOutlivesRequestTimeoutAndTheSessionGoesOn) {
  h_.config.request_timeout = 300ms;
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply hung, after;
  Duration waited{};
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    std::string sid = OpenSession(c);
    auto start = std::chrono::steady_clock::now();
    hung = c.Do({.body = R"({"jsonrpc":"2.0","id":5,"method":"hang"})", .session = sid});
    waited = std::chrono::steady_clock::now() - start;
    after = c.Do({.body = ToolCall(6, "echo", R"({"text":"still here"})"), .session = sid});
  });
  EXPECT_EQ(hung.status, 200);
  EXPECT_EQ(hung.body,
            R"({"jsonrpc":"2.0","id":5,"error":{"code":-32001,"message":"the server did not )"
            R"(answer within 300 ms (requestTimeoutMs); mcpmw cancelled the request",)"
            R"("data":{"reason":"request-timeout","timeoutMs":300}}})");
  EXPECT_GE(waited, 290ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(after.body, R"({"jsonrpc":"2.0","id":6,"result":{"content":[{"type":"text",)"
                        R"("text":"still here"}]}})");
}

TEST_F(GatewayTest, ProgressNotificationsRestartTheRequestTimeout) {
  h_.config.request_timeout = 300ms;
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply reply;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    std::string sid = OpenSession(c);
    // 4 × 150 ms: longer than the timeout in all, never 300 ms without a word.
    reply = c.Do({.body = ProgressCall(3, 4, 150, "p3"), .session = sid});
  });
  EXPECT_EQ(reply.status, 200);
  std::vector<SseEvent> events = ParseSse(reply.body);
  ASSERT_EQ(events.size(), 5u) << reply.body;
  EXPECT_EQ(events[4].data, R"({"jsonrpc":"2.0","id":3,"result":{"done":true}})");
}

TEST_F(GatewayTest, ProgressDoesNotKeepARequestPastTenTimesTheRequestTimeout) {
  h_.config.request_timeout = 200ms;
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply reply;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    std::string sid = OpenSession(c);
    // Progress every 40 ms for 3.2 s: never 200 ms silent, but past the 2 s hard maximum.
    reply = c.Do({.body = ProgressCall(3, 80, 40, "p3"), .session = sid});
  });
  EXPECT_EQ(reply.status, 200);
  std::vector<SseEvent> events = ParseSse(reply.body);
  ASSERT_GT(events.size(), 10u) << reply.body;  // it was progressing until the cap
  EXPECT_EQ(events.back().data,
            R"({"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"the server did not )"
            R"(answer within 2000 ms (10× requestTimeoutMs: progress notifications extend a )"
            R"(request that far at most); mcpmw cancelled the request",)"
            R"("data":{"reason":"request-timeout","timeoutMs":2000}}})");
}

TEST_F(GatewayTest, AggregatedToolsListFollowsEveryPageThroughTheToolFilter) {
  worker_env_ = {{"FAKE_TOOL_PAGES", "3"}};
  ASSERT_NO_FATAL_FAILURE(Start(R"({"bundleVersion":"v1","toolCatalog":[
    {"toolName":"page3_tool","visibility":"private"}]})"));
  Reply list;
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    std::string sid = OpenSession(c, "Bearer good", "/mcp");
    list = c.Do({.path = "/mcp",
                 .body = R"({"jsonrpc":"2.0","id":4,"method":"tools/list"})",
                 .session = sid});
  });
  EXPECT_EQ(list.status, 200) << list.body;
  // Pages 1 and 2 merged; page 3's only tool is private; no cursor is handed on.
  EXPECT_EQ(list.body, R"({"jsonrpc":"2.0","id":4,"result":{"tools":[)"
                       R"({"name":"fake__echo","inputSchema":{"type":"object"}},)"
                       R"({"name":"fake__slow","inputSchema":{"type":"object"}},)"
                       R"({"name":"fake__page2_tool","inputSchema":{"type":"object"}}]}})");
}

TEST_F(GatewayTest, AggregatedToolsListLeavesOutAServerThatOutlivesRequestTimeout) {
  worker_env_ = {{"FAKE_HANG_TOOLS_LIST", "1"}};
  h_.config.request_timeout = 300ms;
  ASSERT_NO_FATAL_FAILURE(Start());
  Reply list;
  Duration waited{};
  RunWithClient([&](uint16_t port) {
    Client c(port);
    ASSERT_TRUE(c.connected());
    std::string sid = OpenSession(c, "Bearer good", "/mcp");
    auto start = std::chrono::steady_clock::now();
    list = c.Do({.path = "/mcp",
                 .body = R"({"jsonrpc":"2.0","id":4,"method":"tools/list"})",
                 .session = sid});
    waited = std::chrono::steady_clock::now() - start;
  });
  EXPECT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.body, R"({"jsonrpc":"2.0","id":4,"result":{"tools":[]}})");
  EXPECT_GE(waited, 290ms);
  EXPECT_LT(waited, 5s);
}

TEST_F(GatewayTest, DrainWaitsForTheCallInFlightAndRefusesNewSessionsMeanwhile) {
  ASSERT_NO_FATAL_FAILURE(Start());
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd started_read(fds[0]);
  UniqueFd started_write(fds[1]);
  h_.drain_on_slow = true;
  h_.drain_started_fd = started_write.Get();
  Reply slow, refused;
  bool drain_seen = false;
  RunWithClient([&](uint16_t port) {
    Client a(port);
    ASSERT_TRUE(a.connected());
    std::string sid = OpenSession(a);
    ASSERT_TRUE(a.Send({.body = ToolCall(7, "slow", R"({"ms":300})"), .session = sid}));
    pollfd pfd{started_read.Get(), POLLIN, 0};
    drain_seen = ::poll(&pfd, 1, 10000) == 1;
    ASSERT_TRUE(drain_seen) << "the drain did not start";
    Client b(port);
    ASSERT_TRUE(b.connected());
    refused = b.Do({.body = std::string(kInitialize)});
    slow = a.Read();
  });
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.Header("retry-after"), "1");
  EXPECT_EQ(slow.status, 200) << slow.body;
  EXPECT_EQ(
      slow.body,
      R"({"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"slept 300"}]}})");
  // The drain completed only after the call in flight was answered.
  EXPECT_THAT(h_.log, ElementsAre("slow answered 200", "drain done"));
}

}  // namespace
}  // namespace mcpmw::http
