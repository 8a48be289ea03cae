// mcpmw pool sandbox: what this host can provide for confining workers.
//
// ProbeHost() looks at the running kernel once (cgroup mounts and delegation, seccomp,
// no_new_privs, which namespaces may be created) and returns plain data; Plan()
// (pool/sandbox/sandbox.h) checks a profile's Spec against it. Every missing feature carries a
// reason an operator can act on
// ("/sys/fs/cgroup/memory is not mounted", "unshare(CLONE_NEWUSER) failed: Operation not
// permitted"). Tests build HostCapabilities by hand to simulate a host that lacks something.
#pragma once

#include <string>

namespace mcpmw::pool::sandbox {

// One kernel feature: whether mcpmw can use it, and if not, why not.
struct Feature {
  bool available = false;
  std::string reason;  // empty when available
};

enum class CgroupVersion { kV1, kV2 };

// Where worker cgroups using one controller (memory, pids or cpu) are created.
struct CgroupController {
  bool available = false;
  CgroupVersion version = CgroupVersion::kV1;
  // mcpmw's own cgroup in the hierarchy that carries the controller; worker cgroups are made
  // directly below it. Writable by mcpmw.
  std::string parent_dir;
  std::string reason;  // why the controller is unusable; empty when available
};

struct CgroupHost {
  CgroupController memory;
  CgroupController pids;
  CgroupController cpu;
  // mcpmw's own cgroup in the unified (v2) hierarchy when mcpmw may create children there and
  // they have cgroup.kill (Linux 5.14+), even without any controller (a v1/v2 hybrid host). A
  // worker cgroup joined there is torn down with one write to cgroup.kill. Empty when unusable.
  std::string v2_kill_parent_dir;
  std::string v2_kill_reason;  // why v2_kill_parent_dir is empty
};

struct HostCapabilities {
  Feature no_new_privs;
  Feature rlimits;
  // seccomp(2) filters with SECCOMP_RET_ERRNO, and libseccomp able to build one.
  Feature seccomp;
  // Loading a filter without no_new_privs needs CAP_SYS_ADMIN.
  bool can_seccomp_without_no_new_privs = false;
  CgroupHost cgroup;
  Feature user_namespace;
  Feature pid_namespace;
  Feature net_namespace;
  Feature mount_namespace;
};

// Probes the running kernel. Forks a short-lived child per namespace type (the only reliable test
// of whether the kernel, its sysctls, an LSM and an enclosing container's seccomp profile allow
// it), so call it once at start-up, not per worker. Thread-safe; never fails: a feature it
// cannot confirm is reported unavailable with the reason.
HostCapabilities ProbeHost();

}  // namespace mcpmw::pool::sandbox
