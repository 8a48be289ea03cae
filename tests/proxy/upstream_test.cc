// Upstream and LeaseBroker on a real io_uring Ring with a real PoolManager whose workers are the
// fake MCP server (tests/proxy/fake_server.cc) as child processes. Every wait on the ring ends on
// the event it waits for (a peer callback, a lease) and is bounded by kWait; a watchdog ends the
// process if a test hangs anyway. Where the kernel offers no io_uring, each test is skipped with
// the reason.
#include "src/proxy/upstream.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/pool_manager.h"
#include "pool/sandbox/host.h"
#include "src/io/ring.h"
#include "src/io/task.h"
#include "tests/pool/probed_host.h"

namespace mcpmw::proxy {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Upper bound for anything a test waits on; each wait returns as soon as its event happens.
constexpr Duration kWait = 10s;

// Ends the process when a test runs past `limit` (a hung ring would otherwise hang the suite).
class Watchdog {
 public:
  explicit Watchdog(Duration limit)
      : thread_([this, limit] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "upstream_test: the test did not finish in time\n");
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Wakes one coroutine on the ring when Notify() is called (from ring code), or after a timeout.
class Signal {
 public:
  explicit Signal(io::Ring& ring) : ring_(ring) {}

  void Notify() {
    notified_ = true;
    if (sleep_ != nullptr) {
      ring_.Cancel(sleep_);
    }
  }

  // Completes with true once `done()` holds, or with false after `timeout`.
  template <typename Pred>
  io::Task<bool> Until(Pred done, Duration timeout) {
    TimePoint deadline = ring_.clock().Now() + timeout;
    while (!done()) {
      TimePoint now = ring_.clock().Now();
      if (now >= deadline) {
        co_return false;
      }
      notified_ = false;
      io::SleepOp sleep(ring_, deadline - now);
      sleep_ = &sleep;
      co_await sleep;
      sleep_ = nullptr;
    }
    co_return true;
  }

 private:
  io::Ring& ring_;
  io::SleepOp* sleep_ = nullptr;
  bool notified_ = false;
};

// A gateway session stand-in: records what it hears, in order, in a log shared by all peers.
class RecordingPeer final : public UpstreamPeer {
 public:
  RecordingPeer(std::string name, std::vector<std::string>& log, Signal& signal)
      : name_(std::move(name)), log_(log), signal_(signal) {}

  void OnUpstreamMessage(std::string_view line) override {
    messages.emplace_back(line);
    log_.push_back(name_ + " message");
    signal_.Notify();
  }
  void OnUpstreamGone(std::string_view how) override {
    gone.emplace_back(how);
    log_.push_back(name_ + " gone");
    signal_.Notify();
  }

  std::vector<std::string> messages;
  std::vector<std::string> gone;

 private:
  std::string name_;
  std::vector<std::string>& log_;
  Signal& signal_;
};

class UpstreamTest : public testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);  // as mcpmw itself runs
    absl::StatusOr<std::unique_ptr<io::Ring>> ring = io::Ring::Create(256);
    if (!ring.ok()) {
      GTEST_SKIP() << "no io_uring here: " << ring.status().message();
    }
    ring_ = *std::move(ring);
  }

  void TearDown() override {
    if (pools_ != nullptr) {
      pools_->Shutdown();
    }
  }

  // One exclusive profile "fake" of at most `max_workers` fake servers; waiting leases give up
  // after `wait_timeout`.
  void StartPool(uint32_t max_workers, std::chrono::milliseconds wait_timeout = 5000ms) {
    pool::Profile p;
    p.name = "fake";
    p.argv = {MCPMW_FAKE_SERVER};
    p.max_workers = max_workers;
    p.queue.wait_timeout = wait_timeout;
    p.sandbox = {};
    pool::PoolOptions options;
    options.host = pool::testing_support::ProbedHost();
    options.kill_timeout = 2000ms;
    absl::StatusOr<std::unique_ptr<pool::PoolManager>> pools =
        pool::PoolManager::Start({p}, std::move(options));
    ASSERT_TRUE(pools.ok()) << pools.status();
    pools_ = *std::move(pools);
  }

  pool::WorkerLease LeaseOrFail() {
    absl::StatusOr<pool::WorkerLease> lease = pools_->Lease("fake");
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() ? *std::move(lease) : pool::WorkerLease{};
  }

  std::unique_ptr<io::Ring> ring_;
  std::unique_ptr<pool::PoolManager> pools_;
};

constexpr size_t kMaxMessage = 1 << 20;

// Runs `up` and wakes the test's waits when Run() returns.
io::Task<void> RunThenNotify(Upstream& up, Signal& signal) {
  co_await up.Run();
  signal.Notify();
}

// ---- Upstream ---------------------------------------------------------------------------------

struct RelayResult {
  bool answered = false;
  bool run_still_going = false;
};

io::Task<RelayResult> RelayTwoEchoes(io::Ring& ring, Upstream& up, Signal& signal, RecordingPeer& a,
                                     RecordingPeer& b) {
  io::TaskGroup group;
  group.Spawn(RunThenNotify(up, signal));
  SessionId sa = up.Open(&a);
  SessionId sb = up.Open(&b);
  up.Send(sa, R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"for-a"}})");
  up.Send(sb, R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"for-b"}})");
  RelayResult out;
  auto both_answered = [&] { return a.messages.size() + b.messages.size() >= 2; };
  bool answered = co_await signal.Until(both_answered, kWait);
  out.answered = answered;
  out.run_still_going = group.Running() == 1;
  co_await up.Stop();
  co_await group.Join();
  co_return out;
}

TEST_F(UpstreamTest, RelaysEachPeersRequestAndAnswersOnlyThatPeerWithItsOwnId) {
  Watchdog dog(60s);
  ASSERT_NO_FATAL_FAILURE(StartPool(1));
  pool::WorkerLease lease = LeaseOrFail();
  ASSERT_NE(lease.id, 0u);
  std::vector<std::string> log;
  Signal signal(*ring_);
  RecordingPeer a("a", log, signal);
  RecordingPeer b("b", log, signal);
  {
    Upstream up(*ring_, lease, SessionMuxOptions{}, kMaxMessage);
    RelayResult r = ring_->RunUntilDone(RelayTwoEchoes(*ring_, up, signal, a, b));
    EXPECT_TRUE(r.answered) << "no answers within the wait";
    EXPECT_TRUE(r.run_still_going) << "Run() ended while the worker was alive";
    EXPECT_EQ(up.requests(), 2u);
    EXPECT_EQ(up.lease().pid, lease.pid);
  }
  pools_->Release(lease, 2);
  // Both clients used id 1; the worker saw two distinct ids, and each answer went back to its
  // own session with `1` restored.
  EXPECT_THAT(a.messages, ElementsAre(R"({"jsonrpc":"2.0","id":1,"result":{"text":"for-a"}})"));
  EXPECT_THAT(b.messages, ElementsAre(R"({"jsonrpc":"2.0","id":1,"result":{"text":"for-b"}})"));
  EXPECT_THAT(a.gone, IsEmpty());
  EXPECT_THAT(b.gone, IsEmpty());
}

struct ExitResult {
  bool echo_answered = false;
  bool gone_heard = false;
  bool run_returned = false;
  bool alive_after = true;
  size_t sessions_after = 99;
};

io::Task<ExitResult> KillTheWorkerMidRequest(io::Ring& ring, Upstream& up, Signal& signal,
                                             RecordingPeer& a, RecordingPeer& b, pid_t pid) {
  io::TaskGroup group;
  group.Spawn(RunThenNotify(up, signal));
  SessionId sa = up.Open(&a);
  SessionId sb = up.Open(&b);
  // The worker reads in order: once b's echo is answered, a's `hang` is in its hands.
  up.Send(sa, R"({"jsonrpc":"2.0","id":7,"method":"hang"})");
  up.Send(sb, R"({"jsonrpc":"2.0","id":"e","method":"echo","params":{"text":"x"}})");
  ExitResult out;
  auto echo_answered = [&] { return !b.messages.empty(); };
  bool echoed = co_await signal.Until(echo_answered, kWait);
  out.echo_answered = echoed;
  ::kill(pid, SIGKILL);
  auto both_gone = [&] { return !a.gone.empty() && !b.gone.empty(); };
  bool gone = co_await signal.Until(both_gone, kWait);
  out.gone_heard = gone;
  // Run() returns by itself once the worker's stdout ended.
  auto run_done = [&] { return group.Running() == 0; };
  bool returned = co_await signal.Until(run_done, kWait);
  out.run_returned = returned;
  if (!out.run_returned) {
    co_await up.Stop();
  }
  co_await group.Join();
  out.alive_after = up.alive();
  out.sessions_after = up.sessions();
  co_return out;
}

TEST_F(UpstreamTest, AWorkerThatDiesFailsTheRequestInFlightThenTellsEveryPeerOnce) {
  Watchdog dog(60s);
  ASSERT_NO_FATAL_FAILURE(StartPool(1));
  pool::WorkerLease lease = LeaseOrFail();
  ASSERT_GT(lease.pid, 0);
  std::vector<std::string> log;
  Signal signal(*ring_);
  RecordingPeer a("a", log, signal);
  RecordingPeer b("b", log, signal);
  ExitResult r;
  {
    Upstream up(*ring_, lease, SessionMuxOptions{}, kMaxMessage);
    r = ring_->RunUntilDone(KillTheWorkerMidRequest(*ring_, up, signal, a, b, lease.pid));
  }
  pools_->Release(lease, 2);
  ASSERT_TRUE(r.echo_answered);
  EXPECT_TRUE(r.gone_heard);
  EXPECT_TRUE(r.run_returned) << "Run() kept reading a dead worker";
  EXPECT_FALSE(r.alive_after);
  EXPECT_EQ(r.sessions_after, 0u);
  // a's hang was in flight: it hears the -32000 error with its own id, then that the worker is
  // gone; b had nothing in flight and only hears that the worker is gone. Each peer once.
  ASSERT_EQ(a.messages.size(), 1u);
  EXPECT_THAT(a.messages[0], StartsWith(R"({"jsonrpc":"2.0","id":7,"error":{"code":-32000,)"));
  EXPECT_THAT(a.messages[0], HasSubstr(R"("reason":"server-exited","retryable":true)"));
  EXPECT_THAT(b.messages, ElementsAre(R"({"jsonrpc":"2.0","id":"e","result":{"text":"x"}})"));
  EXPECT_THAT(log, testing::UnorderedElementsAre("a message", "b message", "a gone", "b gone"));
  auto pos = [&log](std::string_view entry) {
    return std::find(log.begin(), log.end(), entry) - log.begin();
  };
  EXPECT_LT(pos("a message"), pos("a gone")) << "the error must come before OnUpstreamGone";
  ASSERT_EQ(a.gone.size(), 1u);
  EXPECT_EQ(a.gone[0], "the MCP server " + lease.worker_id + " exited");
  EXPECT_EQ(b.gone, a.gone);
}

struct StopResult {
  bool stop_returned = false;
  bool run_returned = false;
  bool alive_after = true;
  bool heard_after_stop = false;
  bool worker_stopped = false;
};

io::Task<StopResult> StopWhileReading(io::Ring& ring, Upstream& up, Signal& signal,
                                      RecordingPeer& a, pool::PoolManager& pools) {
  io::TaskGroup group;
  group.Spawn(RunThenNotify(up, signal));
  SessionId sa = up.Open(&a);
  up.Send(sa, R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"before"}})");
  up.Send(sa, R"({"jsonrpc":"2.0","id":2,"method":"hang"})");
  StopResult out;
  auto first_answered = [&] { return a.messages.size() == 1; };
  bool first = co_await signal.Until(first_answered, kWait);
  if (!first) {
    co_await up.Stop();
    co_await group.Join();
    co_return out;
  }
  // Run() is parked in a read of the worker's stdout, with request 2 in flight.
  co_await up.Stop();
  out.stop_returned = true;
  out.alive_after = up.alive();
  // Stop() resumes us from Run()'s last step, so Run() finishes as soon as we suspend.
  co_await group.Join();
  out.run_returned = true;
  // The worker goes away now; nobody reads it any more, so the peer must hear nothing (no error
  // for request 2, no OnUpstreamGone).
  pools.Release(up.lease(), 2);
  bool stopped = pools.WaitForStats(
      "fake", [](const pool::ProfileStats& st) { return st.leased == 0 && st.draining == 0; },
      kWait);
  // Whatever the ring still had to deliver for this worker would complete now.
  io::SleepOp settle(ring, 50ms);
  co_await settle;
  out.worker_stopped = stopped;
  out.heard_after_stop = a.messages.size() != 1 || !a.gone.empty();
  co_return out;
}

TEST_F(UpstreamTest, StopWhileReadingReturnsAndThePeerHearsNothingMore) {
  Watchdog dog(60s);
  ASSERT_NO_FATAL_FAILURE(StartPool(1));
  pool::WorkerLease lease = LeaseOrFail();
  ASSERT_NE(lease.id, 0u);
  std::vector<std::string> log;
  Signal signal(*ring_);
  RecordingPeer a("a", log, signal);
  StopResult r;
  {
    Upstream up(*ring_, lease, SessionMuxOptions{}, kMaxMessage);
    r = ring_->RunUntilDone(StopWhileReading(*ring_, up, signal, a, *pools_));
    EXPECT_EQ(up.sessions(), 0u);
  }
  ASSERT_TRUE(r.stop_returned);
  EXPECT_TRUE(r.run_returned);
  EXPECT_FALSE(r.alive_after);
  EXPECT_TRUE(r.worker_stopped);
  EXPECT_FALSE(r.heard_after_stop);
  EXPECT_THAT(a.messages, ElementsAre(R"({"jsonrpc":"2.0","id":1,"result":{"text":"before"}})"));
  EXPECT_THAT(a.gone, IsEmpty());
}

// ---- LeaseBroker ------------------------------------------------------------------------------

struct BrokerResult {
  absl::StatusOr<pool::WorkerLease> lease = absl::UnknownError("not leased");
  absl::StatusOr<pool::WorkerLease> unknown = absl::UnknownError("not leased");
  int ticks_before_release = -1;
  int ticks_when_leased = -1;
};

// Ticks every 5 ms; after `release_after` ticks gives `held` back, which lets the queued lease
// through. If the broker blocked the ring, no tick would happen and the lease would time out.
io::Task<void> Ticker(io::Ring& ring, pool::PoolManager& pools, const pool::WorkerLease& held,
                      int release_after, int& ticks, const bool& leased, BrokerResult& out) {
  while (!leased && ticks < 2000) {
    io::SleepOp tick(ring, 5ms);
    co_await tick;
    ++ticks;
    if (ticks == release_after) {
      out.ticks_before_release = ticks;
      pools.Release(held, 0);
    }
  }
}

io::Task<BrokerResult> LeaseWhileTicking(io::Ring& ring, pool::PoolManager& pools,
                                         const pool::WorkerLease& held) {
  BrokerResult out;
  LeaseBroker broker(ring, pools);
  io::TaskGroup group;
  group.Spawn(broker.Run());
  int ticks = 0;
  bool leased = false;
  group.Spawn(Ticker(ring, pools, held, 3, ticks, leased, out));
  absl::StatusOr<pool::WorkerLease> lease = co_await broker.Lease("fake");
  leased = true;
  out.lease = std::move(lease);
  out.ticks_when_leased = ticks;
  absl::StatusOr<pool::WorkerLease> unknown = co_await broker.Lease("no-such-profile");
  out.unknown = std::move(unknown);
  broker.Stop();
  co_await group.Join();
  co_return out;
}

TEST_F(UpstreamTest, LeaseBrokerWaitsForAQueuedLeaseWithoutBlockingTheRing) {
  Watchdog dog(60s);
  // One worker, already taken: the broker's lease must queue until the ticker releases it.
  ASSERT_NO_FATAL_FAILURE(StartPool(1, 8000ms));
  pool::WorkerLease held = LeaseOrFail();
  ASSERT_NE(held.id, 0u);
  BrokerResult r = ring_->RunUntilDone(LeaseWhileTicking(*ring_, *pools_, held));
  ASSERT_TRUE(r.lease.ok()) << r.lease.status();
  EXPECT_EQ(r.lease->profile, "fake");
  EXPECT_GT(r.lease->pid, 0);
  EXPECT_NE(r.lease->pid, held.pid) << "an exclusive worker is never handed out twice";
  EXPECT_EQ(r.ticks_before_release, 3) << "the ring did not run while the lease waited";
  EXPECT_GE(r.ticks_when_leased, 3);
  EXPECT_EQ(r.unknown.status().code(), absl::StatusCode::kNotFound) << r.unknown.status();
  EXPECT_THAT(r.unknown.status().message(), HasSubstr("no-such-profile"));
  pools_->Release(*r.lease, 0);
}

}  // namespace
}  // namespace mcpmw::proxy
