#include "pool/sandbox/host.h"

#include <sched.h>

#include "pool/sandbox/cgroup.h"
#include "pool/sandbox/namespaces.h"
#include "pool/sandbox/no_new_privs.h"
#include "pool/sandbox/rlimits.h"
#include "pool/sandbox/seccomp.h"

namespace mcpmw::pool::sandbox {

HostCapabilities ProbeHost() {
  HostCapabilities host;
  host.no_new_privs = ProbeNoNewPrivs();
  host.rlimits = ProbeRlimits();
  host.seccomp = ProbeSeccomp();
  host.can_seccomp_without_no_new_privs = CanSeccompWithoutNoNewPrivs();
  host.cgroup = ProbeCgroups();
  host.user_namespace = ProbeNamespace(CLONE_NEWUSER, "user");
  host.pid_namespace = ProbeNamespace(CLONE_NEWPID, "pid");
  host.net_namespace = ProbeNamespace(CLONE_NEWNET, "net");
  host.mount_namespace = ProbeNamespace(CLONE_NEWNS, "mount");
  return host;
}

}  // namespace mcpmw::pool::sandbox
