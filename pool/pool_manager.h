// mcpmw pool: the pool manager — warm workers per profile, leased to sessions.
//
// Place: ARCHITECTURE.md §6. A session does not start its MCP server; it leases a worker:
//
//   Lease(profile) ──warm worker?──yes──► WorkerLease{stdin, stdout, cached initialize}  (µs)
//        │                                    │  a replacement starts in the background
//        no: wait in the profile's bounded queue (maxWaiting, waitTimeout) for a worker that
//            starts (below maxWorkers) or is released; then ResourceExhausted/DeadlineExceeded
//   Release(lease) ── exclusive: SIGTERM, SIGKILL after the kill timeout, reaped, never reused
//                  └─ shared: back to warm, until recycled (N sessions, N requests, RSS ceiling)
//
// Per profile the manager keeps `minWarm` workers started and ready. A worker is ready once it
// answered its start-up probe on stdio: a JSON-RPC `ping` (any response carrying the ping's id,
// result or error, proves the runtime is loaded and reading), or with `prewarm: initialize` the
// `initialize` request, whose result is kept and handed to every lease of that worker so the
// session can replay it (`notifications/initialized` is sent right after). With `readiness:
// spawn` (the sidecar's profile) a worker is ready once exec succeeded and the manager writes it
// nothing before its session; its first lease counts as the breaker's success. The manager speaks
// newline-delimited JSON to workers, the MCP stdio standard; what a worker writes on stdout while
// no session holds it, other than the answers the manager waits for, is discarded.
//
// Health and failure: idle warm workers are pinged every `pingInterval`; one that does not answer
// within `pingTimeout` is killed and replaced. Idle workers above `minWarm` stop after
// `idleTimeout`. Every exit is reaped (pidfd) and every worker that exits without being asked to,
// fails its start-up probe or its ping counts as failed. A profile's circuit breaker opens after
// `breaker.failures` consecutive start failures or early deaths (a death before the worker's
// first lease): leases then fail fast with Unavailable, saying when the pool retries; after
// `breaker.openMs` one probe worker starts (half-open; leases queue for it) and its readiness
// closes the breaker, its failure reopens it. mcpmw must run with SIGPIPE ignored or blocked
// (it does); the reactor thread blocks it for itself. Worker stderr is read by the manager and each
// line logged as "[profile/worker-id] line".
//
// Threading: the manager runs its own reactor thread (an io::Ring) which spawns, probes, pings,
// stops and reaps every worker (so PR_SET_PDEATHSIG ties the workers to that thread, which lives
// as long as the manager). All bookkeeping is guarded by one mutex; other threads call Lease,
// Release, Stats, WaitForStats, RenderPrometheus and Shutdown, which take the mutex briefly and
// wake the reactor through an eventfd when it has work to do. A warm lease is served entirely on
// the caller's thread under the mutex (no reactor round trip). Lease must not be called on the
// reactor thread (nothing runs there but the manager).
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/profile.h"
#include "pool/sandbox/host.h"
#include "pool/worker.h"
#include "src/common/clock.h"

namespace mcpmw::pool {

struct PoolOptions {
  // SIGTERM to SIGKILL when a worker is stopped (the governor's kill timeout).
  std::chrono::milliseconds kill_timeout{3000};
  // What this host can provide for each profile's sandbox; probed (sandbox::ProbeHost) at Start
  // when unset.
  std::optional<sandbox::HostCapabilities> host;
  // The `params` of the prewarm `initialize` request (JSON object text).
  std::string initialize_params = R"({"protocolVersion":"2025-06-18","capabilities":{},)"
                                  R"("clientInfo":{"name":"mcpmw","version":"0.1.0"}})";
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
std::string_view BreakerStateName(BreakerState state);  // "closed", "open", "half-open"

// Lease waits (time from Lease() to the worker, for successful leases), in fixed buckets.
struct LeaseWaitHistogram {
  static constexpr std::array<double, 7> kBucketsSeconds = {0.0001, 0.001, 0.01, 0.1, 1, 5, 30};
  std::array<uint64_t, kBucketsSeconds.size()> counts{};  // per bucket, not cumulative
  uint64_t count = 0;                                     // all observations (+Inf included)
  double sum_seconds = 0;
  void Observe(double seconds);
};

// A snapshot of one profile's pool, consistent at one instant.
struct ProfileStats {
  std::string profile;
  uint32_t starting = 0;
  uint32_t warm = 0;  // ready and not leased (including one in a health ping)
  uint32_t leased = 0;
  uint32_t draining = 0;
  uint32_t waiting = 0;         // Lease calls queued
  uint64_t spawned_total = 0;   // processes started
  uint64_t failed_total = 0;    // start failures, failed pings, unrequested exits
  uint64_t recycled_total = 0;  // shared workers retired by the recycle policy
  uint64_t leases_total = 0;
  BreakerState breaker = BreakerState::kClosed;
  LeaseWaitHistogram lease_wait;
};

// A worker handed to one session. The fds are borrowed: they stay open, and belong to this
// session alone, until Release(); the session must not close them.
struct WorkerLease {
  uint64_t id = 0;  // 0: not a lease
  std::string profile;
  std::string worker_id;  // "<profile>-<sequence>"
  pid_t pid = -1;
  int stdin_fd = -1;   // write end of the worker's stdin
  int stdout_fd = -1;  // read end of the worker's stdout
  // With prewarm initialize: the server's `initialize` result (JSON object text, minified); the
  // worker has also been sent `notifications/initialized`.
  std::optional<std::string> initialize_result;
  Duration waited{};  // how long Lease() took
};

class PoolManager {
 public:
  // Plans each profile's sandbox against the host, starts the reactor thread and the profiles'
  // minWarm workers (in the background; see WaitForStats). Optional sandbox steps the host lacks
  // are logged. Fails, naming the profile, with InvalidArgument for duplicate names or a
  // contradictory sandbox, FailedPrecondition for a required sandbox step the host cannot
  // provide or when io_uring is unavailable.
  static absl::StatusOr<std::unique_ptr<PoolManager>> Start(std::vector<Profile> profiles,
                                                            PoolOptions options = {});
  // Shutdown(), then frees everything; every lease must have been released (or abandoned: its
  // fds close here).
  ~PoolManager();
  PoolManager(const PoolManager&) = delete;
  PoolManager& operator=(const PoolManager&) = delete;

  // Leases a worker of `profile`. Any thread but the reactor's. Errors, each naming the profile:
  //   NotFound           no such profile
  //   Unavailable        the circuit breaker is open (the message says when it retries), or the
  //                      pool is shutting down
  //   ResourceExhausted  no worker is free and queue.maxWaiting sessions already wait
  //   DeadlineExceeded   no worker became free within queue.waitTimeout
  absl::StatusOr<WorkerLease> Lease(std::string_view profile);

  // Gives the worker back after its session, which made `requests_served` requests on it.
  // Exclusive workers are stopped and reaped; shared ones return to service unless the recycle
  // policy retires them. Releasing a lease twice, or one from another manager, does nothing.
  void Release(const WorkerLease& lease, uint64_t requests_served);

  // Stops every worker (SIGTERM, SIGKILL after the kill timeout, leased ones too), reaps them and
  // joins the reactor thread; pending and later Lease calls fail with Unavailable. Idempotent.
  void Shutdown();

  // Snapshots; NotFound for an unknown profile. Any thread.
  absl::StatusOr<ProfileStats> Stats(std::string_view profile) const;
  std::vector<ProfileStats> AllStats() const;

  // Blocks until `predicate(Stats(profile))` holds or `timeout` passes; returns whether it held.
  // For start-up ("wait until minWarm are warm") and tests. Any thread but the reactor's.
  bool WaitForStats(std::string_view profile,
                    const std::function<bool(const ProfileStats&)>& predicate,
                    Duration timeout) const;

  // AllStats() in the Prometheus text format (see RenderPoolMetrics).
  std::string RenderPrometheus() const;

 private:
  class Impl;
  explicit PoolManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Renders `stats` as Prometheus text (exposition format 0.0.4):
//   mcpmw_pool_workers{profile,state}        gauge: starting, warm, leased, draining
//   mcpmw_pool_lease_waiting{profile}        gauge: Lease calls queued
//   mcpmw_pool_lease_wait_seconds{profile}   histogram: time to a successful lease
//   mcpmw_pool_workers_spawned_total{profile}
//   mcpmw_pool_workers_failed_total{profile}
//   mcpmw_pool_workers_recycled_total{profile}
//   mcpmw_pool_breaker_open{profile}         gauge: 1 while leases fail fast, else 0
std::string RenderPoolMetrics(const std::vector<ProfileStats>& stats);

}  // namespace mcpmw::pool
