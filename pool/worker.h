// mcpmw pool: one worker, a running server process of a profile.
//
// The pool manager (pool/pool_manager.h) owns every Worker and moves it through its states:
//
//   kStarting ──probe answered──► kWarm ──Lease──► kLeased ──Release (shared)──► kWarm
//       │                           │                 │
//       └──────── failed ──────┐    └─ idle timeout, ─┴─ Release (exclusive), recycle ─► kDraining
//                              ▼       failed ping                                         │
//                            kDead ◄───────────────────── exited and reaped ◄──────────────┘
//
// A worker that exits on its own goes to kDead from any state. Threading: a Worker is plain data
// guarded by its pool manager's lock; ReadRssBytes is thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pool/process.h"
#include "src/common/clock.h"

namespace mcpmw::pool {

enum class WorkerState {
  kStarting,  // spawned; the start-up probe (ping, or the prewarm initialize) is not answered yet
  kWarm,      // ready and idle, waiting for a lease (may be in a health ping)
  kLeased,    // handed to a session
  kDraining,  // being stopped (SIGTERM, then SIGKILL after the kill timeout)
  kDead,      // exited and reaped
};

// "starting", "warm", "leased", "draining", "dead" (also the metrics' `state` label values).
std::string_view WorkerStateName(WorkerState state);

struct Worker {
  std::string id;  // "<profile>-<sequence>", unique for the pool's life; logs and metrics use it
  Child child;     // pid -1 once reaped; the pipe fds stay open until the Worker is destroyed
  pid_t pid = -1;  // the pid it had, kept after reaping for logs
  WorkerState state = WorkerState::kStarting;
  TimePoint started_at{};
  uint64_t sessions_served = 0;  // leases released
  uint64_t requests_served = 0;  // as reported by the sessions that released it
};

// The resident set size of process `pid` in bytes, from /proc/<pid>/statm (resident pages times
// the page size). NotFound when the process is gone.
absl::StatusOr<uint64_t> ReadRssBytes(pid_t pid);

}  // namespace mcpmw::pool
