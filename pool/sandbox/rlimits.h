// mcpmw pool sandbox step `rlimits`: setrlimit(2) in the child.
//
// Open files, address space and CPU time as the Spec says, and core dumps off unless asked for
// (a core of a tool server may hold a client's secrets). Hard limits are lowered with the soft
// ones, so the server cannot raise them again. CPU time gets a hard limit one second above the
// soft one: at the soft limit the kernel sends SIGXCPU (the server may log and exit), at the hard
// one SIGKILL. Note that RLIMIT_CORE does not stop a core_pattern that pipes to a program.
#pragma once

#include <sys/resource.h>

#include <array>

#include "pool/sandbox/host.h"
#include "pool/sandbox/spec.h"

namespace mcpmw::pool::sandbox {

// The setrlimit calls the child makes, computed before fork.
struct PreparedRlimits {
  struct Entry {
    int resource = 0;
    rlimit value{};
  };
  std::array<Entry, 4> entries{};
  int count = 0;
};

// Always available on Linux; the probe only confirms getrlimit works.
Feature ProbeRlimits();

PreparedRlimits PrepareRlimits(const Rlimits& values);

// Child side: applies every entry in order. Async-signal-safe. Returns 0 or the errno of the
// first setrlimit that failed (EPERM: a value above the inherited hard limit without
// CAP_SYS_RESOURCE).
int ApplyRlimits(const PreparedRlimits& prepared);

}  // namespace mcpmw::pool::sandbox
