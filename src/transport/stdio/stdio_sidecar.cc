#include "src/transport/stdio/stdio_sidecar.h"

#include <sys/signalfd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "pool/sandbox/host.h"
#include "pool/sandbox/sandbox.h"
#include "src/common/fd.h"
#include "src/common/log.h"
#include "src/io/ring.h"

namespace mcpmw::transport {

int RunStdioSidecar(proxy::SidecarOptions options,
                    std::optional<proxy::GovernanceOptions> governance) {
  if (absl::Status st = io::CheckKernelFeatures(io::ProbeKernelFeatures()); !st.ok()) {
    LogError(st.message());
    return proxy::kExitNoIoUring;
  }
  absl::StatusOr<std::unique_ptr<io::Ring>> ring = io::Ring::Create(256);
  if (!ring.ok()) {
    LogError(ring.status().message());
    return proxy::kExitNoIoUring;
  }
  // The server's containment is planned once; every (re)start of it applies the same plan.
  absl::StatusOr<pool::sandbox::SandboxPlan> plan =
      pool::sandbox::Plan(options.server.sandbox, pool::sandbox::ProbeHost());
  if (!plan.ok()) {
    LogError("cannot start the MCP server: ", plan.status().message());
    return proxy::kExitFailure;
  }
  for (const pool::sandbox::SkippedStep& skipped : plan->skipped()) {
    LogError("optional sandbox step `", skipped.step, "` skipped: ", skipped.reason);
  }
  if (DebugLoggingEnabled()) {
    std::vector<std::string> applied;
    for (pool::sandbox::ChildStep step :
         {pool::sandbox::ChildStep::kNoNewPrivs, pool::sandbox::ChildStep::kRlimits,
          pool::sandbox::ChildStep::kCgroup, pool::sandbox::ChildStep::kNamespaces,
          pool::sandbox::ChildStep::kSeccomp}) {
      if (plan->applies(step)) {
        applied.emplace_back(pool::sandbox::ChildStepName(step));
      }
    }
    LogDebug("the MCP server's sandbox steps: ",
             applied.empty() ? "none" : absl::StrJoin(applied, ", "));
  }
  options.sandbox = &*plan;
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  // Blocked here, delivered through the signalfd; children get an empty mask before exec.
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd signal_fd(::signalfd(-1, &mask, SFD_CLOEXEC));
  if (!signal_fd.Valid()) {
    LogError("cannot create a signalfd (", ErrnoText(errno),
             "); SIGTERM will not shut the server down gracefully");
  }
  options.signal_fd = signal_fd.Get();
  // After the signal mask: the audit writer thread inherits it.
  std::unique_ptr<proxy::Governance> governor;
  if (governance) {
    absl::StatusOr<std::unique_ptr<proxy::Governance>> g =
        proxy::Governance::Create(*std::move(governance), SteadyClock::Instance());
    if (!g.ok()) {
      LogError(g.status().message());
      return proxy::kExitUsage;
    }
    governor = *std::move(g);
    options.governance = governor.get();
    LogDebug("governed: policy bundle version ", governor->store().current()->version);
  }
  (*ring)->set_busy_poll(options.busy_poll);
  int exit_code = 0;
  {
    proxy::Sidecar sidecar(**ring, std::move(options));
    exit_code = (*ring)->RunUntilDone(sidecar.Run());
  }
  if (governor != nullptr) {
    if (absl::Status s = governor->Close(); !s.ok()) {
      LogError("governance shutdown: ", s.message());
      exit_code = exit_code == 0 ? proxy::kExitFailure : exit_code;
    }
  }
  return exit_code;
}

}  // namespace mcpmw::transport
