// mcpmw pool sandbox step `seccomp`: a syscall deny list, plus `network: none`.
//
// The filter allows by default and refuses, with EPERM, the system calls no tool server needs and
// that would let a compromised one reach past its sandbox: mounting (old and new mount API),
// pivot_root, reboot, kexec, kernel modules, ptrace and cross-process memory access, bpf,
// perf_event_open, swap, process accounting, setting the clock, the kernel keyring,
// userfaultfd, file handles (open_by_handle_at), raw port I/O, the kernel log.
//
// `network: none` adds: socket(2) and socketpair(2) with any family other than AF_UNIX fail with
// EAFNOSUPPORT (as if the kernel had no such family; servers handle that gracefully), and
// io_uring_setup fails with EPERM (io_uring can open sockets itself since Linux 5.19, bypassing
// the socket(2) rule). AF_UNIX stays: local IPC and language runtimes need it.
//
// The filter is compiled once per profile with libseccomp in the parent and exported as classic
// BPF; the child loads it with prctl(PR_SET_SECCOMP) and allocates nothing. Only the native
// architecture is allowed: a system call made through another ABI (int 0x80, x32) kills the
// process, so the deny list cannot be bypassed that way. Visible as "Seccomp: 2" in
// /proc/<pid>/status.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "absl/status/statusor.h"
#include "pool/sandbox/host.h"
#include "pool/sandbox/spec.h"

namespace mcpmw::pool::sandbox {

// Whether the kernel takes seccomp filters that return errno values, and libseccomp can build
// one for this architecture.
Feature ProbeSeccomp();

// Whether this process may load a filter without no_new_privs (CAP_SYS_ADMIN in its effective
// set).
bool CanSeccompWithoutNoNewPrivs();

// A compiled filter. Move-only by value semantics of the vector; Program() points into it.
class SeccompFilter {
 public:
  // Compiles the deny list (and the `network: none` rules when asked). Fails with Internal when
  // libseccomp refuses, naming the rule.
  static absl::StatusOr<SeccompFilter> Build(Network network);

  // The program for prctl(PR_SET_SECCOMP); valid while this object lives and is not moved from.
  sock_fprog Program() const;
  size_t instruction_count() const { return instructions_.size(); }

 private:
  std::vector<sock_filter> instructions_;
};

// Child side, between fork and exec: loads `program`. Async-signal-safe. Returns 0 or an errno
// (EACCES: neither no_new_privs nor CAP_SYS_ADMIN).
int ApplySeccompInChild(const sock_fprog& program);

}  // namespace mcpmw::pool::sandbox
