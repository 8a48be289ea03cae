// mcpmw pool sandbox step `namespaces`: new pid, net, mount and user namespaces for a worker.
//
// The namespaces are created by Spawn()'s clone(2) (CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWNS,
// CLONE_NEWUSER), not by unshare(2) in the child: unshare(CLONE_NEWPID) only moves the caller's
// future children into the new pid namespace, so the server itself would stay outside it. With
// clone the server is pid 1 of its namespace, which means:
//   - when it exits, the kernel SIGKILLs everything else in the namespace (no orphans);
//   - like any pid 1 it receives only signals it has a handler for, except SIGKILL and SIGSTOP
//     sent from mcpmw's namespace: a server without a SIGTERM handler ignores SIGTERM, and the
//     governor's kill timeout ends in SIGKILL;
//   - /proc is not remounted, so it still shows the host's processes (remounting needs mount(2),
//     which the seccomp deny list refuses).
// In the child, before seccomp, SetUpNamespacesInChild maps uid and gid 0 inside a new user
// namespace to mcpmw's own ids outside (writing "deny" to setgroups first, as the kernel requires
// for an unprivileged map), and makes every mount in a new mount namespace private, so mounts made
// inside never propagate back to the host. A new net namespace is empty: loopback is down and
// there is no route anywhere.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pool/sandbox/host.h"
#include "pool/sandbox/spec.h"

namespace mcpmw::pool::sandbox {

// What the clone and the child need, computed before fork.
struct PreparedNamespaces {
  uint64_t clone_flags = 0;  // CLONE_NEW* for Spawn's clone
  bool user = false;
  bool mount = false;
  char uid_map[32] = {};  // "0 <euid> 1\n"
  size_t uid_map_size = 0;
  char gid_map[32] = {};
  size_t gid_map_size = 0;
};

PreparedNamespaces PrepareNamespaces(const Namespaces& wanted);

// Whether this process may create a namespace of `clone_flag`'s type (one of CLONE_NEWUSER,
// CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWNS): forks a child that unshares it and, for user and
// mount namespaces, sets it up as Spawn would. `name` is used in the reason.
Feature ProbeNamespace(int clone_flag, const char* name);

// Child side, right after clone: writes the user namespace maps and makes mounts private.
// Async-signal-safe. Returns 0 or an errno.
int SetUpNamespacesInChild(const PreparedNamespaces& prepared);

}  // namespace mcpmw::pool::sandbox
