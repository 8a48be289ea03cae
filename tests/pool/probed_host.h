// Test support: this host's sandbox capabilities, probed once per test binary (a probe looks at
// cgroup mounts and seccomp; pools started by many tests need not repeat it).
#pragma once

#include "pool/sandbox/host.h"

namespace mcpmw::pool::testing_support {

inline const sandbox::HostCapabilities& ProbedHost() {
  static const sandbox::HostCapabilities host = sandbox::ProbeHost();
  return host;
}

}  // namespace mcpmw::pool::testing_support
