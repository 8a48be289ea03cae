// mcpmw: the process entry point. The only place that wires globals (logging, the environment,
// the process's own stdio) into the modules.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "absl/strings/str_join.h"
#include "pool/governor.h"
#include "src/app/audit_verify.h"
#include "src/app/cli.h"
#include "src/app/eval_command.h"
#include "src/app/policy_check.h"
#include "src/common/log.h"
#include "src/common/strings.h"
#include "src/transport/stdio/stdio_sidecar.h"

int main(int argc, char** argv) {
  using mcpmw::LogError;
  std::vector<std::string_view> args(argv, argv + argc);
  absl::StatusOr<mcpmw::app::Command> cmd =
      // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread exists
      mcpmw::app::ParseCommandLine(args, [](const char* name) { return std::getenv(name); });
  if (!cmd.ok()) {
    LogError(cmd.status().message());
    return mcpmw::proxy::kExitUsage;
  }
  switch (cmd->verb) {
    case mcpmw::app::Verb::kHelp:
      std::fwrite(mcpmw::app::UsageText().data(), 1, mcpmw::app::UsageText().size(), stdout);
      return 0;
    case mcpmw::app::Verb::kVersion:
      std::printf("mcpmw %.*s\n", static_cast<int>(mcpmw::app::kVersion.size()),
                  mcpmw::app::kVersion.data());
      return 0;
    case mcpmw::app::Verb::kAuditVerify:
      return mcpmw::app::RunAuditVerify(*cmd);
    case mcpmw::app::Verb::kPolicyCheck:
      return mcpmw::app::RunPolicyCheck(*cmd);
    case mcpmw::app::Verb::kEval:
      return mcpmw::app::RunEval(
          std::vector<std::string_view>(cmd->eval_args.begin(), cmd->eval_args.end()), stdout,
          stderr);
    case mcpmw::app::Verb::kStdio:
      break;
  }
  mcpmw::SetDebugLogging(cmd->debug);
  for (const std::string& w : cmd->warnings) {
    LogError(w);
  }
  mcpmw::pool::SpawnDecision decision = mcpmw::pool::Decide(cmd->spawn);
  mcpmw::LogDebug("proxy decision status=", decision.allowed ? "allow" : "deny",
                  " reason=", mcpmw::Sv(decision.reason_code), " command=\"",
                  decision.normalized_command, "\" id=", decision.decision_id);
  if (!decision.allowed) {
    LogError("Failed: proxy spawn denied (", mcpmw::Sv(decision.reason_code),
             "): ", decision.explanation);
    return mcpmw::proxy::kExitFailure;
  }
  cmd->sidecar.argv = decision.argv;
  std::optional<mcpmw::proxy::GovernanceOptions> governance;
  if (cmd->governed) {
    governance = std::move(cmd->governance);
  }
  return mcpmw::transport::RunStdioSidecar(std::move(cmd->sidecar), std::move(governance));
}
