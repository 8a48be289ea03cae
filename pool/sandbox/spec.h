// mcpmw pool sandbox: what confinement a worker gets.
//
// A Spec is plain data, filled from a profile (`"sandbox": {...}` in a config file, or the
// sidecar's flags) and applied by pool/sandbox/ in one ordered list of steps in the child before
// exec. Each step is `kOff` (not applied), `kOptional` (applied when the host can; skipped and
// logged otherwise) or `kRequired` (the profile refuses to start, with a message naming the step
// and the host's missing feature).
#pragma once

#include <cstdint>
#include <optional>

namespace mcpmw::pool::sandbox {

enum class Requirement { kOff, kOptional, kRequired };

// setrlimit(2) values; unset means "leave the inherited limit".
struct Rlimits {
  std::optional<uint64_t> open_files;           // RLIMIT_NOFILE
  std::optional<uint64_t> address_space_bytes;  // RLIMIT_AS
  std::optional<uint64_t> cpu_seconds;          // RLIMIT_CPU
  bool core_dumps = false;                      // false: RLIMIT_CORE = 0
};

// One cgroup per worker (v2 where delegated, else v1 controllers); killed as a whole at teardown.
struct CgroupLimits {
  std::optional<uint64_t> memory_bytes;  // memory.max / memory.limit_in_bytes
  std::optional<uint64_t> pids_max;      // pids.max
  std::optional<uint32_t> cpu_percent;   // cpu.max / cfs_quota_us, percent of one CPU
};

enum class Network {
  kAllow,  // sockets of any family
  kNone,   // seccomp refuses socket(2)/socketpair(2) for every family other than AF_UNIX
};

struct Namespaces {
  bool pid = false;
  bool net = false;  // an empty network namespace (loopback down): no network at all
  bool mount = false;
  bool user = false;
};

struct Spec {
  Requirement no_new_privs = Requirement::kRequired;
  Requirement rlimits = Requirement::kRequired;
  Rlimits rlimit_values;
  Requirement cgroup = Requirement::kOff;
  CgroupLimits cgroup_limits;
  // The default deny list of syscalls no tool server needs (mount, reboot, kexec, ptrace, bpf,
  // module loading, ...) plus `network`.
  Requirement seccomp = Requirement::kOff;
  Network network = Network::kAllow;
  Requirement namespaces = Requirement::kOff;
  Namespaces namespace_set;
};

}  // namespace mcpmw::pool::sandbox
