// session_start_bench: how long a session waits before it can talk to its MCP server, cold spawn
// vs warm lease from the pool (issue 4, ARCHITECTURE.md §6).
//
//   session_start_bench --server NAME [--cold N] [--warm N] -- CMD ARGS...
//                      [--server NAME [--cold N] [--warm N] -- CMD ARGS...]...
//
// "Session start" is measured the same way in every column: from the moment a session asks for a
// worker until it holds the server's answer to `initialize` and may send its first request
// (`notifications/initialized` written, so the next line it writes can be a request):
//
//   cold               Spawn() the server (same argv, environment, cwd and sandbox plan as the
//                      pool's workers), write `initialize`, read lines until its result, write
//                      `notifications/initialized`.
//   warm, prewarm      PoolManager::Lease() on a `prewarm: initialize` profile: the worker was
//                      started and initialized ahead, the lease carries the cached result (checked
//                      to be an object with `protocolVersion`, outside the timed region) and the
//                      pool already sent `notifications/initialized`; nothing is left to do.
//   warm, no prewarm   PoolManager::Lease() on a plain profile (ready once it answered `ping`),
//                      then the same `initialize` round trip and notification as cold.
//
// Both pools are `exclusive`, minWarm 1, maxWorkers 2, health pings off (so a lease never finds
// its only warm worker busy in a ping). Before each timed lease the bench waits, outside the timed
// region, until the previous session's worker is reaped and its replacement is warm (Stats:
// warm == minWarm, nothing starting, leased or draining), so every timed lease is a real warm
// hand-off and never a queue wait; a lease that still waited over 1 ms is counted and reported.
// Each Lease() starts a replacement in the background at once, as in production; with no prewarm
// that spawn runs while the leased worker answers `initialize` and shares the CPUs with it. Each
// cold session's server is stopped and reaped after its timed region.
//
// Output: one markdown table (p50, p99 and mean per variant, nearest-rank percentiles, so with
// fewer than 100 sessions p99 is the slowest one; cold over warm ratios of p50 and mean), then
// the bar, judged on the warm lease with prewarm (≥ 50× faster than cold, on p50 and on mean;
// the ratios without prewarm are printed beside it, not judged), and the load average before and
// after. Exit status: 0 when everything was measured, whatever the bar says; 1 when a
// session failed; 2 for a usage error. Pool diagnostics (worker stderr lines) go to stderr.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pool/pool_manager.h"
#include "pool/process.h"
#include "pool/profile.h"
#include "pool/sandbox/host.h"
#include "pool/sandbox/sandbox.h"
#include "simdjson.h"
#include "src/common/log.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Bounds on waits that should end far sooner; hitting one fails the run instead of hanging it.
constexpr milliseconds kAnswerTimeout{30000};
constexpr milliseconds kReplenishTimeout{60000};
constexpr milliseconds kStopTimeout{3000};
// A lease that took longer than this was not a warm hand-off (it queued for a worker).
constexpr Duration kQueuedLease = milliseconds(1);
constexpr double kBar = 50;
constexpr std::string_view kRequestId = "session-start";
constexpr std::string_view kInitializedLine =
    R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
    "\n";

struct ServerRun {
  std::string name;
  uint32_t cold = 30;
  uint32_t warm = 300;
  std::vector<std::string> argv;
};

void Usage() {
  std::fprintf(stderr,
               "usage: session_start_bench --server NAME [--cold N] [--warm N] -- CMD ARGS... "
               "[--server NAME ...]...\n");
}

bool ParseCount(const char* s, uint32_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > 1000000) {
    return false;
  }
  *out = static_cast<uint32_t>(v);
  return true;
}

bool ParseArgs(int argc, char** argv, std::vector<ServerRun>* runs) {
  int i = 1;
  while (i < argc) {
    if (std::string_view(argv[i]) != "--server" || i + 1 >= argc) {
      return false;
    }
    ServerRun run;
    run.name = argv[i + 1];
    i += 2;
    while (i < argc && std::string_view(argv[i]) != "--") {
      std::string_view flag = argv[i];
      if (i + 1 >= argc) {
        return false;
      }
      uint32_t* target = flag == "--cold" ? &run.cold : flag == "--warm" ? &run.warm : nullptr;
      if (target == nullptr || !ParseCount(argv[i + 1], target)) {
        return false;
      }
      i += 2;
    }
    if (i >= argc) {
      return false;  // no `--`
    }
    ++i;
    while (i < argc && std::string_view(argv[i]) != "--server") {
      run.argv.emplace_back(argv[i++]);
    }
    if (run.argv.empty()) {
      return false;
    }
    runs->push_back(std::move(run));
  }
  return !runs->empty();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

// The profile every variant shares; the variants change only prewarm and the name.
pool::Profile BaseProfile(const ServerRun& run) {
  pool::Profile p;
  p.name = run.name;
  p.argv = run.argv;
  p.env_allow = {"PATH", "HOME", "LANG"};
  p.min_warm = 1;
  p.max_workers = 2;
  p.isolation = pool::Isolation::kExclusive;
  p.ping_interval = milliseconds(0);
  return p;
}

absl::Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      pollfd pfd{fd, POLLOUT, 0};
      ::poll(&pfd, 1, static_cast<int>(kAnswerTimeout.count()));
      continue;
    }
    if (n <= 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot write to the server's stdin: ", ErrnoText(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Whether `text` is a JSON object carrying a string `protocolVersion`: what a session needs from
// an `initialize` result.
bool IsInitializeResult(simdjson::dom::element result) {
  std::string_view version;
  return result.is_object() && result["protocolVersion"].get(version) == simdjson::SUCCESS;
}

// Reads lines from the server's stdout until the response to our `initialize`; other lines
// (notifications, logs on stdout) are skipped. Blocking or non-blocking fds both work.
absl::Status AwaitInitializeResult(int fd, simdjson::dom::parser& parser) {
  const steady_clock::time_point deadline = steady_clock::now() + kAnswerTimeout;
  std::string buffer;
  char chunk[16384];
  while (true) {
    for (size_t nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      simdjson::dom::element doc;
      std::string_view id;
      if (parser.parse(line).get(doc) != simdjson::SUCCESS || !doc.is_object() ||
          doc["id"].get(id) != simdjson::SUCCESS || id != kRequestId) {
        continue;
      }
      simdjson::dom::element result;
      if (doc["result"].get(result) != simdjson::SUCCESS || !IsInitializeResult(result)) {
        return absl::FailedPreconditionError(
            absl::StrCat("the server refused `initialize`: ", line.substr(0, 300)));
      }
      return absl::OkStatus();
    }
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no answer to `initialize` within ", kAnswerTimeout.count(), " ms"));
    }
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) {
      continue;
    }
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n <= 0) {
      return absl::UnavailableError("the server closed its stdout before answering `initialize`");
    }
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

// The session's side of the handshake on a server that has not seen `initialize` yet.
absl::Status Handshake(int in, int out, std::string_view initialize_line,
                       simdjson::dom::parser& parser) {
  MCPMW_RETURN_IF_ERROR(WriteAll(in, initialize_line));
  MCPMW_RETURN_IF_ERROR(AwaitInitializeResult(out, parser));
  return WriteAll(in, kInitializedLine);
}

bool WaitExited(const pool::Child& child, milliseconds timeout) {
  pollfd pfd{child.pidfd.Get(), POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (rc < 0 && errno == EINTR);
  return rc == 1;
}

// Stops a cold session's server as the pool stops an exclusive worker: stdin closed, SIGTERM,
// SIGKILL after the stop timeout, reaped.
absl::Status StopAndReap(pool::Child& child) {
  child.stdin_fd.Reset();
  pool::SignalChild(child, SIGTERM);
  if (!WaitExited(child, kStopTimeout)) {
    pool::SignalChild(child, SIGKILL);
    if (!WaitExited(child, kAnswerTimeout)) {
      return absl::InternalError(absl::StrCat("pid ", child.pid, " survived SIGKILL"));
    }
  }
  return pool::Reap(child).status();
}

absl::StatusOr<std::vector<Duration>> MeasureCold(const ServerRun& run,
                                                  const std::string& initialize_line) {
  const pool::Profile profile = BaseProfile(run);
  MCPMW_ASSIGN_OR_RETURN(pool::sandbox::SandboxPlan plan,
                         pool::sandbox::Plan(profile.sandbox, pool::sandbox::ProbeHost()));
  simdjson::dom::parser parser;
  std::vector<Duration> samples;
  samples.reserve(run.cold);
  for (uint32_t i = 0; i < run.cold; ++i) {
    const steady_clock::time_point start = steady_clock::now();
    pool::SpawnOptions spawn;
    spawn.argv = profile.argv;
    spawn.env = pool::BuildEnvironment(profile, environ);
    spawn.cwd = profile.cwd;
    spawn.inherit_stderr = false;
    spawn.sandbox = &plan;
    spawn.worker_name = absl::StrCat(profile.name, "-cold-", i + 1);
    MCPMW_ASSIGN_OR_RETURN(pool::Child child, pool::Spawn(spawn));
    absl::Status handshake =
        Handshake(child.stdin_fd.Get(), child.stdout_fd.Get(), initialize_line, parser);
    const steady_clock::time_point end = steady_clock::now();
    absl::Status stopped = StopAndReap(child);
    MCPMW_RETURN_IF_ERROR(handshake);
    MCPMW_RETURN_IF_ERROR(stopped);
    samples.push_back(end - start);
  }
  return samples;
}

struct WarmResult {
  std::vector<Duration> samples;
  std::vector<Duration> granted;  // the pool's own WorkerLease::waited: Lease() entry to grant
  uint32_t queued = 0;            // leases that waited longer than kQueuedLease
  uint64_t failed = 0;            // the pool's failed_total: start failures, unrequested exits
};

// Every previous session's worker is gone and the replacement is warm: the next lease is a warm
// hand-off.
bool Replenished(const pool::ProfileStats& s) {
  return s.warm == 1 && s.starting == 0 && s.leased == 0 && s.draining == 0 && s.waiting == 0;
}

absl::StatusOr<WarmResult> MeasureWarm(const ServerRun& run, pool::Prewarm prewarm,
                                       const std::string& initialize_line) {
  pool::Profile profile = BaseProfile(run);
  profile.prewarm = prewarm;
  MCPMW_ASSIGN_OR_RETURN(std::unique_ptr<pool::PoolManager> manager,
                         pool::PoolManager::Start({profile}));
  simdjson::dom::parser parser;
  WarmResult out;
  out.samples.reserve(run.warm);
  out.granted.reserve(run.warm);
  absl::Status status;
  for (uint32_t i = 0; i < run.warm && status.ok(); ++i) {
    if (!manager->WaitForStats(profile.name, Replenished, kReplenishTimeout)) {
      status = absl::DeadlineExceededError(
          absl::StrCat("the pool did not get back to one warm worker within ",
                       kReplenishTimeout.count(), " ms (see the worker stderr above)"));
      break;
    }
    const steady_clock::time_point start = steady_clock::now();
    absl::StatusOr<pool::WorkerLease> lease = manager->Lease(profile.name);
    if (lease.ok() && prewarm == pool::Prewarm::kNone) {
      status = Handshake(lease->stdin_fd, lease->stdout_fd, initialize_line, parser);
    }
    const steady_clock::time_point end = steady_clock::now();
    if (!lease.ok()) {
      status = lease.status();
      break;
    }
    if (status.ok() && prewarm == pool::Prewarm::kInitialize) {
      simdjson::dom::element result;
      if (!lease->initialize_result.has_value() ||
          parser.parse(*lease->initialize_result).get(result) != simdjson::SUCCESS ||
          !IsInitializeResult(result)) {
        status = absl::InternalError("a prewarm lease came without a usable initialize result");
      }
    }
    out.queued += lease->waited > kQueuedLease ? 1 : 0;
    out.granted.push_back(lease->waited);
    manager->Release(*lease, prewarm == pool::Prewarm::kNone ? 1 : 0);
    out.samples.push_back(end - start);
  }
  if (absl::StatusOr<pool::ProfileStats> stats = manager->Stats(profile.name); stats.ok()) {
    out.failed = stats->failed_total;
  }
  manager->Shutdown();
  MCPMW_RETURN_IF_ERROR(status);
  return out;
}

struct Summary {
  size_t n = 0;
  double p50_ns = 0;
  double p99_ns = 0;
  double mean_ns = 0;
};

// Nearest-rank percentiles: the ceil(q·n)-th smallest sample.
Summary Summarize(std::vector<Duration> samples) {
  std::sort(samples.begin(), samples.end());
  Summary s;
  s.n = samples.size();
  if (s.n == 0) {
    return s;
  }
  auto rank = [&](double q) {
    const auto k = static_cast<size_t>(std::ceil(q * static_cast<double>(s.n)));
    return static_cast<double>(samples[std::clamp<size_t>(k, 1, s.n) - 1].count());
  };
  s.p50_ns = rank(0.50);
  s.p99_ns = rank(0.99);
  double sum = 0;
  for (Duration d : samples) {
    sum += static_cast<double>(d.count());
  }
  s.mean_ns = sum / static_cast<double>(s.n);
  return s;
}

std::string Human(double ns) {
  if (ns >= 1e6) {
    return absl::StrFormat("%.1f ms", ns / 1e6);
  }
  if (ns >= 1e3) {
    return absl::StrFormat("%.1f µs", ns / 1e3);
  }
  return absl::StrFormat("%.0f ns", ns);
}

std::string Ratio(double cold, double warm) { return absl::StrFormat("%.0f×", cold / warm); }

void PrintRow(const std::string& server, std::string_view variant, const Summary& s,
              const Summary& cold) {
  std::printf("| %s | %s | %zu | %s | %s | %s | %s | %s |\n", server.c_str(),
              std::string(variant).c_str(), s.n, Human(s.p50_ns).c_str(), Human(s.p99_ns).c_str(),
              Human(s.mean_ns).c_str(), Ratio(cold.p50_ns, s.p50_ns).c_str(),
              Ratio(cold.mean_ns, s.mean_ns).c_str());
}

struct ServerResult {
  std::string name;
  Summary cold;
  Summary prewarm;
  Summary plain;
  WarmResult prewarm_run;
  WarmResult plain_run;
};

// The bar is judged on the warm lease as the issue defines it (prewarm: the session has the
// initialize result at once); the variant without prewarm is reported beside it, not judged.
std::string Verdict(const Summary& cold, const Summary& warm, bool judged) {
  const double p50 = cold.p50_ns / warm.p50_ns;
  const double mean = cold.mean_ns / warm.mean_ns;
  const bool met = p50 >= kBar && mean >= kBar;
  if (judged) {
    return absl::StrFormat("p50 %.0f×, mean %.0f× (bar ≥ %.0f× on both) %s", p50, mean, kBar,
                           met ? "PASS" : "FAIL");
  }
  return absl::StrFormat("p50 %.0f×, mean %.0f× (not judged; %s %.0f× on both)", p50, mean,
                         met ? "at least" : "not", kBar);
}

int Main(int argc, char** argv) {
  std::vector<ServerRun> runs;
  if (!ParseArgs(argc, argv, &runs)) {
    Usage();
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // as mcpmw runs; a dying server must not kill the bench
  const std::string initialize_line = absl::StrCat(R"({"jsonrpc":"2.0","id":")", Sv(kRequestId),
                                                   R"(","method":"initialize","params":)",
                                                   pool::PoolOptions{}.initialize_params, "}\n");
  const std::string load_before = LoadAverage();
  std::vector<ServerResult> results;
  for (const ServerRun& run : runs) {
    ServerResult r;
    r.name = run.name;
    absl::StatusOr<std::vector<Duration>> cold = MeasureCold(run, initialize_line);
    if (!cold.ok()) {
      std::fprintf(stderr, "session_start_bench: FAIL: %s, cold: %s\n", run.name.c_str(),
                   std::string(cold.status().message()).c_str());
      return 1;
    }
    absl::StatusOr<WarmResult> prewarm =
        MeasureWarm(run, pool::Prewarm::kInitialize, initialize_line);
    if (!prewarm.ok()) {
      std::fprintf(stderr, "session_start_bench: FAIL: %s, warm with prewarm: %s\n",
                   run.name.c_str(), std::string(prewarm.status().message()).c_str());
      return 1;
    }
    absl::StatusOr<WarmResult> plain = MeasureWarm(run, pool::Prewarm::kNone, initialize_line);
    if (!plain.ok()) {
      std::fprintf(stderr, "session_start_bench: FAIL: %s, warm without prewarm: %s\n",
                   run.name.c_str(), std::string(plain.status().message()).c_str());
      return 1;
    }
    r.cold = Summarize(*std::move(cold));
    r.prewarm_run = *std::move(prewarm);
    r.plain_run = *std::move(plain);
    r.prewarm = Summarize(r.prewarm_run.samples);
    r.plain = Summarize(r.plain_run.samples);
    results.push_back(std::move(r));
  }
  const std::string load_after = LoadAverage();

  std::printf(
      "| server | session start | N | p50 | p99 | mean | cold/this p50 | cold/this mean |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (const ServerResult& r : results) {
    PrintRow(r.name, "cold: spawn + `initialize`", r.cold, r.cold);
    PrintRow(r.name, "warm lease, `prewarm: initialize` (cached result)", r.prewarm, r.cold);
    PrintRow(r.name, "warm lease + `initialize` round trip (no prewarm)", r.plain, r.cold);
  }
  std::printf("\n");
  for (const ServerResult& r : results) {
    std::printf("- %s, warm lease (prewarm) vs cold: %s\n", r.name.c_str(),
                Verdict(r.cold, r.prewarm, true).c_str());
    std::printf("- %s, warm lease + initialize (no prewarm) vs cold: %s\n", r.name.c_str(),
                Verdict(r.cold, r.plain, false).c_str());
  }
  std::printf("\n");
  for (const ServerResult& r : results) {
    std::printf(
        "- %s: every timed lease followed a wait (untimed) for the pool to be back at minWarm 1 "
        "warm, 0 starting/leased/draining; leases that still waited > 1 ms: %u with prewarm, %u "
        "without; workers failed: %" PRIu64 " with prewarm, %" PRIu64 " without\n",
        r.name.c_str(), r.prewarm_run.queued, r.plain_run.queued, r.prewarm_run.failed,
        r.plain_run.failed);
  }
  for (const ServerResult& r : results) {
    const Summary granted = Summarize(r.prewarm_run.granted);
    std::printf(
        "- %s, prewarm: the pool's own lease wait (Lease() entry to the worker granted, under "
        "its lock) p50 %s, p99 %s, mean %s; the rest of the column is Lease() returning: unlock, "
        "wake the pool's reactor (which starts the replacement at once) and get the CPU back\n",
        r.name.c_str(), Human(granted.p50_ns).c_str(), Human(granted.p99_ns).c_str(),
        Human(granted.mean_ns).c_str());
  }
  std::printf("- load average before: %s; after: %s\n", load_before.c_str(), load_after.c_str());
  return 0;
}

}  // namespace
}  // namespace mcpmw::bench

int main(int argc, char** argv) { return mcpmw::bench::Main(argc, argv); }
