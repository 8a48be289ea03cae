// mcpmw: the process entry point. The only place that wires globals (logging, the environment,
// the process's own stdio) into the modules.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/str_join.h"
#include "pool/governor.h"
#include "pool/profile.h"
#include "pool/sandbox/host.h"
#include "src/app/audit_verify.h"
#include "src/app/cli.h"
#include "src/app/eval_command.h"
#include "src/app/policy_check.h"
#include "src/app/pool_command.h"
#include "src/app/serve_command.h"
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
    case mcpmw::app::Verb::kPoolCheck:
      mcpmw::SetDebugLogging(cmd->debug);
      return mcpmw::app::RunPoolCheck(*cmd, mcpmw::pool::sandbox::ProbeHost(), stdout);
    case mcpmw::app::Verb::kPoolRun:
      mcpmw::SetDebugLogging(cmd->debug);
      return mcpmw::app::RunPoolRun(*cmd);
    case mcpmw::app::Verb::kHashApiKey:
      return mcpmw::app::RunHashApiKey();
    case mcpmw::app::Verb::kServe:
      mcpmw::SetDebugLogging(cmd->debug);
      return mcpmw::app::RunServe(*cmd);
    case mcpmw::app::Verb::kStdio:
      break;
  }
  mcpmw::SetDebugLogging(cmd->debug);
  for (const std::string& w : cmd->warnings) {
    LogError(w);
  }
  // With --profile the file names the command, and the governor judges that command.
  std::optional<mcpmw::pool::Profile> from_file;
  if (!cmd->profile_file.empty()) {
    absl::StatusOr<mcpmw::pool::Profile> profile = mcpmw::app::LoadProfileFile(cmd->profile_file);
    if (!profile.ok()) {
      LogError(profile.status().message());
      return mcpmw::proxy::kExitUsage;
    }
    cmd->spawn.command_line.clear();
    cmd->spawn.argv = profile->argv;
    from_file = *std::move(profile);
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
  absl::StatusOr<mcpmw::pool::Profile> server =
      mcpmw::app::SidecarProfile(cmd->containment, std::move(from_file), decision.argv, environ);
  if (!server.ok()) {
    LogError(server.status().message());
    return mcpmw::proxy::kExitUsage;
  }
  cmd->sidecar.server = *std::move(server);
  std::optional<mcpmw::proxy::GovernanceOptions> governance;
  if (cmd->governed) {
    governance = std::move(cmd->governance);
  }
  return mcpmw::transport::RunStdioSidecar(std::move(cmd->sidecar), std::move(governance));
}
