#include "pool/pool_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/sandbox/host.h"
#include "simdjson.h"
#include "src/common/fd.h"
#include "tests/common/temp_dir.h"
#include "tests/pool/probed_host.h"

namespace mcpmw::pool {
namespace {

using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

// Upper bound for anything the tests wait on; each wait returns as soon as its event happens.
constexpr milliseconds kWait{10000};

// The pids of this process's children, with their state letter from /proc/<pid>/stat.
std::vector<std::pair<pid_t, char>> Children() {
  std::vector<std::pair<pid_t, char>> out;
  const pid_t self = ::getpid();
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    // read(2), not a stream: a process that exits while its stat file is open makes the read
    // fail with ESRCH, which libstdc++'s filebuf turns into an exception.
    std::string stat(512, '\0');
    UniqueFd fd(::open((entry.path() / "stat").c_str(), O_RDONLY | O_CLOEXEC));
    ssize_t n = fd.Valid() ? ::read(fd.Get(), stat.data(), stat.size()) : -1;
    stat.resize(n > 0 ? static_cast<size_t>(n) : 0);
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) {
      continue;
    }
    std::istringstream rest(stat.substr(paren + 2));
    char state = '?';
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == self) {
      out.emplace_back(std::stoi(name), state);
    }
  }
  return out;
}

std::vector<pid_t> Zombies() {
  std::vector<pid_t> out;
  for (auto [pid, state] : Children()) {
    if (state == 'Z') {
      out.push_back(pid);
    }
  }
  return out;
}

bool Gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

std::vector<pid_t> ReadPids(const std::string& path) {
  std::vector<pid_t> out;
  std::ifstream in(path);
  pid_t pid;
  while (in >> pid) {
    out.push_back(pid);
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteLine(int fd, std::string line) {
  line.push_back('\n');
  ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
}

// One line from `fd`, or "" after kWait.
std::string ReadLine(int fd) {
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    int left = static_cast<int>(
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now())
            .count());
    if (::poll(&pfd, 1, std::max(left, 1)) <= 0) {
      continue;
    }
    char c;
    if (::read(fd, &c, 1) != 1) {
      break;
    }
    if (c == '\n') {
      return line;
    }
    line.push_back(c);
  }
  return "";
}

class PoolManagerTest : public testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);  // as mcpmw itself runs
    dir_ = mcpmw::testing_support::MakeTempDir("mcpmw-pool-test");
    ASSERT_TRUE(std::filesystem::is_directory(dir_)) << dir_;
    starts_ = dir_ + "/starts";
    log_ = dir_ + "/log";
    ASSERT_THAT(Children(), testing::IsEmpty()) << "a previous test leaked a child";
  }

  void TearDown() override {
    if (pool_ != nullptr) {
      pool_->Shutdown();
      pool_.reset();
    }
    EXPECT_THAT(Children(), testing::IsEmpty()) << "children left after Shutdown";
    std::filesystem::remove_all(dir_);
  }

  // A profile running the fake server with `flags`.
  Profile FakeProfile(std::string name, std::vector<std::string> flags = {}) {
    Profile p;
    p.name = std::move(name);
    p.argv = {MCPMW_FAKE_MCP_SERVER, "--starts", starts_, "--log", log_};
    p.argv.insert(p.argv.end(), flags.begin(), flags.end());
    p.sandbox = {};
    return p;
  }

  void StartPool(std::vector<Profile> profiles, milliseconds kill_timeout = milliseconds(2000)) {
    PoolOptions options;
    options.host = testing_support::ProbedHost();
    options.kill_timeout = kill_timeout;
    absl::StatusOr<std::unique_ptr<PoolManager>> pool =
        PoolManager::Start(std::move(profiles), std::move(options));
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
  }

  bool WaitFor(std::string_view profile, const std::function<bool(const ProfileStats&)>& pred) {
    return pool_->WaitForStats(profile, pred, kWait);
  }

  ProfileStats StatsOf(std::string_view profile) {
    absl::StatusOr<ProfileStats> s = pool_->Stats(profile);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : ProfileStats{};
  }

  std::string dir_;
  std::string starts_;
  std::string log_;
  std::unique_ptr<PoolManager> pool_;
};

TEST_F(PoolManagerTest, WarmLeaseIsServedWithoutASpawnAndReplacedInTheBackground) {
  Profile p = FakeProfile("warm");
  p.min_warm = 1;
  p.max_workers = 2;
  StartPool({p});
  ASSERT_TRUE(WaitFor("warm", [](const ProfileStats& s) { return s.warm == 1; }));
  const std::vector<pid_t> before = ReadPids(starts_);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(StatsOf("warm").spawned_total, 1u);

  absl::StatusOr<WorkerLease> lease = pool_->Lease("warm");
  ASSERT_TRUE(lease.ok()) << lease.status();
  // The worker existed before Lease was called: it is the one pre-started, not a fresh spawn.
  EXPECT_EQ(lease->pid, before[0]);
  EXPECT_EQ(lease->worker_id, "warm-1");
  EXPECT_EQ(lease->profile, "warm");
  EXPECT_FALSE(lease->initialize_result.has_value());

  // The session owns the pipes: a request goes straight to the worker.
  WriteLine(lease->stdin_fd, R"({"jsonrpc":"2.0","id":7,"method":"ping"})");
  EXPECT_EQ(ReadLine(lease->stdout_fd), R"({"jsonrpc":"2.0","id":7,"result":{}})");

  // A replacement starts in the background, back to minWarm warm.
  ASSERT_TRUE(WaitFor("warm", [](const ProfileStats& s) {
    return s.warm == 1 && s.leased == 1 && s.spawned_total == 2;
  }));
  std::vector<pid_t> after = ReadPids(starts_);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_NE(after[1], lease->pid);

  pool_->Release(*lease, 1);
  ASSERT_TRUE(WaitFor("warm", [](const ProfileStats& s) {
    return s.leased == 0 && s.draining == 0 && s.warm == 1;
  }));
  EXPECT_TRUE(Gone(lease->pid)) << "the exclusive worker was not stopped and reaped";
  EXPECT_EQ(StatsOf("warm").leases_total, 1u);
  EXPECT_EQ(StatsOf("warm").failed_total, 0u);
}

TEST_F(PoolManagerTest, ExclusiveWorkerIsNeverHandedToASecondSession) {
  Profile p = FakeProfile("excl");
  p.min_warm = 1;
  p.max_workers = 1;
  StartPool({p});
  absl::StatusOr<WorkerLease> first = pool_->Lease("excl");
  ASSERT_TRUE(first.ok()) << first.status();
  pool_->Release(*first, 3);
  absl::StatusOr<WorkerLease> second = pool_->Lease("excl");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->pid, first->pid);
  EXPECT_NE(second->worker_id, first->worker_id);
  // maxWorkers is 1, so the second worker could only start once the first was reaped.
  EXPECT_TRUE(Gone(first->pid));
  EXPECT_THAT(Zombies(), testing::IsEmpty());
  pool_->Release(*second, 0);
}

TEST_F(PoolManagerTest, ExhaustedPoolQueuesWithADeadlineAndABoundedQueue) {
  Profile p = FakeProfile("busy");
  p.min_warm = 1;
  p.max_workers = 1;
  p.queue.max_waiting = 1;
  p.queue.wait_timeout = milliseconds(1500);
  StartPool({p});
  absl::StatusOr<WorkerLease> a = pool_->Lease("busy");
  ASSERT_TRUE(a.ok()) << a.status();

  // The second lease waits until the first worker is released (and replaced: exclusive).
  absl::StatusOr<WorkerLease> b = absl::UnknownError("not run");
  std::thread waiter([&] { b = pool_->Lease("busy"); });
  ASSERT_TRUE(WaitFor("busy", [](const ProfileStats& s) { return s.waiting == 1; }));
  pool_->Release(*a, 1);
  waiter.join();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(b->pid, a->pid);
  EXPECT_GT(b->waited, Duration::zero());

  // With the only worker leased, a waiter fills the queue and the next caller is refused at once.
  absl::StatusOr<WorkerLease> c = absl::UnknownError("not run");
  std::thread timed_out([&] { c = pool_->Lease("busy"); });
  ASSERT_TRUE(WaitFor("busy", [](const ProfileStats& s) { return s.waiting == 1; }));
  auto asked = std::chrono::steady_clock::now();
  absl::StatusOr<WorkerLease> d = pool_->Lease("busy");
  EXPECT_LT(std::chrono::steady_clock::now() - asked, milliseconds(1000));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted) << d.status();
  EXPECT_THAT(d.status().message(), HasSubstr("pool profile `busy`"));
  EXPECT_THAT(d.status().message(), HasSubstr("queue.maxWaiting 1"));

  // Nobody releases: the waiter gets the deadline error.
  timed_out.join();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDeadlineExceeded) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("pool profile `busy`"));
  EXPECT_THAT(c.status().message(), HasSubstr("within queue.waitTimeout (1500 ms)"));
  EXPECT_THAT(c.status().message(), HasSubstr("maxWorkers 1, 1 leased"));
  EXPECT_EQ(StatsOf("busy").waiting, 0u);
  pool_->Release(*b, 0);
}

TEST_F(PoolManagerTest, WorkerThatStopsAnsweringPingIsKilledAndReplaced) {
  // Answers the start-up ping only, then hangs.
  Profile p = FakeProfile("hang", {"--answer-pings", "1"});
  p.min_warm = 1;
  p.ping_interval = milliseconds(50);
  p.ping_timeout = milliseconds(200);
  StartPool({p});
  ASSERT_TRUE(WaitFor("hang", [](const ProfileStats& s) {
    return s.failed_total >= 1 && s.spawned_total >= 2 && s.warm == 1;
  }));
  const std::vector<pid_t> pids = ReadPids(starts_);
  ASSERT_GE(pids.size(), 2u);
  // The hung worker was killed and reaped; the health log says the pool pinged it.
  const pid_t hung = pids[0];
  EXPECT_TRUE(WaitFor("hang", [hung](const ProfileStats&) { return Gone(hung); }));
  EXPECT_THAT(ReadFile(log_), HasSubstr(absl::StrCat(pids[0], " ping\n", pids[0], " ping\n")));
  EXPECT_THAT(Zombies(), testing::IsEmpty());
}

TEST_F(PoolManagerTest, WorkerThatDiesWhileIdleIsReapedAndReplaced) {
  Profile p = FakeProfile("die");
  p.min_warm = 1;
  StartPool({p});
  ASSERT_TRUE(WaitFor("die", [](const ProfileStats& s) { return s.warm == 1; }));
  const std::vector<pid_t> before = ReadPids(starts_);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(::kill(before[0], SIGKILL), 0);
  ASSERT_TRUE(WaitFor("die", [](const ProfileStats& s) {
    return s.failed_total == 1 && s.spawned_total == 2 && s.warm == 1;
  }));
  EXPECT_TRUE(Gone(before[0])) << "the dead worker was not reaped";
  EXPECT_THAT(Zombies(), testing::IsEmpty());
  absl::StatusOr<WorkerLease> lease = pool_->Lease("die");
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_NE(lease->pid, before[0]);
  pool_->Release(*lease, 0);
}

TEST_F(PoolManagerTest, BreakerOpensAfterFailingStartsFailsFastAndClosesAfterAProbe) {
  const std::string flag = dir_ + "/broken";
  std::ofstream(flag) << "x";
  Profile p = FakeProfile("flaky", {"--fail-if-exists", flag});
  p.min_warm = 1;
  p.breaker.failures = 3;
  p.breaker.open_for = milliseconds(1500);  // long enough to observe the open state under load
  p.queue.wait_timeout = milliseconds(5000);
  StartPool({p});
  ASSERT_TRUE(
      WaitFor("flaky", [](const ProfileStats& s) { return s.breaker == BreakerState::kOpen; }));
  ProfileStats opened = StatsOf("flaky");
  EXPECT_GE(opened.failed_total, 3u);
  EXPECT_EQ(opened.warm, 0u);
  EXPECT_THAT(pool_->RenderPrometheus(), HasSubstr("mcpmw_pool_breaker_open{profile=\"flaky\"} 1"));

  auto asked = std::chrono::steady_clock::now();
  absl::StatusOr<WorkerLease> refused = pool_->Lease("flaky");
  EXPECT_LT(std::chrono::steady_clock::now() - asked, milliseconds(1000)) << "did not fail fast";
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("pool profile `flaky` is failing"));
  EXPECT_THAT(refused.status().message(), HasSubstr("exit code 3"));
  EXPECT_THAT(refused.status().message(), HasSubstr("tries to start a worker again in"));

  // The server is fixed; the half-open probe starts and closes the breaker.
  std::filesystem::remove(flag);
  ASSERT_TRUE(WaitFor("flaky", [](const ProfileStats& s) {
    return s.breaker == BreakerState::kClosed && s.warm == 1;
  }));
  absl::StatusOr<WorkerLease> lease = pool_->Lease("flaky");
  ASSERT_TRUE(lease.ok()) << lease.status();
  pool_->Release(*lease, 0);
  EXPECT_THAT(Zombies(), testing::IsEmpty());
}

TEST_F(PoolManagerTest, SharedWorkerReturnsToServiceAndIsRecycledAfterNSessions) {
  Profile p = FakeProfile("shared");
  p.isolation = Isolation::kShared;
  p.min_warm = 1;
  p.max_workers = 1;
  p.recycle.after_sessions = 2;
  StartPool({p});
  absl::StatusOr<WorkerLease> first = pool_->Lease("shared");
  ASSERT_TRUE(first.ok()) << first.status();
  pool_->Release(*first, 4);
  absl::StatusOr<WorkerLease> second = pool_->Lease("shared");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->pid, first->pid) << "a shared worker returns to service";
  pool_->Release(*second, 4);
  ASSERT_TRUE(WaitFor("shared", [](const ProfileStats& s) {
    return s.recycled_total == 1 && s.warm == 1 && s.draining == 0;
  }));
  EXPECT_TRUE(Gone(first->pid));
  absl::StatusOr<WorkerLease> third = pool_->Lease("shared");
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_NE(third->pid, first->pid);
  pool_->Release(*third, 0);
  EXPECT_EQ(StatsOf("shared").failed_total, 0u);
}

TEST_F(PoolManagerTest, IdleWorkersAboveMinWarmStopAfterTheIdleTimeout) {
  Profile p = FakeProfile("idle");
  p.isolation = Isolation::kShared;
  p.min_warm = 0;
  p.max_workers = 1;
  p.idle_timeout = milliseconds(100);
  StartPool({p});
  absl::StatusOr<WorkerLease> lease = pool_->Lease("idle");  // started on demand
  ASSERT_TRUE(lease.ok()) << lease.status();
  pool_->Release(*lease, 1);
  ASSERT_TRUE(WaitFor("idle", [](const ProfileStats& s) {
    return s.warm == 0 && s.draining == 0 && s.leased == 0 && s.spawned_total == 1;
  }));
  EXPECT_TRUE(Gone(lease->pid));
  EXPECT_EQ(StatsOf("idle").failed_total, 0u);
}

TEST_F(PoolManagerTest, PrewarmInitializeCachesTheServersResultAndSendsInitialized) {
  Profile p = FakeProfile("init");
  p.prewarm = Prewarm::kInitialize;
  p.min_warm = 1;
  StartPool({p});
  absl::StatusOr<WorkerLease> lease = pool_->Lease("init");
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(lease->initialize_result.has_value());
  EXPECT_EQ(*lease->initialize_result,
            absl::StrCat(R"({"protocolVersion":"2025-06-18","capabilities":{"tools":{}},)",
                         R"("serverInfo":{"name":"fake-mcp","version":")", lease->pid, R"("}})"));
  // The server handles messages in order, so once it answers this ping it has logged both.
  WriteLine(lease->stdin_fd, R"({"jsonrpc":"2.0","id":"s1","method":"ping"})");
  EXPECT_EQ(ReadLine(lease->stdout_fd), R"({"jsonrpc":"2.0","id":"s1","result":{}})");
  std::string log = ReadFile(log_);
  EXPECT_THAT(log, HasSubstr(absl::StrCat(lease->pid, " initialize\n", lease->pid,
                                          " notifications/initialized\n", lease->pid, " ping\n")));
  pool_->Release(*lease, 1);
}

TEST_F(PoolManagerTest, WorkerGetsOnlyItsProfilesEnvironmentAndWorkingDirectory) {
  // No worker starts before StartPool (minWarm 0) or after this lease, so the pool's reactor
  // reads the environment only while the secret is set.
  ASSERT_EQ(::setenv("MCPMW_POOL_TEST_SECRET", "leak", 1), 0);  // NOLINT(concurrency-mt-unsafe)
  Profile p = FakeProfile("env");
  p.env_allow = {"PATH"};
  p.env_set = {{"MCPMW_POOL_TEST_SET", "yes"}};
  p.cwd = dir_;
  StartPool({p});
  absl::StatusOr<WorkerLease> lease = pool_->Lease("env");
  ::unsetenv("MCPMW_POOL_TEST_SECRET");  // NOLINT(concurrency-mt-unsafe)
  ASSERT_TRUE(lease.ok()) << lease.status();
  WriteLine(lease->stdin_fd, R"({"jsonrpc":"2.0","id":1,"method":"debug/env"})");
  std::string answer = ReadLine(lease->stdout_fd);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(answer).get(doc), simdjson::SUCCESS) << answer;
  std::vector<std::string> env;
  for (simdjson::dom::element e : doc["result"]["env"].get_array()) {
    env.emplace_back(std::string_view(e.get_string()));
  }
  const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe): no writer now
  ASSERT_NE(path, nullptr);
  EXPECT_THAT(env, UnorderedElementsAre(absl::StrCat("PATH=", path), "MCPMW_POOL_TEST_SET=yes"));
  EXPECT_EQ(std::string_view(doc["result"]["cwd"].get_string()),
            std::filesystem::canonical(dir_).string());
  pool_->Release(*lease, 1);
}

TEST_F(PoolManagerTest, WorkerStderrIsLoggedTaggedWithProfileAndWorker) {
  // mcpmw logs on stderr: capture this process's fd 2 in a pipe while the worker starts.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd read_end(fds[0]);
  UniqueFd saved(::dup(STDERR_FILENO));
  ASSERT_GE(::dup2(fds[1], STDERR_FILENO), 0);
  ::close(fds[1]);
  Profile p = FakeProfile("talk", {"--stderr", "hello from the worker"});
  p.min_warm = 1;
  StartPool({p});
  std::string seen;
  bool found = false;
  for (std::string line = ReadLine(read_end.Get()); !line.empty();
       line = ReadLine(read_end.Get())) {
    seen += line + "\n";
    if (line == "mcpmw: [talk/talk-1] hello from the worker") {
      found = true;
      break;
    }
  }
  ::dup2(saved.Get(), STDERR_FILENO);
  EXPECT_TRUE(found) << "stderr seen:\n" << seen;
}

TEST_F(PoolManagerTest, RendersPerProfileMetrics) {
  Profile p = FakeProfile("metrics");
  p.min_warm = 1;
  p.max_workers = 2;
  StartPool({p});
  absl::StatusOr<WorkerLease> lease = pool_->Lease("metrics");
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(WaitFor("metrics", [](const ProfileStats& s) { return s.warm == 1; }));
  std::string text = pool_->RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE mcpmw_pool_workers gauge\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_pool_workers{profile=\"metrics\",state=\"warm\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_pool_workers{profile=\"metrics\",state=\"leased\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE mcpmw_pool_lease_wait_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_pool_lease_wait_seconds_count{profile=\"metrics\"} 1\n"));
  EXPECT_THAT(
      text, HasSubstr("mcpmw_pool_lease_wait_seconds_bucket{profile=\"metrics\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_pool_workers_failed_total{profile=\"metrics\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_pool_workers_recycled_total{profile=\"metrics\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_pool_breaker_open{profile=\"metrics\"} 0\n"));
  pool_->Release(*lease, 1);
}

TEST_F(PoolManagerTest, SpawnReadinessLeasesAProcessThatSpeaksNoJsonRpc) {
  // /bin/cat only echoes: it never answers a ping, yet with readiness `spawn` it is leasable and
  // the pool wrote nothing to it before the session.
  const char* cat = "/bin/cat";
  if (::access(cat, X_OK) != 0) {
    GTEST_SKIP() << cat << " is not available on this host";
  }
  Profile p;
  p.name = "cat";
  p.argv = {cat};
  p.readiness = Readiness::kSpawn;
  p.min_warm = 1;
  p.ping_interval = milliseconds(0);
  StartPool({p});
  absl::StatusOr<WorkerLease> lease = pool_->Lease("cat");
  ASSERT_TRUE(lease.ok()) << lease.status();
  WriteLine(lease->stdin_fd, "first words");
  EXPECT_EQ(ReadLine(lease->stdout_fd), "first words");
  pool_->Release(*lease, 1);
  EXPECT_EQ(StatsOf("cat").failed_total, 0u);
}

TEST_F(PoolManagerTest, UnknownProfileIsNotFound) {
  StartPool({FakeProfile("known")});
  absl::StatusOr<WorkerLease> lease = pool_->Lease("nope");
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(lease.status().message(), HasSubstr("configured: known"));
}

TEST_F(PoolManagerTest, ShutdownStopsEveryWorkerAndLeavesNoChild) {
  Profile p = FakeProfile("down");
  p.min_warm = 3;
  p.max_workers = 4;
  StartPool({p});
  ASSERT_TRUE(WaitFor("down", [](const ProfileStats& s) { return s.warm == 3; }));
  absl::StatusOr<WorkerLease> held = pool_->Lease("down");
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_TRUE(WaitFor("down", [](const ProfileStats& s) { return s.spawned_total == 4; }));
  EXPECT_EQ(Children().size(), 4u);
  pool_->Shutdown();
  EXPECT_THAT(Children(), testing::IsEmpty());
  for (pid_t pid : ReadPids(starts_)) {
    EXPECT_TRUE(Gone(pid)) << pid;
  }
  absl::StatusOr<WorkerLease> late = pool_->Lease("down");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(late.status().message(), HasSubstr("shutting down"));
  pool_->Release(*held, 0);  // after Shutdown: harmless
}

}  // namespace
}  // namespace mcpmw::pool
