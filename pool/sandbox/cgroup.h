// mcpmw pool sandbox step `cgroup`: one cgroup per worker, killed as a whole at teardown.
//
// Where the unified (v2) hierarchy has the controllers delegated to mcpmw's own cgroup, a worker
// cgroup is one directory there (memory.max, pids.max, cpu.max). Otherwise each v1 hierarchy
// that carries a needed controller (memory, pids, cpu) gets a directory, and on a hybrid host a
// controller-less directory in the unified hierarchy is added for its cgroup.kill. Lifecycle:
//
//   parent, before fork   WorkerCgroup::Create: mkdir below mcpmw's own cgroup, write limits,
//                         open each cgroup.procs for writing (O_CLOEXEC)
//   child, before exec    JoinCgroupInChild: writes "0" (itself) to every cgroup.procs fd, so the
//                         server and everything it forks are accounted from its first instruction
//   parent, after exit    WorkerCgroup::Teardown: cgroup.kill (v2) or SIGKILL of every listed pid
//                         until cgroup.procs is empty (v1), then rmdir of every directory
//
// This catches what the process-group kill cannot: grandchildren that called setsid() or
// setpgid() to leave the worker's group, and double-forked daemons.
#pragma once

#include <sys/types.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pool/sandbox/host.h"
#include "pool/sandbox/spec.h"
#include "src/common/fd.h"

namespace mcpmw::pool::sandbox {

// Which directories a worker cgroup gets and which limit files are written in each; decided once
// per profile by LayOutCgroup.
struct CgroupLayout {
  struct Hierarchy {
    CgroupVersion version = CgroupVersion::kV1;
    std::string parent_dir;
    bool memory = false;  // write the memory limit here
    bool pids = false;
    bool cpu = false;
  };
  std::vector<Hierarchy> hierarchies;  // never empty
};

// Fills the cgroup half of HostCapabilities from /proc/self/mountinfo and /proc/self/cgroup.
// May create and remove one empty probe directory in the unified hierarchy.
CgroupHost ProbeCgroups();

// Picks the hierarchies for `limits` on `host`. Fails with FailedPrecondition when a controller
// a limit needs is unusable, the message being what the host lacks ("no writable cgroup memory
// controller (…)"); with InvalidArgument for a limit the kernel cannot take (cpu_percent 0).
absl::StatusOr<CgroupLayout> LayOutCgroup(const CgroupLimits& limits, const CgroupHost& host);

// The descriptors the child writes itself into; plain data, read between fork and exec.
struct CgroupJoin {
  std::array<int, 4> fds{-1, -1, -1, -1};
  int count = 0;
};

// Child side: moves the calling process into every cgroup of `join`. Async-signal-safe. Returns 0
// or an errno (EBUSY/EINVAL from a v2 cgroup that has controllers in its subtree_control).
int JoinCgroupInChild(const CgroupJoin& join);

// Owns one worker's cgroup directories. Move-only; the destructor runs Teardown() (and logs a
// failure), so dropping the owner never leaks a process or a directory. Not thread-safe.
class WorkerCgroup {
 public:
  WorkerCgroup() = default;
  WorkerCgroup(WorkerCgroup&& other) noexcept;
  WorkerCgroup& operator=(WorkerCgroup&& other) noexcept;
  WorkerCgroup(const WorkerCgroup&) = delete;
  WorkerCgroup& operator=(const WorkerCgroup&) = delete;
  ~WorkerCgroup();

  // Creates "mcpmw-<mcpmw pid>-<worker_name>-<n>" under every hierarchy of `layout` and writes
  // `limits`. On failure nothing is left behind; the message names the directory or file.
  static absl::StatusOr<WorkerCgroup> Create(const CgroupLayout& layout, const CgroupLimits& limits,
                                             std::string_view worker_name);

  bool empty() const { return dirs_.empty(); }
  // The worker's directories, the first one being the one whose cgroup.procs Pids() reads.
  const std::vector<std::string>& dirs() const { return dirs_; }
  // What the child needs to join; valid until CloseJoinFds() or destruction.
  CgroupJoin join() const;
  // The parent calls this once the child has been started (the child holds its own copies).
  void CloseJoinFds();

  // The processes in the cgroup now (thread-group ids as the parent's pid namespace sees them).
  absl::StatusOr<std::vector<pid_t>> Pids() const;

  // Kills every process in the cgroup, waits (bounded, a few seconds) until it is empty, then
  // removes every directory. Idempotent: a second call after success does nothing. Fails with
  // DeadlineExceeded when processes survive (an uninterruptible sleep), or with the rmdir error;
  // the directories are then kept so a later call can retry.
  absl::Status Teardown();

 private:
  std::vector<std::string> dirs_;
  int kill_file_dir_ = -1;  // index into dirs_ of a v2 directory with cgroup.kill, or -1
  std::vector<UniqueFd> join_fds_;
};

}  // namespace mcpmw::pool::sandbox
