// mcpmw pool: a profile, the recipe for one upstream server's workers.
//
// A profile says what to run (argv, no shell), in which environment (an allowlist of names kept
// from mcpmw's own environment plus explicit values; everything else is scrubbed) and directory,
// how many workers to keep started ahead of demand and at most, how sessions share them
// (`exclusive`: one session per worker, discarded afterwards; `shared`: returned to service
// until recycled), how they are health-checked and recycled, how long a session may queue for
// one, when the profile's circuit breaker opens, and the sandbox each worker runs in. The pool
// manager (pool/pool_manager.h) runs profiles; profiles come from the config file
// (ParseProfile) and from the sidecar's command line (ProfileFromCommandLine).
//
// The JSON shape (every key but "name" and "command" is optional; unknown keys are errors; every
// error message starts with the JSON pointer of the bad value, e.g. "/recycle/rssMb: …"):
//
//   {
//     "name": "everything",                  // [A-Za-z0-9._-]+, used in worker ids and metrics
//     "command": ["node", "dist/index.js"],  // argv; argv[0] is looked up on PATH without '/'
//     "env": {"allow": ["PATH", "HOME"],     // names kept from mcpmw's environment
//             "set": {"LOG_LEVEL": "warn"}}, // explicit values (win over an allowed name)
//     "cwd": "/srv",                         // "" (default): mcpmw's working directory
//     "minWarm": 2,                          // workers kept started ahead of demand (default 0)
//     "maxWorkers": 8,                       // workers alive at once, leased or not (default 1)
//     "idleTimeoutMs": 60000,                // idle workers above minWarm stop after this
//     "isolation": "exclusive",              // or "shared"
//     "prewarm": "none",                     // or "initialize" (see Prewarm)
//     "readiness": "ping",                   // or "spawn" (see Readiness)
//     "recycle": {"afterSessions": 100, "afterRequests": 10000, "rssMb": 512},  // 0: never
//     "queue": {"maxWaiting": 64, "waitTimeoutMs": 5000},
//     "pingIntervalMs": 30000,               // 0: no periodic ping of idle workers
//     "pingTimeoutMs": 5000,                 // a ping (or the start-up probe) unanswered → killed
//     "startTimeoutMs": 30000,               // start-up probe / prewarm initialize answer budget
//     "breaker": {"failures": 5, "openMs": 10000},
//     "sandbox": {
//       "noNewPrivs": "required",            // each "require" is "required", "optional" or "off"
//       "rlimits": {"require": "required", "openFiles": 1024, "addressSpaceMb": 4096,
//                   "cpuSeconds": 600, "coreDumps": false},
//       "cgroup": {"require": "optional", "memoryMb": 512, "pidsMax": 128, "cpuPercent": 100},
//       "seccomp": {"require": "optional", "network": "none"},   // or "allow"
//       "namespaces": {"require": "off", "pid": false, "net": false, "mount": false,
//                      "user": false}
//     }
//   }
//
// Pure data and pure functions: thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/sandbox/spec.h"
#include "simdjson.h"

namespace mcpmw::pool {

enum class Isolation {
  kExclusive,  // one session per worker; the worker is killed after that session
  kShared,     // the worker returns to service after a lease, until it is recycled
};

enum class Prewarm {
  kNone,        // a worker is warm once it answers the start-up `ping`
  kInitialize,  // the pool sends `initialize` (+ `notifications/initialized`) ahead and keeps the
                // server's result for the session to replay; only for servers whose initialize
                // answer does not depend on the client
};

// When a started worker counts as warm (ready for a lease).
enum class Readiness {
  kPing,   // once it answers a JSON-RPC `ping` on stdio (any response with the ping's id)
  kSpawn,  // as soon as exec succeeded: for servers that must see the client's messages first
           // (or speak another framing); the breaker then counts a worker's first lease as its
           // success
};

std::string_view IsolationName(Isolation isolation);
std::string_view PrewarmName(Prewarm prewarm);

// When a shared worker is retired and replaced; a zero field never triggers.
struct RecyclePolicy {
  uint64_t after_sessions = 0;
  uint64_t after_requests = 0;
  uint64_t rss_bytes = 0;
};

// The bounded queue a Lease waits in when every worker is busy and maxWorkers is reached.
struct LeaseQueue {
  uint32_t max_waiting = 64;
  std::chrono::milliseconds wait_timeout{5000};
};

// Opens after `failures` consecutive start failures or early deaths; stays open for `open_for`,
// then lets one probe start through (half-open); the probe's success closes it.
struct BreakerPolicy {
  uint32_t failures = 5;
  std::chrono::milliseconds open_for{10000};
};

struct Profile {
  std::string name;
  std::vector<std::string> argv;
  std::vector<std::string> env_allow;          // names kept from mcpmw's environment
  std::map<std::string, std::string> env_set;  // explicit values
  std::string cwd;                             // empty: inherit mcpmw's
  uint32_t min_warm = 0;
  uint32_t max_workers = 1;
  std::chrono::milliseconds idle_timeout{60000};
  Isolation isolation = Isolation::kExclusive;
  Prewarm prewarm = Prewarm::kNone;
  Readiness readiness = Readiness::kPing;  // ignored with prewarm initialize (its answer decides)
  RecyclePolicy recycle;
  LeaseQueue queue;
  std::chrono::milliseconds ping_interval{30000};  // 0: no periodic ping
  std::chrono::milliseconds ping_timeout{5000};
  std::chrono::milliseconds start_timeout{30000};
  BreakerPolicy breaker;
  sandbox::Spec sandbox;
};

// Parses one profile object (the shape above). Errors are InvalidArgument and start with the JSON
// pointer of the offending value ("/queue/maxWaiting: expected a whole number ≥ 0, found a
// string").
absl::StatusOr<Profile> ParseProfile(std::string_view json);

// The same for a profile embedded in a larger document (a config file's `"pools": [...]`);
// `pointer` is where `element` sits ("/pools/0") and prefixes every error. `element` must stay
// valid during the call only.
absl::StatusOr<Profile> ParseProfileElement(simdjson::dom::element element,
                                            std::string_view pointer);

// The sidecar's profile (`mcpmw stdio -- CMD ARGS…`): one exclusive worker, started ahead of the
// client when `warm` (minWarm 1) or on the first lease (minWarm 0). The sidecar has always given
// its server mcpmw's whole environment, so every name in `envp` is allowed. The pool sends the
// server nothing (readiness `spawn`, no health pings): the client's own messages come first.
// InvalidArgument when argv is empty.
absl::StatusOr<Profile> ProfileFromCommandLine(std::vector<std::string> argv,
                                               const char* const* envp, bool warm);

// The worker's complete environment, KEY=VALUE: the entries of `envp` (mcpmw's environment, e.g.
// `environ`) whose names `profile.env_allow` lists, in `envp` order, then `profile.env_set` in
// name order; a `set` value replaces an allowed entry of the same name. Nothing else passes.
std::vector<std::string> BuildEnvironment(const Profile& profile, const char* const* envp);

}  // namespace mcpmw::pool
