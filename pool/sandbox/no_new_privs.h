// mcpmw pool sandbox step `no_new_privs`: prctl(PR_SET_NO_NEW_PRIVS) in the child.
//
// With the bit set, exec can never grant privileges (setuid/setgid bits and file capabilities are
// ignored), it survives exec and fork, and it lets an unprivileged mcpmw load a seccomp filter.
// Visible as "NoNewPrivs: 1" in /proc/<pid>/status.
#pragma once

#include "pool/sandbox/host.h"

namespace mcpmw::pool::sandbox {

// Whether the kernel knows PR_SET_NO_NEW_PRIVS (Linux 3.5+).
Feature ProbeNoNewPrivs();

// Child side, between fork and exec: sets the bit. Async-signal-safe. Returns 0 or an errno.
int ApplyNoNewPrivs();

}  // namespace mcpmw::pool::sandbox
