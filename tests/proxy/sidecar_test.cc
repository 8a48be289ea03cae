#include "src/proxy/sidecar.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/profile.h"
#include "pool/sandbox/host.h"
#include "pool/sandbox/sandbox.h"
#include "src/common/fd.h"
#include "src/common/strings.h"
#include "src/io/ring.h"
#include "src/proxy/governance.h"

extern char** environ;

namespace mcpmw::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The client side of a sidecar under test: it owns the pipes that stand in for the sidecar's
// stdin and stdout, and reads answers line by line with a deadline.
class FakeClient {
 public:
  FakeClient() {
    int in[2];
    int out[2];
    EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    sidecar_in_.Reset(in[0]);
    to_sidecar_.Reset(in[1]);
    from_sidecar_.Reset(out[0]);
    sidecar_out_.Reset(out[1]);
  }

  void Send(const std::string& bytes) {
    ASSERT_EQ(::write(to_sidecar_.Get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  void CloseStdin() { to_sidecar_.Reset(); }

  // The next line the sidecar wrote, or "" after 10 s / EOF.
  std::string ReadLine() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      if (size_t nl = buffered_.find('\n'); nl != std::string::npos) {
        std::string line = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        return line;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return "";
      }
      pollfd p{from_sidecar_.Get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) {
        continue;
      }
      char buf[4096];
      ssize_t n = ::read(from_sidecar_.Get(), buf, sizeof(buf));
      if (n <= 0) {
        return "";
      }
      buffered_.append(buf, static_cast<size_t>(n));
    }
  }

  SidecarOptions Options() {
    SidecarOptions o;
    absl::StatusOr<pool::Profile> server =
        pool::ProfileFromCommandLine({MCPMW_FAKE_SERVER}, environ, /*warm=*/false);
    EXPECT_TRUE(server.ok()) << server.status();
    o.server = *std::move(server);
    o.client_in = sidecar_in_.Get();
    o.client_out = sidecar_out_.Get();
    o.restart_backoff = std::chrono::milliseconds(100);
    o.kill_timeout = std::chrono::milliseconds(200);
    return o;
  }

 private:
  UniqueFd sidecar_in_, to_sidecar_, from_sidecar_, sidecar_out_;
  std::string buffered_;
};

constexpr char kInitialize[] =
    R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})"
    "\n";
constexpr char kInitialized[] = R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
                                "\n";

// Runs the sidecar on this thread's ring while `client` runs on another thread.
template <typename ClientFn>
int RunSession(FakeClient& fake, SidecarOptions options, ClientFn client) {
  auto ring = io::Ring::Create(64);
  if (!ring.ok()) {
    ADD_FAILURE() << "io_uring unavailable: " << ring.status();
    return -1;
  }
  Sidecar sidecar(**ring, std::move(options));
  std::thread t([&] { client(fake); });
  int code = (*ring)->RunUntilDone(sidecar.Run());
  t.join();
  return code;
}

class SidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!io::Ring::Create(8).ok()) {
      GTEST_SKIP() << "io_uring is not available on this kernel";
    }
    ::signal(SIGPIPE, SIG_IGN);
  }
  FakeClient fake_;
};

TEST_F(SidecarTest, RelaysRequestsAndResponsesBothWays) {
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    c.Send(kInitialize);
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo":{"name":"fake")"));
    c.Send(kInitialized);
    c.Send(R"({"jsonrpc":"2.0","id":"a","method":"echo","params":{"text":"hi"}})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":"a","result":{"text":"hi"}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, AnswersMalformedLinesAndKeepsTheSession) {
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    c.Send("this is not json\n");
    EXPECT_THAT(c.ReadLine(), StartsWith(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,)"));
    c.Send(R"({"jsonrpc":"1.0","id":5,"method":"echo"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), StartsWith(R"({"jsonrpc":"2.0","id":5,"error":{"code":-32600,)"));
    c.Send(
        "\r\n\n"
        R"({"jsonrpc":"2.0","id":6,"method":"echo","params":{"text":"ok"}})"
        "\r\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":6,"result":{"text":"ok"}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, RejectsOversizedFrameWithItsIdAndContinues) {
  SidecarOptions options = fake_.Options();
  options.max_message_bytes = 256;
  int code = RunSession(fake_, std::move(options), [](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":41,"method":"echo","params":{"text":")" +
           std::string(2000, 'x') + "\"}}\n");
    EXPECT_THAT(c.ReadLine(), StartsWith(R"({"jsonrpc":"2.0","id":41,"error":{"code":-32003,)"));
    c.Send(R"({"jsonrpc":"2.0","id":42,"method":"echo","params":{"text":"small"}})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":42,"result":{"text":"small"}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, FailsInFlightRequestRestartsServerAndReplaysInitialize) {
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    c.Send(kInitialize);
    ASSERT_THAT(c.ReadLine(), HasSubstr(R"("result")"));
    c.Send(kInitialized);
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"stats"})"
           "\n");
    std::string first = c.ReadLine();
    c.Send(R"({"jsonrpc":"2.0","id":2,"method":"crash"})"
           "\n");
    std::string crashed = c.ReadLine();
    EXPECT_THAT(crashed, StartsWith(R"({"jsonrpc":"2.0","id":2,"error":{"code":-32000,)"));
    EXPECT_THAT(crashed, HasSubstr(R"("reason":"server-exited")"));
    // Sent during the restart backoff: held, then delivered to the new server after the replay.
    c.Send(R"({"jsonrpc":"2.0","id":3,"method":"stats"})"
           "\n");
    std::string second = c.ReadLine();
    EXPECT_THAT(second, HasSubstr(R"("id":3,"result":{"initializations":1,)"));
    EXPECT_NE(first.substr(first.find("\"pid\"")), second.substr(second.find("\"pid\"")));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, GivesUpAfterRestartBudgetWithServersExitCode) {
  SidecarOptions options = fake_.Options();
  options.max_restarts = 1;
  int code = RunSession(fake_, std::move(options), [](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"crash"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("code":-32000)"));
    c.Send(R"({"jsonrpc":"2.0","id":2,"method":"crash"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":2,"error":{"code":-32000)"));
    c.CloseStdin();
  });
  EXPECT_EQ(code, 1);
}

TEST_F(SidecarTest, RelaysServerToClientRequestsAndTheirResponses) {
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":7,"method":"ask"})"
           "\n");
    EXPECT_EQ(c.ReadLine(),
              R"({"jsonrpc":"2.0","id":"srv-1","method":"sampling/createMessage","params":{}})");
    c.Send(R"({"jsonrpc":"2.0","id":"srv-1","result":{"text":"sampled!"}})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":7,"result":{"sampled":{"text":"sampled!"}}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, EscalatesToSigkillWhenServerIgnoresEofAndSigterm) {
  ::setenv("FAKE_IGNORE_TERM", "1", 1);
  auto start = std::chrono::steady_clock::now();
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"stats"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("initializations":0)"));
    c.CloseStdin();
  });
  ::unsetenv("FAKE_IGNORE_TERM");
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(code, kExitOk);
  // Two kill timeouts of 200 ms (stdin close, SIGTERM) and then SIGKILL ended it.
  EXPECT_GE(elapsed, std::chrono::milliseconds(400));
}

TEST_F(SidecarTest, ForwardsContentLengthClientToNdjsonServerAndAnswersInContentLength) {
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    std::string body = R"({"jsonrpc":"2.0","id":9,"method":"echo","params":{"text":"cl"}})";
    c.Send("Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    std::string expected = R"({"jsonrpc":"2.0","id":9,"result":{"text":"cl"}})";
    EXPECT_EQ(c.ReadLine(), "Content-Length: " + std::to_string(expected.size()) + "\r");
    EXPECT_EQ(c.ReadLine(), "\r");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, DoesNotAnswerACancelledRequestWhenTheServerDies) {
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":7,"method":"ask"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("method":"sampling/createMessage")"));
    c.Send(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}})"
           "\n");
    c.Send(R"({"jsonrpc":"2.0","id":8,"method":"crash"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), StartsWith(R"({"jsonrpc":"2.0","id":8,"error":{"code":-32000,)"));
    c.Send(R"({"jsonrpc":"2.0","id":9,"method":"stats"})"
           "\n");
    // The next line answers 9: nothing was sent for the cancelled 7.
    EXPECT_THAT(c.ReadLine(), StartsWith(R"({"jsonrpc":"2.0","id":9,"result":)"));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, RestartsAServerThatClosesItsStdoutButKeepsRunning) {
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"stats"})"
           "\n");
    std::string first = c.ReadLine();
    c.Send(R"({"jsonrpc":"2.0","id":2,"method":"close-stdout"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), StartsWith(R"({"jsonrpc":"2.0","id":2,"error":{"code":-32000,)"));
    c.Send(R"({"jsonrpc":"2.0","id":3,"method":"stats"})"
           "\n");
    std::string second = c.ReadLine();
    EXPECT_THAT(second, StartsWith(R"({"jsonrpc":"2.0","id":3,"result":)"));
    EXPECT_NE(first.substr(first.find("\"pid\"")), second.substr(second.find("\"pid\"")));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

// FAKE_INIT_ONCE for the fake servers this test starts: while the marker file exists, a server
// stays silent on initialize (the first one creates it). Unset and removed when it goes.
class InitOnceMarker {
 public:
  explicit InitOnceMarker(std::string_view name)
      : path_(absl::StrCat(::testing::TempDir(), "/", Sv(name), "-", ::getpid())) {
    ::unlink(path_.c_str());
    ::setenv("FAKE_INIT_ONCE", path_.c_str(), 1);
  }
  InitOnceMarker(const InitOnceMarker&) = delete;
  InitOnceMarker& operator=(const InitOnceMarker&) = delete;
  ~InitOnceMarker() {
    ::unsetenv("FAKE_INIT_ONCE");
    ::unlink(path_.c_str());
  }
  // Makes every server from now on stay silent on initialize.
  bool Create() const {
    return UniqueFd(::open(path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)).Valid();
  }
  // Lets the next server answer initialize again.
  void Remove() const { ::unlink(path_.c_str()); }

 private:
  std::string path_;
};

TEST_F(SidecarTest, KillsARestartedServerThatNeverAnswersTheReplayedInitialize) {
  InitOnceMarker marker("fake-init-once");
  SidecarOptions options = fake_.Options();
  options.max_restarts = 1;
  options.replay_timeout = std::chrono::milliseconds(300);
  int code = RunSession(fake_, std::move(options), [](FakeClient& c) {
    c.Send(kInitialize);
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo")"));
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"crash"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":1,"error":{"code":-32000)"));
    // Held while the silent replacement is being initialised; answered when mcpmw gives up.
    c.Send(R"({"jsonrpc":"2.0","id":2,"method":"stats"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":2,"error":{"code":-3200)"));
    c.CloseStdin();
  });
  EXPECT_EQ(code, 1);  // the replacement died by SIGKILL and the budget was spent
}

TEST_F(SidecarTest, TimesOutAHungRequestCancelsItOnTheServerAndDropsItsLateAnswer) {
  SidecarOptions options = fake_.Options();
  options.request_timeout = std::chrono::milliseconds(300);
  int code = RunSession(fake_, std::move(options), [](FakeClient& c) {
    c.Send(kInitialize);
    ASSERT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo")"));
    c.Send(kInitialized);
    auto sent = std::chrono::steady_clock::now();
    c.Send(R"({"jsonrpc":"2.0","id":"h1","method":"hang"})"
           "\n");
    // The hung request does not hold up the others.
    c.Send(R"({"jsonrpc":"2.0","id":2,"method":"echo","params":{"text":"meanwhile"}})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":2,"result":{"text":"meanwhile"}})");
    std::string timed_out = c.ReadLine();
    auto waited = std::chrono::steady_clock::now() - sent;
    EXPECT_THAT(timed_out, StartsWith(R"({"jsonrpc":"2.0","id":"h1","error":{"code":-32001,)"));
    EXPECT_THAT(timed_out, HasSubstr("The server did not answer `hang` within 300 ms; mcpmw "
                                     "cancelled the request."));
    EXPECT_THAT(timed_out, HasSubstr(R"("timeoutMs":300)"));
    EXPECT_GE(waited, std::chrono::milliseconds(300));
    EXPECT_LT(waited, std::chrono::seconds(5));
    // The fake server answers h1 as soon as it reads the cancellation, before this echo: had
    // mcpmw forwarded that late answer, it would be the next line.
    c.Send(R"({"jsonrpc":"2.0","id":3,"method":"echo","params":{"text":"after"}})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":3,"result":{"text":"after"}})");
    c.Send(R"({"jsonrpc":"2.0","id":4,"method":"cancellations"})"
           "\n");
    EXPECT_EQ(
        c.ReadLine(),
        R"({"jsonrpc":"2.0","id":4,"result":{"cancelled":[{"requestId":"h1","reason":"mcpmw: request timed out after 300 ms"}]}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, CompletesAGovernedExchangeThatTimesOutAsErrored) {
  absl::StatusOr<std::unique_ptr<Governance>> governance =
      Governance::Create(GovernanceOptions{}, SteadyClock::Instance());
  ASSERT_TRUE(governance.ok()) << governance.status();
  SidecarOptions options = fake_.Options();
  options.request_timeout = std::chrono::milliseconds(200);
  options.governance = governance->get();
  int code = RunSession(fake_, std::move(options), [](FakeClient& c) {
    c.Send(kInitialize);
    ASSERT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo")"));
    c.Send(R"({"jsonrpc":"2.0","id":5,"method":"hang"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), StartsWith(R"({"jsonrpc":"2.0","id":5,"error":{"code":-32001,)"));
    // Its late answer must not complete the exchange a second time.
    c.Send(R"({"jsonrpc":"2.0","id":6,"method":"cancellations"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":6,"result":{"cancelled":[{"requestId":5,)"));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
  telemetry::Metrics& metrics = (*governance)->metrics();
  // `hang` and `cancellations` are both counted under method="other".
  EXPECT_EQ(metrics.counter("mcpmw_requests_total", {{"method", "other"}, {"outcome", "errored"}})
                .value(),
            1u);
  EXPECT_EQ(
      metrics.counter("mcpmw_requests_total", {{"method", "other"}, {"outcome", "served"}}).value(),
      1u);
}

// Sessions governed by the default bundle (every stage runs, nothing is denied).
class GovernedSidecarTest : public SidecarTest {
 protected:
  void SetUp() override {
    SidecarTest::SetUp();
    if (IsSkipped()) {
      return;
    }
    absl::StatusOr<std::unique_ptr<Governance>> governance =
        Governance::Create(GovernanceOptions{}, SteadyClock::Instance());
    ASSERT_TRUE(governance.ok()) << governance.status();
    governance_ = *std::move(governance);
  }

  // Runs a governed session; `client` starts once initialize has been answered.
  template <typename ClientFn>
  int RunGoverned(ClientFn client) {
    SidecarOptions options = fake_.Options();
    options.governance = governance_.get();
    return RunSession(fake_, std::move(options), [&client](FakeClient& c) {
      c.Send(kInitialize);
      ASSERT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo")"));
      client(c);
    });
  }

  std::unique_ptr<Governance> governance_;
};

TEST_F(GovernedSidecarTest, RefusesAClientBatchMemberByMemberAndDeliversNoneOfIt) {
  int code = RunGoverned([](FakeClient& c) {
    c.Send(R"([{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"x"}},)"
           R"({"jsonrpc":"2.0","method":"notifications/progress","params":{}},)"
           R"({"jsonrpc":"2.0","id":"b","method":"crash"}])"
           "\n");
    const std::string answer = c.ReadLine();
    EXPECT_THAT(answer, StartsWith(R"([{"jsonrpc":"2.0","id":1,"error":{"code":-32600,)"));
    EXPECT_THAT(answer, HasSubstr(R"(},{"jsonrpc":"2.0","id":"b","error":{"code":-32600,)"));
    EXPECT_THAT(answer, HasSubstr(R"("data":{"reason":"batch-not-governed"})"));
    // The server saw none of it: it did not crash, and it has initialised once.
    c.Send(R"({"jsonrpc":"2.0","id":2,"method":"stats"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":2,"result":{"initializations":1,)"));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(GovernedSidecarTest, WithholdsAServerBatchAndAnswersTheRequestItHeldWithAnError) {
  int code = RunGoverned([](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":3,"method":"batch-answer"})"
           "\n");
    const std::string answer = c.ReadLine();
    EXPECT_THAT(answer, StartsWith(R"({"jsonrpc":"2.0","id":3,"error":{"code":-32603,)"));
    EXPECT_THAT(answer, HasSubstr(R"("data":{"reason":"server-batch"})"));
    EXPECT_THAT(answer, Not(HasSubstr("in a batch\"")));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(GovernedSidecarTest, DropsTheServersAnswerToARequestTheClientCancelled) {
  int code = RunGoverned([](FakeClient& c) {
    // The fake server answers a hung request as soon as it reads its cancellation.
    c.Send(R"({"jsonrpc":"2.0","id":7,"method":"hang"})"
           "\n"
           R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}})"
           "\n"
           R"({"jsonrpc":"2.0","id":8,"method":"echo","params":{"text":"after"}})"
           "\n");
    // The late answer to 7 is not forwarded: the chain has no exchange to redact it in.
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":8,"result":{"text":"after"}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(GovernedSidecarTest, MatchesAnAnswerThatSpellsTheClientsStringIdWithoutEscapes) {
  int code = RunGoverned([](FakeClient& c) {
    // The fake server writes ids back minified, as "ab": a JSON reader sees one id.
    c.Send(R"({"jsonrpc":"2.0","id":"a\u0062","method":"echo","params":{"text":"t"}})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":"ab","result":{"text":"t"}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
  EXPECT_EQ(governance_->metrics()
                .counter("mcpmw_requests_total", {{"method", "other"}, {"outcome", "served"}})
                .value(),
            1u);
}

TEST_F(GovernedSidecarTest, RefusesARequestWhoseIdIsStillInFlightAndKeepsTheFirst) {
  int code = RunGoverned([](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":5,"method":"hang"})"
           "\n"
           R"({"jsonrpc":"2.0","id":5,"method":"crash"})"
           "\n");
    const std::string refused = c.ReadLine();
    EXPECT_THAT(refused, StartsWith(R"({"jsonrpc":"2.0","id":5,"error":{"code":-32600,)"));
    EXPECT_THAT(refused, HasSubstr(R"("data":{"reason":"duplicate-id"})"));
    // The duplicate never reached the server (it did not crash, and has initialised once). The
    // first is still tracked: the cancellation ends it, and its late answer is dropped.
    c.Send(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}})"
           "\n"
           R"({"jsonrpc":"2.0","id":6,"method":"stats"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":6,"result":{"initializations":1,)"));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, AnswersTheServerWhenTheClientsAnswerToItsRequestIsInvalid) {
  int code = RunSession(fake_, fake_.Options(), [](FakeClient& c) {
    c.Send(kInitialize);
    ASSERT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo")"));
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"ask"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":"srv-1","method":"sampling/createMessage")"));
    // Both result and error: not a response. The error goes to the server that asked, not to
    // the client (whose own requests may use the same id).
    c.Send(R"({"jsonrpc":"2.0","id":"srv-1","result":{},"error":{"code":1,"message":"x"}})"
           "\n");
    const std::string answer = c.ReadLine();
    EXPECT_THAT(answer,
                StartsWith(R"({"jsonrpc":"2.0","id":1,"result":{"clientError":{"code":-32603,)"));
    EXPECT_THAT(answer, HasSubstr(R"("data":{"reason":"invalid-client-response"})"));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, DoesNotDeliverAHeldRequestThatWasAnsweredWhenItsServerDied) {
  InitOnceMarker marker("fake-init-held");
  SidecarOptions options = fake_.Options();
  options.max_restarts = 3;
  options.replay_timeout = std::chrono::milliseconds(300);
  int code = RunSession(fake_, std::move(options), [&marker](FakeClient& c) {
    c.Send(kInitialize);
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo")"));
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"crash"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":1,"error":{"code":-32000)"));
    // Held for the replacement, which stays silent on the replayed initialize and is killed:
    // the request is answered with an error then.
    c.Send(R"({"jsonrpc":"2.0","id":2,"method":"echo","params":{"text":"once"}})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":2,"error":{"code":-3200)"));
    // The next replacement answers initialize: the answered request must not reach it.
    marker.Remove();
    c.Send(R"({"jsonrpc":"2.0","id":3,"method":"echo","params":{"text":"next"}})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":3,"result":{"text":"next"}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, AnswersAnInitializeThatTimesOutWithoutCancellingIt) {
  InitOnceMarker marker("fake-init-silent");
  ASSERT_TRUE(marker.Create());  // the first server already stays silent on initialize
  SidecarOptions options = fake_.Options();
  options.request_timeout = std::chrono::milliseconds(200);
  int code = RunSession(fake_, std::move(options), [](FakeClient& c) {
    c.Send(kInitialize);
    std::string timed_out = c.ReadLine();
    EXPECT_THAT(timed_out, StartsWith(R"({"jsonrpc":"2.0","id":0,"error":{"code":-32001,)"));
    EXPECT_THAT(timed_out, HasSubstr("initialize cannot be cancelled"));
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"cancellations"})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":1,"result":{"cancelled":[]}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, ProgressFromTheServerRestartsTheRequestsTimeoutClock) {
  SidecarOptions options = fake_.Options();
  options.request_timeout = std::chrono::milliseconds(600);
  int code = RunSession(fake_, std::move(options), [](FakeClient& c) {
    c.Send(kInitialize);
    ASSERT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo")"));
    // 6 × 150 ms: well past the timeout in total, never 600 ms without progress.
    c.Send(
        R"({"jsonrpc":"2.0","id":7,"method":"progress","params":{"count":6,"interval_ms":150,"_meta":{"progressToken":"p7"}}})"
        "\n");
    for (int i = 1; i <= 6; ++i) {
      EXPECT_EQ(
          c.ReadLine(),
          absl::StrCat(
              R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p7","progress":)",
              i, "}}"));
    }
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":7,"result":{"done":true}})");
    c.Send(R"({"jsonrpc":"2.0","id":8,"method":"cancellations"})"
           "\n");
    EXPECT_EQ(c.ReadLine(), R"({"jsonrpc":"2.0","id":8,"result":{"cancelled":[]}})");
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, ProgressDoesNotKeepARequestAlivePastTenTimesItsTimeout) {
  SidecarOptions options = fake_.Options();
  options.request_timeout = std::chrono::milliseconds(200);
  int code = RunSession(fake_, std::move(options), [](FakeClient& c) {
    c.Send(kInitialize);
    ASSERT_THAT(c.ReadLine(), HasSubstr(R"("serverInfo")"));
    // Progress every 50 ms for 3 s: never 200 ms silent, but past the 2 s hard maximum.
    c.Send(
        R"({"jsonrpc":"2.0","id":7,"method":"progress","params":{"count":60,"interval_ms":50,"_meta":{"progressToken":"p7"}}})"
        "\n");
    std::string line;
    int progress = 0;
    while ((line = c.ReadLine()).find(R"("method":"notifications/progress")") !=
           std::string::npos) {
      ++progress;
    }
    EXPECT_THAT(line, StartsWith(R"({"jsonrpc":"2.0","id":7,"error":{"code":-32001,)"));
    EXPECT_THAT(line, HasSubstr("within 2000 ms (progress notifications extend a request to 10× "
                                "--request-timeout-ms at most); mcpmw cancelled the request."));
    EXPECT_THAT(line, HasSubstr(R"("data":{"reason":"request-timeout","timeoutMs":2000})"));
    EXPECT_GT(progress, 10);  // it was progressing, and stopped only at the cap
    EXPECT_LT(progress, 60);
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

// The server's pid, from the fake server's `stats` answer ("…"pid":123}}").
pid_t StatsPid(const std::string& line) {
  size_t at = line.find("\"pid\":");
  return at == std::string::npos ? -1 : std::atoi(line.c_str() + at + 6);
}

std::string ReadProcFile(pid_t pid, const char* name) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/", name), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The last path component of `pid`'s cgroup in the v1 hierarchy of `controller` ("" if none).
std::string CgroupName(pid_t pid, std::string_view controller) {
  for (absl::string_view line : absl::StrSplit(ReadProcFile(pid, "cgroup"), '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() == 3 && parts[1] == Sv(controller)) {
      return std::string(parts[2].substr(parts[2].rfind('/') + 1));
    }
  }
  return "";
}

TEST_F(SidecarTest, StartsTheServerWithItsProfilesEnvironmentWorkingDirectoryAndSandbox) {
  SidecarOptions options = fake_.Options();
  options.server.env_allow = {"PATH"};
  options.server.env_set = {{"MCPMW_SIDECAR_TEST", "set by the profile"}};
  char cwd[PATH_MAX];
  ASSERT_NE(::realpath(::testing::TempDir().c_str(), cwd), nullptr);
  options.server.cwd = cwd;
  options.server.sandbox.rlimit_values.open_files = 64;
  absl::StatusOr<pool::sandbox::SandboxPlan> plan =
      pool::sandbox::Plan(options.server.sandbox, pool::sandbox::ProbeHost());
  ASSERT_TRUE(plan.ok()) << plan.status();
  options.sandbox = &*plan;
  std::string path = absl::StrCat("PATH=", std::getenv("PATH"));
  int code = RunSession(fake_, std::move(options), [&](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"stats"})"
           "\n");
    pid_t pid = StatsPid(c.ReadLine());
    ASSERT_GT(pid, 0);
    std::vector<std::string> env =
        absl::StrSplit(ReadProcFile(pid, "environ"), '\0', absl::SkipEmpty());
    EXPECT_THAT(env, ::testing::ElementsAre(path, "MCPMW_SIDECAR_TEST=set by the profile"));
    char link[PATH_MAX] = {};
    ASSERT_GT(::readlink(absl::StrCat("/proc/", pid, "/cwd").c_str(), link, sizeof(link) - 1), 0);
    EXPECT_STREQ(link, cwd);
    EXPECT_THAT(ReadProcFile(pid, "status"), HasSubstr("NoNewPrivs:\t1"));
    EXPECT_THAT(ReadProcFile(pid, "limits"), ::testing::ContainsRegex("Max open files +64 +64 "));
    EXPECT_THAT(ReadProcFile(pid, "limits"), ::testing::ContainsRegex("Max core file size +0 +0 "));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST_F(SidecarTest, GivesEachServerStartItsOwnCgroupAndRemovesItWhenThatServerIsReaped) {
  pool::sandbox::HostCapabilities host = pool::sandbox::ProbeHost();
  if (!host.cgroup.pids.available ||
      host.cgroup.pids.version != pool::sandbox::CgroupVersion::kV1) {
    GTEST_SKIP() << "needs a writable cgroup v1 pids controller: "
                 << (host.cgroup.pids.available ? "this host has v2" : host.cgroup.pids.reason);
  }
  SidecarOptions options = fake_.Options();
  options.server.sandbox.cgroup = pool::sandbox::Requirement::kRequired;
  options.server.sandbox.cgroup_limits.pids_max = 48;
  absl::StatusOr<pool::sandbox::SandboxPlan> plan =
      pool::sandbox::Plan(options.server.sandbox, host);
  ASSERT_TRUE(plan.ok()) << plan.status();
  options.sandbox = &*plan;
  const std::string parent = host.cgroup.pids.parent_dir;
  int code = RunSession(fake_, std::move(options), [&](FakeClient& c) {
    c.Send(R"({"jsonrpc":"2.0","id":1,"method":"stats"})"
           "\n");
    pid_t first = StatsPid(c.ReadLine());
    std::string first_cgroup = CgroupName(first, "pids");
    EXPECT_THAT(first_cgroup, StartsWith(absl::StrCat("mcpmw-", ::getpid(), "-stdio-1-")));
    std::ifstream max(absl::StrCat(parent, "/", first_cgroup, "/pids.max"));
    std::string limit;
    max >> limit;
    EXPECT_EQ(limit, "48");
    c.Send(R"({"jsonrpc":"2.0","id":2,"method":"crash"})"
           "\n");
    EXPECT_THAT(c.ReadLine(), HasSubstr(R"("id":2,"error":{"code":-32000)"));
    // The crashed server was reaped, and its cgroup torn down, before its request was failed.
    EXPECT_NE(::access(absl::StrCat(parent, "/", first_cgroup).c_str(), F_OK), 0);
    c.Send(R"({"jsonrpc":"2.0","id":3,"method":"stats"})"
           "\n");
    pid_t second = StatsPid(c.ReadLine());
    ASSERT_GT(second, 0);
    EXPECT_NE(second, first);
    EXPECT_THAT(CgroupName(second, "pids"),
                StartsWith(absl::StrCat("mcpmw-", ::getpid(), "-stdio-2-")));
    c.CloseStdin();
  });
  EXPECT_EQ(code, kExitOk);
}

TEST(SniffId, FindsTopLevelIdBeforeParams) {
  EXPECT_EQ(SniffId(R"({"jsonrpc":"2.0","id":17,"method":"x","params":{"a":")"), "17");
  EXPECT_EQ(SniffId(R"({"id": "abc" ,"params":)"), R"("abc")");
}

TEST(SniffId, IgnoresIdsInsideParamsAndIncompleteTokens) {
  EXPECT_EQ(SniffId(R"({"jsonrpc":"2.0","params":{"id":5},"id":6})"), "");
  EXPECT_EQ(SniffId(R"({"method":"x","params":{"id":5}})"), "");
  EXPECT_EQ(SniffId(R"({"id":12)"), "");  // the number may continue past the prefix
  EXPECT_EQ(SniffId(R"({"note":"id","id":3,)"), "3");
}

}  // namespace
}  // namespace mcpmw::proxy
