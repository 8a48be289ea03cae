#include "pool/pool_manager.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "pool/process.h"
#include "pool/sandbox/sandbox.h"
#include "simdjson.h"
#include "src/common/fd.h"
#include "src/common/log.h"
#include "src/common/status.h"
#include "src/common/strings.h"
#include "src/io/ring.h"
#include "src/io/task.h"

extern char** environ;

namespace mcpmw::pool {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// A stderr line longer than this is logged in pieces (a server dumping a blob must not grow a
// buffer without bound).
constexpr size_t kMaxStderrLine = 4096;
// A probe answer (ping or initialize result) longer than this is treated as no answer.
constexpr size_t kMaxProbeLine = 1 << 20;
constexpr uint64_t kMiB = uint64_t{1024} * 1024;
// How long a worker whose pipes closed gets to show its exit before it counts as a hung start.
constexpr Duration kExitGrace = std::chrono::milliseconds(500);
// The reactor re-evaluates at least this often even when no timer is due.
constexpr Duration kMaxIdleWake = std::chrono::seconds(1);

TimePoint Now() { return SteadyClock::Instance().Now(); }

int64_t Ms(Duration d) { return duration_cast<milliseconds>(d).count(); }

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// What the worker wrote in answer to one of the pool's requests.
struct ProbeAnswer {
  bool is_error = false;
  std::string body;  // the `result` (or `error`) member, minified
};

// The answer to request `id` when `line` is a JSON-RPC response to it; nullopt for anything
// else (a log line, a notification, the server's own request, an unrelated response).
std::optional<ProbeAnswer> MatchResponse(std::string_view line, std::string_view id) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(line);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  simdjson::dom::object obj;
  std::string_view got_id;
  if (doc.get_object().get(obj) != simdjson::SUCCESS ||
      obj["id"].get_string().get(got_id) != simdjson::SUCCESS || got_id != id) {
    return std::nullopt;
  }
  simdjson::dom::element member;
  if (obj["method"].get(member) == simdjson::SUCCESS) {
    return std::nullopt;  // a request that reuses our id (an echo), not an answer
  }
  if (obj["result"].get(member) == simdjson::SUCCESS) {
    return ProbeAnswer{false, simdjson::minify(member)};
  }
  if (obj["error"].get(member) == simdjson::SUCCESS) {
    return ProbeAnswer{true, simdjson::minify(member)};
  }
  return std::nullopt;
}

// Prometheus label values escape backslash, double quote and line feed.
std::string LabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

void LeaseWaitHistogram::Observe(double seconds) {
  for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
    if (seconds <= kBucketsSeconds[i]) {
      ++counts[i];
      break;
    }
  }
  ++count;
  sum_seconds += seconds;
}

// ---- state ----------------------------------------------------------------------------------

struct ProfileState;

// One worker and what the manager knows about it. Fields are guarded by Impl::mu_, except
// `worker.child`, which only the reactor changes (under mu_) and which other threads only read
// under mu_.
struct Slot {
  Worker worker;
  ProfileState* ps = nullptr;
  bool checking = false;             // a health ping is in flight: not leasable
  bool stop_requested = false;       // the pool stops it: its exit is not a failure
  bool stop_signal_pending = false;  // the reactor has yet to start the stop sequence
  bool kill_now = false;             // SIGKILL straight away (hung), not SIGTERM first
  bool ever_leased = false;
  bool failed = false;  // already counted in failed_total
  uint64_t lease_id = 0;
  TimePoint idle_since{};
  TimePoint last_check{};
  std::optional<std::string> initialize_result;
};

// A Lease() call queued for a worker; lives on that caller's stack.
struct Waiter {
  TimePoint asked_at{};
  std::condition_variable cv;
  bool done = false;
  absl::Status failure;
  WorkerLease lease;
};

struct ProfileState {
  Profile profile;
  std::optional<sandbox::SandboxPlan> sandbox;  // set at Start, immutable afterwards
  // Workers not yet forgotten: alive, or dead while a session still holds their fds.
  std::vector<std::shared_ptr<Slot>> slots;
  std::deque<Waiter*> waiters;
  uint64_t next_sequence = 1;
  BreakerState breaker = BreakerState::kClosed;
  uint32_t consecutive_failures = 0;
  TimePoint open_until{};
  std::string last_failure;
  uint64_t spawned_total = 0;
  uint64_t failed_total = 0;
  uint64_t recycled_total = 0;
  uint64_t leases_total = 0;
  LeaseWaitHistogram lease_wait;
};

class PoolManager::Impl {
 public:
  explicit Impl(PoolOptions options) : options_(std::move(options)) {}

  absl::Status Start(std::vector<Profile> profiles);
  absl::StatusOr<WorkerLease> Lease(std::string_view profile);
  void Release(const WorkerLease& lease, uint64_t requests_served);
  void Shutdown();
  absl::StatusOr<ProfileStats> Stats(std::string_view profile) const;
  std::vector<ProfileStats> AllStats() const;
  bool WaitForStats(std::string_view profile,
                    const std::function<bool(const ProfileStats&)>& predicate,
                    Duration timeout) const;

 private:
  // ---- any thread, with mu_ held ----
  ProfileState* FindLocked(std::string_view profile) const;
  ProfileStats SnapshotLocked(const ProfileState& ps) const;
  Slot* FindWarmLocked(ProfileState& ps);
  WorkerLease GrantLocked(ProfileState& ps, const std::shared_ptr<Slot>& slot, TimePoint asked_at);
  void HandOffLocked(ProfileState& ps);
  void MakeWarmLocked(ProfileState& ps, Slot& slot);
  void FailWaitersLocked(ProfileState& ps, const absl::Status& why);
  absl::Status BreakerErrorLocked(const ProfileState& ps, TimePoint now) const;
  void BreakerFailureLocked(ProfileState& ps, std::string reason);
  void BreakerSuccessLocked(ProfileState& ps);
  void MarkFailedLocked(ProfileState& ps, Slot& slot);
  void RequestStopLocked(Slot& slot, bool kill_now);
  void ForgetLocked(ProfileState& ps, const Slot& slot);
  void Wake();

  // ---- reactor thread ----
  void ThreadMain(std::promise<absl::Status>* started);
  io::Task<void> Control();
  Duration Reconcile();
  io::Task<void> StartWorker(std::shared_ptr<Slot> slot);
  io::Task<void> PingWorker(std::shared_ptr<Slot> slot);
  io::Task<void> StopWorker(std::shared_ptr<Slot> slot);
  io::Task<void> WatchExit(std::shared_ptr<Slot> slot);
  io::Task<void> PumpStderr(std::shared_ptr<Slot> slot);
  io::Task<absl::StatusOr<ProbeAnswer>> Converse(std::shared_ptr<Slot> slot, std::string request,
                                                 std::string id, Duration timeout);
  std::string Tag(const Slot& slot) const {
    return absl::StrCat("[", slot.ps->profile.name, "/", slot.worker.id, "] ");
  }

  const PoolOptions options_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;  // notified on every state change
  std::vector<std::unique_ptr<ProfileState>> profiles_;
  std::map<uint64_t, std::shared_ptr<Slot>> leases_;
  uint64_t next_lease_id_ = 1;
  bool shutting_down_ = false;

  UniqueFd wake_fd_;  // eventfd: any thread writes, the reactor polls
  std::mutex join_mu_;
  std::thread thread_;

  // Reactor-only.
  io::Ring* ring_ = nullptr;
  io::TaskGroup tasks_;
  std::set<io::Operation*> stderr_reads_;  // pending stderr reads, cancelled at the very end
  uint64_t next_request_ = 1;              // ids of the pool's pings and initializes
  bool done_ = false;
};

// ---- caller side ----------------------------------------------------------------------------

absl::Status PoolManager::Impl::Start(std::vector<Profile> profiles) {
  std::set<std::string> names;
  const sandbox::HostCapabilities host =
      options_.host.has_value() ? *options_.host : sandbox::ProbeHost();
  for (Profile& profile : profiles) {
    if (!names.insert(profile.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two pool profiles are named `", profile.name, "`; names must be unique"));
    }
    absl::StatusOr<sandbox::SandboxPlan> plan = sandbox::Plan(profile.sandbox, host);
    if (!plan.ok()) {
      return {plan.status().code(), absl::StrCat("pool profile `", profile.name,
                                                 "` cannot start: ", plan.status().message())};
    }
    for (const sandbox::SkippedStep& skipped : plan->skipped()) {
      LogError("pool profile `", profile.name, "`: optional sandbox step `", skipped.step,
               "` skipped: ", skipped.reason);
    }
    auto ps = std::make_unique<ProfileState>();
    ps->profile = std::move(profile);
    ps->sandbox = *std::move(plan);
    profiles_.push_back(std::move(ps));
  }
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.Valid()) {
    return absl::InternalError(
        absl::StrCat("cannot create the pool's eventfd: ", ErrnoText(errno)));
  }
  std::promise<absl::Status> started;
  std::future<absl::Status> result = started.get_future();
  thread_ = std::thread([this, &started] { ThreadMain(&started); });
  absl::Status status = result.get();
  if (!status.ok()) {
    thread_.join();
  }
  return status;
}

ProfileState* PoolManager::Impl::FindLocked(std::string_view profile) const {
  for (const auto& ps : profiles_) {
    if (ps->profile.name == profile) {
      return ps.get();
    }
  }
  return nullptr;
}

Slot* PoolManager::Impl::FindWarmLocked(ProfileState& ps) {
  for (const auto& slot : ps.slots) {
    if (slot->worker.state == WorkerState::kWarm && !slot->checking) {
      return slot.get();
    }
  }
  return nullptr;
}

WorkerLease PoolManager::Impl::GrantLocked(ProfileState& ps, const std::shared_ptr<Slot>& slot,
                                           TimePoint asked_at) {
  slot->worker.state = WorkerState::kLeased;
  if (!slot->ever_leased && ps.profile.readiness == Readiness::kSpawn) {
    BreakerSuccessLocked(ps);  // nothing else proves a `spawn`-ready worker was healthy
  }
  slot->ever_leased = true;
  slot->lease_id = next_lease_id_++;
  leases_[slot->lease_id] = slot;
  ++ps.leases_total;
  WorkerLease lease;
  lease.id = slot->lease_id;
  lease.profile = ps.profile.name;
  lease.worker_id = slot->worker.id;
  lease.pid = slot->worker.pid;
  lease.stdin_fd = slot->worker.child.stdin_fd.Get();
  lease.stdout_fd = slot->worker.child.stdout_fd.Get();
  lease.initialize_result = slot->initialize_result;
  lease.waited = Now() - asked_at;
  ps.lease_wait.Observe(Seconds(lease.waited));
  return lease;
}

void PoolManager::Impl::HandOffLocked(ProfileState& ps) {
  while (!ps.waiters.empty()) {
    Slot* warm = FindWarmLocked(ps);
    if (warm == nullptr) {
      return;
    }
    std::shared_ptr<Slot> slot;
    for (const auto& s : ps.slots) {
      if (s.get() == warm) {
        slot = s;
      }
    }
    Waiter* waiter = ps.waiters.front();
    ps.waiters.pop_front();
    waiter->lease = GrantLocked(ps, slot, waiter->asked_at);
    waiter->done = true;
    waiter->cv.notify_one();
  }
}

void PoolManager::Impl::MakeWarmLocked(ProfileState& ps, Slot& slot) {
  slot.worker.state = WorkerState::kWarm;
  slot.idle_since = slot.last_check = Now();
  HandOffLocked(ps);
}

void PoolManager::Impl::FailWaitersLocked(ProfileState& ps, const absl::Status& why) {
  for (Waiter* waiter : ps.waiters) {
    waiter->failure = why;
    waiter->done = true;
    waiter->cv.notify_one();
  }
  ps.waiters.clear();
}

absl::Status PoolManager::Impl::BreakerErrorLocked(const ProfileState& ps, TimePoint now) const {
  return absl::UnavailableError(
      absl::StrCat("pool profile `", ps.profile.name, "` is failing: ", ps.consecutive_failures,
                   " worker start(s) in a row failed (last: ", ps.last_failure,
                   "); its circuit breaker is open and mcpmw tries to start a worker again in ",
                   std::max<int64_t>(0, Ms(ps.open_until - now)), " ms"));
}

void PoolManager::Impl::BreakerFailureLocked(ProfileState& ps, std::string reason) {
  ps.last_failure = std::move(reason);
  ++ps.consecutive_failures;
  const bool trip = ps.breaker == BreakerState::kHalfOpen ||
                    (ps.breaker == BreakerState::kClosed &&
                     ps.consecutive_failures >= ps.profile.breaker.failures);
  if (!trip) {
    return;
  }
  TimePoint now = Now();
  ps.breaker = BreakerState::kOpen;
  ps.open_until = now + ps.profile.breaker.open_for;
  absl::Status error = BreakerErrorLocked(ps, now);
  LogError(error.message());
  FailWaitersLocked(ps, error);
}

void PoolManager::Impl::BreakerSuccessLocked(ProfileState& ps) {
  ps.consecutive_failures = 0;
  if (ps.breaker != BreakerState::kClosed) {
    ps.breaker = BreakerState::kClosed;
    LogError("pool profile `", ps.profile.name,
             "` started a worker again; its circuit breaker is closed");
  }
}

void PoolManager::Impl::MarkFailedLocked(ProfileState& ps, Slot& slot) {
  if (!slot.failed) {
    slot.failed = true;
    ++ps.failed_total;
  }
}

void PoolManager::Impl::RequestStopLocked(Slot& slot, bool kill_now) {
  slot.worker.state = WorkerState::kDraining;
  slot.stop_requested = true;
  slot.stop_signal_pending = true;
  slot.kill_now = kill_now;
}

void PoolManager::Impl::ForgetLocked(ProfileState& ps, const Slot& slot) {
  std::erase_if(ps.slots, [&slot](const std::shared_ptr<Slot>& s) { return s.get() == &slot; });
}

void PoolManager::Impl::Wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: the reactor is woken anyway.
  ssize_t ignored = ::write(wake_fd_.Get(), &one, sizeof(one));
  (void)ignored;
}

absl::StatusOr<WorkerLease> PoolManager::Impl::Lease(std::string_view profile) {
  const TimePoint asked_at = Now();
  std::unique_lock lock(mu_);
  ProfileState* ps = FindLocked(profile);
  if (ps == nullptr) {
    std::string known;
    for (const auto& p : profiles_) {
      absl::StrAppend(&known, known.empty() ? "" : ", ", p->profile.name);
    }
    return absl::NotFoundError(absl::StrCat("no pool profile is named `", Sv(profile),
                                            "` (configured: ", known.empty() ? "none" : known,
                                            ")"));
  }
  if (shutting_down_) {
    return absl::UnavailableError(absl::StrCat("the worker pool is shutting down; profile `",
                                               ps->profile.name, "` leases no workers"));
  }
  if (Slot* warm = FindWarmLocked(*ps); warm != nullptr) {
    std::shared_ptr<Slot> slot;
    for (const auto& s : ps->slots) {
      if (s.get() == warm) {
        slot = s;
      }
    }
    WorkerLease lease = GrantLocked(*ps, slot, asked_at);
    lock.unlock();
    changed_.notify_all();
    Wake();  // start a replacement
    return lease;
  }
  if (ps->breaker == BreakerState::kOpen) {
    if (asked_at < ps->open_until) {
      return BreakerErrorLocked(*ps, asked_at);
    }
    ps->breaker = BreakerState::kHalfOpen;  // this lease waits for the probe worker
  }
  const LeaseQueue& queue = ps->profile.queue;
  if (ps->waiters.size() >= queue.max_waiting) {
    return absl::ResourceExhaustedError(
        absl::StrCat("pool profile `", ps->profile.name, "` has no free worker (maxWorkers ",
                     ps->profile.max_workers, ") and ", ps->waiters.size(),
                     " session(s) already wait for one (queue.maxWaiting ", queue.max_waiting,
                     "); try again later or raise the limits"));
  }
  Waiter waiter;
  waiter.asked_at = asked_at;
  ps->waiters.push_back(&waiter);
  changed_.notify_all();
  Wake();
  const TimePoint deadline = asked_at + queue.wait_timeout;
  while (!waiter.done) {
    if (waiter.cv.wait_until(lock, deadline) == std::cv_status::timeout) {
      break;
    }
  }
  if (!waiter.done) {
    std::erase(ps->waiters, &waiter);
    changed_.notify_all();
    ProfileStats now = SnapshotLocked(*ps);
    return absl::DeadlineExceededError(absl::StrCat(
        "pool profile `", ps->profile.name, "` had no free worker within queue.waitTimeout (",
        Ms(queue.wait_timeout), " ms): maxWorkers ", ps->profile.max_workers, ", ", now.leased,
        " leased, ", now.starting, " starting, ", now.draining, " stopping"));
  }
  if (!waiter.failure.ok()) {
    return waiter.failure;
  }
  lock.unlock();
  changed_.notify_all();
  Wake();
  return std::move(waiter.lease);
}

void PoolManager::Impl::Release(const WorkerLease& lease, uint64_t requests_served) {
  pid_t pid = -1;
  bool check_rss = false;
  {
    std::lock_guard lock(mu_);
    auto it = leases_.find(lease.id);
    if (it == leases_.end()) {
      return;
    }
    const Profile& profile = it->second->ps->profile;
    pid = it->second->worker.child.pid;
    check_rss = profile.isolation == Isolation::kShared && profile.recycle.rss_bytes > 0;
  }
  // Read outside the lock (a /proc read); the worker stays leased to us meanwhile.
  std::optional<uint64_t> rss;
  if (check_rss && pid > 0) {
    if (absl::StatusOr<uint64_t> bytes = ReadRssBytes(pid); bytes.ok()) {
      rss = *bytes;
    }
  }
  {
    std::lock_guard lock(mu_);
    auto it = leases_.find(lease.id);
    if (it == leases_.end()) {
      return;
    }
    std::shared_ptr<Slot> slot = it->second;
    leases_.erase(it);
    ProfileState& ps = *slot->ps;
    const Profile& profile = ps.profile;
    slot->lease_id = 0;
    ++slot->worker.sessions_served;
    slot->worker.requests_served += requests_served;
    if (slot->worker.state == WorkerState::kDead) {
      ForgetLocked(ps, *slot);
    } else if (slot->worker.state == WorkerState::kLeased) {
      const RecyclePolicy& recycle = profile.recycle;
      std::string why;
      if (profile.isolation == Isolation::kExclusive) {
        LogDebug(Tag(*slot), "session ended; stopping the exclusive worker");
      } else if (recycle.after_sessions > 0 &&
                 slot->worker.sessions_served >= recycle.after_sessions) {
        why = absl::StrCat("served ", slot->worker.sessions_served, " sessions");
      } else if (recycle.after_requests > 0 &&
                 slot->worker.requests_served >= recycle.after_requests) {
        why = absl::StrCat("served ", slot->worker.requests_served, " requests");
      } else if (rss && *rss > recycle.rss_bytes) {
        why = absl::StrCat("uses ", *rss / kMiB, " MiB resident, over the ",
                           recycle.rss_bytes / kMiB, " MiB ceiling");
      }
      if (profile.isolation == Isolation::kExclusive) {
        RequestStopLocked(*slot, false);
      } else if (!why.empty()) {
        LogDebug(Tag(*slot), "recycling the worker: it ", why);
        ++ps.recycled_total;
        RequestStopLocked(*slot, false);
      } else {
        MakeWarmLocked(ps, *slot);
      }
    }
  }
  changed_.notify_all();
  Wake();
}

void PoolManager::Impl::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (!shutting_down_) {
      shutting_down_ = true;
      for (const auto& ps : profiles_) {
        FailWaitersLocked(
            *ps, absl::UnavailableError(absl::StrCat("the worker pool is shutting down; profile `",
                                                     ps->profile.name, "` leases no workers")));
      }
    }
  }
  changed_.notify_all();
  std::lock_guard join(join_mu_);
  if (thread_.joinable()) {
    Wake();
    thread_.join();
  }
}

ProfileStats PoolManager::Impl::SnapshotLocked(const ProfileState& ps) const {
  ProfileStats stats;
  stats.profile = ps.profile.name;
  for (const auto& slot : ps.slots) {
    switch (slot->worker.state) {
      case WorkerState::kStarting:
        ++stats.starting;
        break;
      case WorkerState::kWarm:
        ++stats.warm;
        break;
      case WorkerState::kLeased:
        ++stats.leased;
        break;
      case WorkerState::kDraining:
        ++stats.draining;
        break;
      case WorkerState::kDead:
        break;
    }
  }
  stats.waiting = static_cast<uint32_t>(ps.waiters.size());
  stats.spawned_total = ps.spawned_total;
  stats.failed_total = ps.failed_total;
  stats.recycled_total = ps.recycled_total;
  stats.leases_total = ps.leases_total;
  stats.breaker = ps.breaker;
  stats.lease_wait = ps.lease_wait;
  return stats;
}

absl::StatusOr<ProfileStats> PoolManager::Impl::Stats(std::string_view profile) const {
  std::lock_guard lock(mu_);
  const ProfileState* ps = FindLocked(profile);
  if (ps == nullptr) {
    return absl::NotFoundError(absl::StrCat("no pool profile is named `", Sv(profile), "`"));
  }
  return SnapshotLocked(*ps);
}

std::vector<ProfileStats> PoolManager::Impl::AllStats() const {
  std::lock_guard lock(mu_);
  std::vector<ProfileStats> out;
  out.reserve(profiles_.size());
  for (const auto& ps : profiles_) {
    out.push_back(SnapshotLocked(*ps));
  }
  return out;
}

bool PoolManager::Impl::WaitForStats(std::string_view profile,
                                     const std::function<bool(const ProfileStats&)>& predicate,
                                     Duration timeout) const {
  const TimePoint deadline = Now() + timeout;
  std::unique_lock lock(mu_);
  const ProfileState* ps = FindLocked(profile);
  if (ps == nullptr) {
    return false;
  }
  return changed_.wait_until(lock, deadline, [&] { return predicate(SnapshotLocked(*ps)); });
}

// ---- reactor side ---------------------------------------------------------------------------

void PoolManager::Impl::ThreadMain(std::promise<absl::Status>* started) {
  // Signals are the main thread's business (mcpmw reads them from a signalfd); a worker that
  // vanishes mid-write must give EPIPE here, not kill mcpmw with SIGPIPE. Faults stay deliverable.
  sigset_t mask;
  ::sigfillset(&mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) {
    ::sigdelset(&mask, sig);
  }
  ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);

  // The ring is created here: it accepts submissions from its creating thread only.
  absl::StatusOr<std::unique_ptr<io::Ring>> ring = io::Ring::Create(256);
  if (!ring.ok()) {
    started->set_value(ring.status());
    return;
  }
  ring_ = ring->get();
  started->set_value(absl::OkStatus());
  io::Spawn(Control());
  ring_->Run();
  ring_ = nullptr;
}

io::Task<void> PoolManager::Impl::Control() {
  while (true) {
    Duration wait = Reconcile();
    if (done_) {
      break;
    }
    int ready = co_await io::PollOp(*ring_, wake_fd_.Get(), POLLIN, wait);
    if (ready > 0) {
      uint64_t count = 0;
      ssize_t ignored = ::read(wake_fd_.Get(), &count, sizeof(count));
      (void)ignored;
    }
  }
  // Every worker is reaped. A stderr pipe can still be held by a process that left its worker's
  // process group; stop reading it so the tasks can finish.
  for (io::Operation* read : stderr_reads_) {
    ring_->Cancel(read);
  }
  co_await tasks_.Join();
  ring_->Stop();
}

Duration PoolManager::Impl::Reconcile() {
  std::vector<std::shared_ptr<Slot>> to_start;
  std::vector<std::shared_ptr<Slot>> to_stop;
  std::vector<std::shared_ptr<Slot>> to_ping;
  const TimePoint now = Now();
  TimePoint next = now + kMaxIdleWake;
  {
    std::lock_guard lock(mu_);
    bool alive = false;
    for (const auto& ps_ptr : profiles_) {
      ProfileState& ps = *ps_ptr;
      const Profile& profile = ps.profile;
      uint32_t live = 0;
      uint32_t ready_or_starting = 0;
      std::vector<Slot*> idle;
      for (const auto& slot : ps.slots) {
        WorkerState state = slot->worker.state;
        if (state == WorkerState::kDead) {
          continue;
        }
        alive = true;
        ++live;
        if (shutting_down_ && state != WorkerState::kDraining) {
          RequestStopLocked(*slot, false);
          state = WorkerState::kDraining;
        }
        if (slot->stop_signal_pending) {
          slot->stop_signal_pending = false;
          to_stop.push_back(slot);
        }
        if (state == WorkerState::kStarting) {
          ++ready_or_starting;
        } else if (state == WorkerState::kWarm) {
          ++ready_or_starting;
          if (!slot->checking) {
            idle.push_back(slot.get());
          }
        }
      }
      if (shutting_down_) {
        continue;
      }

      if (ps.breaker == BreakerState::kOpen) {
        if (now >= ps.open_until) {
          ps.breaker = BreakerState::kHalfOpen;
          LogError("pool profile `", profile.name,
                   "`: circuit breaker half-open; starting one probe worker");
        } else {
          next = std::min(next, ps.open_until);
        }
      }

      // Idle workers above minWarm stop after idleTimeout, the longest idle first.
      std::sort(idle.begin(), idle.end(),
                [](const Slot* a, const Slot* b) { return a->idle_since < b->idle_since; });
      auto warm_count = static_cast<uint32_t>(idle.size());
      for (Slot* slot : idle) {
        if (warm_count <= profile.min_warm || !ps.waiters.empty()) {
          break;
        }
        TimePoint expires = slot->idle_since + profile.idle_timeout;
        if (expires > now) {
          next = std::min(next, expires);
          break;
        }
        LogDebug(Tag(*slot), "idle for ", Ms(now - slot->idle_since), " ms; stopping it");
        RequestStopLocked(*slot, false);
        slot->stop_signal_pending = false;
        for (const auto& s : ps.slots) {
          if (s.get() == slot) {
            to_stop.push_back(s);
          }
        }
        --warm_count;
        --ready_or_starting;
      }

      // Health pings on idle warm workers.
      if (profile.ping_interval.count() > 0) {
        for (const auto& slot : ps.slots) {
          if (slot->worker.state != WorkerState::kWarm || slot->checking) {
            continue;
          }
          TimePoint due = slot->last_check + profile.ping_interval;
          if (due <= now) {
            slot->checking = true;
            to_ping.push_back(slot);
          } else {
            next = std::min(next, due);
          }
        }
      }

      // Starts: keep minWarm ready, plus one for every queued lease, within maxWorkers.
      if (ps.breaker != BreakerState::kOpen) {
        const uint32_t want = profile.min_warm + static_cast<uint32_t>(ps.waiters.size());
        uint32_t n = want > ready_or_starting ? want - ready_or_starting : 0;
        n = std::min(n, profile.max_workers > live ? profile.max_workers - live : 0);
        if (ps.breaker == BreakerState::kHalfOpen) {
          bool probing = std::any_of(ps.slots.begin(), ps.slots.end(), [](const auto& s) {
            return s->worker.state == WorkerState::kStarting;
          });
          n = std::min<uint32_t>(n, probing ? 0 : 1);
        }
        for (uint32_t i = 0; i < n; ++i) {
          auto slot = std::make_shared<Slot>();
          slot->ps = &ps;
          slot->worker.id = absl::StrCat(profile.name, "-", ps.next_sequence++);
          slot->worker.started_at = now;
          ps.slots.push_back(slot);
          to_start.push_back(std::move(slot));
        }
      }
    }
    if (shutting_down_ && !alive) {
      done_ = true;
    }
  }
  for (auto& slot : to_start) {
    tasks_.Spawn(StartWorker(std::move(slot)));
  }
  for (auto& slot : to_stop) {
    tasks_.Spawn(StopWorker(std::move(slot)));
  }
  for (auto& slot : to_ping) {
    tasks_.Spawn(PingWorker(std::move(slot)));
  }
  changed_.notify_all();
  return std::max<Duration>(next - now, milliseconds(1));
}

io::Task<void> PoolManager::Impl::StartWorker(std::shared_ptr<Slot> slot) {
  ProfileState& ps = *slot->ps;
  const Profile& profile = ps.profile;  // immutable once the pool started
  SpawnOptions spawn;
  spawn.argv = profile.argv;
  spawn.env = BuildEnvironment(profile, environ);
  spawn.cwd = profile.cwd;
  spawn.capture_stderr = true;
  spawn.sandbox = &*ps.sandbox;
  spawn.worker_name = slot->worker.id;
  absl::StatusOr<Child> child = Spawn(spawn);
  const bool spawned = child.ok();
  {
    std::lock_guard lock(mu_);
    if (!child.ok()) {
      LogError(Tag(*slot), child.status().message());
      slot->worker.state = WorkerState::kDead;
      MarkFailedLocked(ps, *slot);
      BreakerFailureLocked(ps, std::string(child.status().message()));
      ForgetLocked(ps, *slot);
    } else {
      ++ps.spawned_total;
      slot->worker.pid = child->pid;
      slot->worker.child = *std::move(child);
      LogDebug(Tag(*slot), "started (pid ", slot->worker.pid, ")");
    }
  }
  if (!spawned) {
    changed_.notify_all();
    Wake();
    co_return;
  }
  tasks_.Spawn(WatchExit(slot));
  tasks_.Spawn(PumpStderr(slot));

  const bool initialize = profile.prewarm == Prewarm::kInitialize;
  if (!initialize && profile.readiness == Readiness::kSpawn) {
    {
      std::lock_guard lock(mu_);
      if (slot->worker.state == WorkerState::kStarting) {
        MakeWarmLocked(ps, *slot);
      }
    }
    changed_.notify_all();
    Wake();
    co_return;
  }
  std::string id = absl::StrCat(initialize ? "mcpmw-init-" : "mcpmw-ping-", next_request_++);
  std::string request =
      initialize
          ? absl::StrCat(R"({"jsonrpc":"2.0","id":")", id, R"(","method":"initialize","params":)",
                         options_.initialize_params, "}")
          : absl::StrCat(R"({"jsonrpc":"2.0","id":")", id, R"(","method":"ping"})");
  absl::StatusOr<ProbeAnswer> answer =
      co_await Converse(slot, std::move(request), std::move(id), profile.start_timeout);
  absl::Status failure = answer.status();
  if (failure.ok() && initialize && answer->is_error) {
    failure = absl::FailedPreconditionError(
        absl::StrCat("answered the prewarm initialize with an error: ", answer->body));
  }
  if (failure.ok() && initialize) {
    std::string note = R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
                       "\n";
    iovec iov{note.data(), note.size()};
    int written = co_await io::WriteAll(*ring_, slot->worker.child.stdin_fd.Get(), {&iov, 1});
    if (written < 0) {
      failure =
          absl::UnavailableError(absl::StrCat("cannot write to its stdin: ", ErrnoText(-written)));
    }
  }
  if (absl::IsUnavailable(failure) && slot->worker.child.pid > 0) {
    // Its pipes closed: it is most likely exiting. Let WatchExit report it with its exit status,
    // which tells the operator more than "closed its stdout".
    UniqueFd watch(::fcntl(slot->worker.child.pidfd.Get(), F_DUPFD_CLOEXEC, 0));
    if (watch.Valid()) {
      bool exited = co_await io::WaitPidfdFor(*ring_, watch.Get(), kExitGrace);
      if (exited) {
        co_return;
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    // Otherwise it died meanwhile (accounted by WatchExit) or the pool is shutting down.
    if (slot->worker.state == WorkerState::kStarting) {
      if (!failure.ok()) {
        std::string why = absl::StrCat(initialize ? "no usable answer to the prewarm initialize"
                                                  : "no answer to the start-up ping",
                                       " (", failure.message(), ")");
        LogError(Tag(*slot), why, "; killing it");
        MarkFailedLocked(ps, *slot);
        BreakerFailureLocked(ps, std::move(why));
        RequestStopLocked(*slot, true);
      } else {
        if (initialize) {
          slot->initialize_result = std::move(answer->body);
        }
        LogDebug(Tag(*slot), "warm after ", Ms(Now() - slot->worker.started_at), " ms");
        BreakerSuccessLocked(ps);
        MakeWarmLocked(ps, *slot);
      }
    }
  }
  changed_.notify_all();
  Wake();
}

io::Task<absl::StatusOr<ProbeAnswer>> PoolManager::Impl::Converse(std::shared_ptr<Slot> slot,
                                                                  std::string request,
                                                                  std::string id,
                                                                  Duration timeout) {
  const TimePoint deadline = Now() + timeout;
  request.push_back('\n');
  iovec iov{request.data(), request.size()};
  int written = co_await io::WriteAll(*ring_, slot->worker.child.stdin_fd.Get(), {&iov, 1});
  if (written < 0) {
    co_return absl::UnavailableError(
        absl::StrCat("cannot write to its stdin: ", ErrnoText(-written)));
  }
  const int out = slot->worker.child.stdout_fd.Get();
  std::string buffer;
  char chunk[4096];
  while (true) {
    Duration left = deadline - Now();
    if (left <= Duration::zero()) {
      co_return absl::DeadlineExceededError(absl::StrCat("no answer within ", Ms(timeout), " ms"));
    }
    int ready = co_await io::PollOp(*ring_, out, POLLIN, left);
    if (ready == -EINTR || ready == -EAGAIN) {
      continue;
    }
    if (ready == -ECANCELED || ready == -ETIME) {
      co_return absl::DeadlineExceededError(absl::StrCat("no answer within ", Ms(timeout), " ms"));
    }
    if (ready < 0) {
      co_return absl::InternalError(absl::StrCat("poll of its stdout: ", ErrnoText(-ready)));
    }
    // Readable (or hung up): this read does not block.
    ssize_t n = ::read(out, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      co_return absl::UnavailableError(absl::StrCat("reading its stdout: ", ErrnoText(errno)));
    }
    if (n == 0) {
      co_return absl::UnavailableError("it closed its stdout");
    }
    buffer.append(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n', start)) {
      std::optional<ProbeAnswer> answer =
          MatchResponse(std::string_view(buffer).substr(start, nl - start), id);
      if (answer) {
        co_return *std::move(answer);
      }
      start = nl + 1;
    }
    buffer.erase(0, start);
    if (buffer.size() > kMaxProbeLine) {
      co_return absl::ResourceExhaustedError("it wrote a line over 1 MiB without a newline");
    }
  }
}

io::Task<void> PoolManager::Impl::PingWorker(std::shared_ptr<Slot> slot) {
  const Profile& profile = slot->ps->profile;
  std::string id = absl::StrCat("mcpmw-ping-", next_request_++);
  std::string request = absl::StrCat(R"({"jsonrpc":"2.0","id":")", id, R"(","method":"ping"})");
  absl::StatusOr<ProbeAnswer> answer =
      co_await Converse(slot, std::move(request), std::move(id), profile.ping_timeout);
  {
    std::lock_guard lock(mu_);
    ProfileState& ps = *slot->ps;
    slot->checking = false;
    slot->last_check = Now();
    if (slot->worker.state == WorkerState::kWarm) {
      if (!answer.ok()) {
        LogError(Tag(*slot), "did not answer ping (", answer.status().message(),
                 "); killing and replacing it");
        MarkFailedLocked(ps, *slot);
        RequestStopLocked(*slot, true);
      } else {
        HandOffLocked(ps);
      }
    }
  }
  changed_.notify_all();
  Wake();
}

io::Task<void> PoolManager::Impl::StopWorker(std::shared_ptr<Slot> slot) {
  if (slot->worker.child.pid <= 0) {
    co_return;  // already reaped
  }
  if (slot->kill_now) {
    SignalChild(slot->worker.child, SIGKILL);
    co_return;  // WatchExit reaps it
  }
  // A duplicate, so this wait never polls a descriptor number that WatchExit's Reap closed and
  // something else reused.
  UniqueFd watch(::fcntl(slot->worker.child.pidfd.Get(), F_DUPFD_CLOEXEC, 0));
  SignalChild(slot->worker.child, SIGTERM);
  if (!watch.Valid()) {
    SignalChild(slot->worker.child, SIGKILL);
    co_return;
  }
  bool exited = co_await io::WaitPidfdFor(*ring_, watch.Get(), options_.kill_timeout);
  if (!exited && slot->worker.child.pid > 0) {
    LogError(Tag(*slot), "ignored SIGTERM for ", Ms(options_.kill_timeout), " ms; sending SIGKILL");
    SignalChild(slot->worker.child, SIGKILL);
  }
}

io::Task<void> PoolManager::Impl::WatchExit(std::shared_ptr<Slot> slot) {
  co_await io::WaitPidfd(*ring_, slot->worker.child.pidfd.Get());
  {
    std::lock_guard lock(mu_);
    ProfileState& ps = *slot->ps;
    absl::StatusOr<ExitStatus> status = Reap(slot->worker.child);
    std::string how = status.ok() ? status->Describe() : std::string(status.status().message());
    const WorkerState was = slot->worker.state;
    slot->worker.state = WorkerState::kDead;
    if (!slot->stop_requested) {
      LogError(Tag(*slot), "exited unexpectedly (", how, ") while ", Sv(WorkerStateName(was)));
      MarkFailedLocked(ps, *slot);
      if (was == WorkerState::kStarting || (was == WorkerState::kWarm && !slot->ever_leased)) {
        BreakerFailureLocked(ps,
                             absl::StrCat("a worker exited (", how, ") before its first lease"));
      }
    } else {
      LogDebug(Tag(*slot), "stopped (", how, ")");
    }
    if (slot->lease_id == 0) {
      ForgetLocked(ps, *slot);
    }
  }
  changed_.notify_all();
  Wake();
}

io::Task<void> PoolManager::Impl::PumpStderr(std::shared_ptr<Slot> slot) {
  const int fd = slot->worker.child.stderr_fd.Get();
  if (fd < 0) {
    co_return;
  }
  const std::string tag = Tag(*slot);
  std::string pending;
  char chunk[4096];
  while (true) {
    io::ReadOp read(*ring_, fd, {chunk, sizeof(chunk)});
    stderr_reads_.insert(&read);
    int n = co_await read;
    stderr_reads_.erase(&read);
    if (n == -EINTR || n == -EAGAIN) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    pending.append(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
      LogLine(absl::StrCat(tag, Sv(std::string_view(pending).substr(start, nl - start))));
      start = nl + 1;
    }
    pending.erase(0, start);
    while (pending.size() > kMaxStderrLine) {
      LogLine(absl::StrCat(tag, Sv(std::string_view(pending).substr(0, kMaxStderrLine))));
      pending.erase(0, kMaxStderrLine);
    }
  }
  if (!pending.empty()) {
    LogLine(absl::StrCat(tag, pending));
  }
}

// ---- PoolManager ----------------------------------------------------------------------------

PoolManager::PoolManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<PoolManager>> PoolManager::Start(std::vector<Profile> profiles,
                                                                PoolOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  MCPMW_RETURN_IF_ERROR(impl->Start(std::move(profiles)));
  return std::unique_ptr<PoolManager>(new PoolManager(std::move(impl)));
}

PoolManager::~PoolManager() { impl_->Shutdown(); }

absl::StatusOr<WorkerLease> PoolManager::Lease(std::string_view profile) {
  return impl_->Lease(profile);
}

void PoolManager::Release(const WorkerLease& lease, uint64_t requests_served) {
  impl_->Release(lease, requests_served);
}

void PoolManager::Shutdown() { impl_->Shutdown(); }

absl::StatusOr<ProfileStats> PoolManager::Stats(std::string_view profile) const {
  return impl_->Stats(profile);
}

std::vector<ProfileStats> PoolManager::AllStats() const { return impl_->AllStats(); }

bool PoolManager::WaitForStats(std::string_view profile,
                               const std::function<bool(const ProfileStats&)>& predicate,
                               Duration timeout) const {
  return impl_->WaitForStats(profile, predicate, timeout);
}

std::string PoolManager::RenderPrometheus() const { return RenderPoolMetrics(AllStats()); }

std::string RenderPoolMetrics(const std::vector<ProfileStats>& stats) {
  std::string out;
  auto family = [&out](std::string_view name, std::string_view type, std::string_view help) {
    absl::StrAppend(&out, "# HELP ", Sv(name), " ", Sv(help), "\n# TYPE ", Sv(name), " ", Sv(type),
                    "\n");
  };
  family("mcpmw_pool_workers", "gauge", "Workers per pool profile and state.");
  for (const ProfileStats& s : stats) {
    std::string profile = LabelValue(s.profile);
    for (auto [state, value] : {std::pair{"starting", s.starting}, std::pair{"warm", s.warm},
                                std::pair{"leased", s.leased}, std::pair{"draining", s.draining}}) {
      absl::StrAppend(&out, "mcpmw_pool_workers{profile=\"", profile, "\",state=\"", state, "\"} ",
                      value, "\n");
    }
  }
  family("mcpmw_pool_lease_waiting", "gauge", "Lease calls queued for a worker.");
  for (const ProfileStats& s : stats) {
    absl::StrAppend(&out, "mcpmw_pool_lease_waiting{profile=\"", LabelValue(s.profile), "\"} ",
                    s.waiting, "\n");
  }
  family("mcpmw_pool_lease_wait_seconds", "histogram",
         "Time from a lease request to the worker, for granted leases.");
  for (const ProfileStats& s : stats) {
    std::string profile = LabelValue(s.profile);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < LeaseWaitHistogram::kBucketsSeconds.size(); ++i) {
      cumulative += s.lease_wait.counts[i];
      absl::StrAppend(&out, "mcpmw_pool_lease_wait_seconds_bucket{profile=\"", profile, "\",le=\"",
                      LeaseWaitHistogram::kBucketsSeconds[i], "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "mcpmw_pool_lease_wait_seconds_bucket{profile=\"", profile,
                    R"(",le="+Inf"} )", s.lease_wait.count, "\n");
    absl::StrAppend(&out, "mcpmw_pool_lease_wait_seconds_sum{profile=\"", profile, "\"} ",
                    s.lease_wait.sum_seconds, "\n");
    absl::StrAppend(&out, "mcpmw_pool_lease_wait_seconds_count{profile=\"", profile, "\"} ",
                    s.lease_wait.count, "\n");
  }
  for (auto [name, help, field] :
       {std::tuple{"mcpmw_pool_workers_spawned_total", "Worker processes started.",
                   &ProfileStats::spawned_total},
        std::tuple{"mcpmw_pool_workers_failed_total",
                   "Workers that failed to start, failed a health ping or exited unasked.",
                   &ProfileStats::failed_total},
        std::tuple{"mcpmw_pool_workers_recycled_total",
                   "Shared workers retired by the recycle policy.",
                   &ProfileStats::recycled_total}}) {
    family(name, "counter", help);
    for (const ProfileStats& s : stats) {
      absl::StrAppend(&out, name, "{profile=\"", LabelValue(s.profile), "\"} ", s.*field, "\n");
    }
  }
  family("mcpmw_pool_breaker_open", "gauge",
         "1 while the profile's circuit breaker is open (leases fail fast), else 0.");
  for (const ProfileStats& s : stats) {
    absl::StrAppend(&out, "mcpmw_pool_breaker_open{profile=\"", LabelValue(s.profile), "\"} ",
                    s.breaker == BreakerState::kOpen ? 1 : 0, "\n");
  }
  return out;
}

}  // namespace mcpmw::pool
