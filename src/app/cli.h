// mcpmw app: command-line parsing for every verb.
//
// Turns argv and the environment into one Command, or an InvalidArgument status whose message
// says what is wrong and how to fix it. Pure: no I/O, so every rule is unit-tested.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/governor.h"
#include "pool/sandbox/spec.h"
#include "src/proxy/governance.h"
#include "src/proxy/sidecar.h"

namespace mcpmw::app {

inline constexpr std::string_view kVersion = "0.1.0";

enum class Verb {
  kHelp,
  kVersion,
  kStdio,
  kAuditVerify,
  kPolicyCheck,
  kEval,
  kPoolCheck,
  kPoolRun,
  kServe,
  kHashApiKey
};

// The sidecar's containment flags, applied to the profile built from the server command
// (ApplyContainment in src/app/pool_command.h). `sandbox` starts as the default Spec
// (no_new_privs and rlimits required, core dumps off); a flag that needs a step turns it on as
// optional unless --sandbox-require names it.
struct ContainmentFlags {
  pool::sandbox::Spec sandbox;
  std::optional<std::vector<std::string>> env_allow;  // --env-allow; unset: the whole environment
  std::string cwd;                                    // --cwd; empty: mcpmw's
  std::vector<std::string> given;                     // the flags given, for conflict messages
};

struct Command {
  Verb verb = Verb::kHelp;
  bool debug = false;
  // kStdio: what the governor must approve, and the session settings. The governor's clamped
  // numbers replace max_restarts/backoff/kill timeout before the session starts.
  pool::SpawnRequest spawn;
  proxy::SidecarOptions sidecar;
  // kStdio: set when any governance flag (policy, identity, audit, metrics) was given; the
  // session then runs the chain on every client request.
  bool governed = false;
  proxy::GovernanceOptions governance;
  // kStdio: the server's containment; or, with `--profile FILE`, the profile file that replaces
  // the flags and the command (its "command" is what the governor checks).
  ContainmentFlags containment;
  std::string profile_file;
  // kPoolCheck / kPoolRun: the profiles file ({"pools": [...]}); kPoolRun: where to write the
  // pools' Prometheus text at exit and on SIGUSR1 (empty: nowhere).
  std::string pools_file;
  std::string pool_metrics_file;
  // kServe: the gateway config file.
  std::string serve_config;
  // kPolicyCheck: the bundle to validate.
  std::string policy_file;
  // kAuditVerify: the log and the key file (HMAC key, or an Ed25519 PEM).
  std::string audit_file;
  std::string key_file;
  // kEval: the words after `eval` (FILE, --json), checked by RunEval.
  std::vector<std::string> eval_args;
  // Notes for the operator (a value that was clamped), printed before starting.
  std::vector<std::string> warnings;
};

// Reads an environment variable; nullptr when unset.
using GetEnv = std::function<const char*(const char*)>;

// Parses `args` (args[0] is the program name).
absl::StatusOr<Command> ParseCommandLine(const std::vector<std::string_view>& args,
                                         const GetEnv& getenv);

// The text `mcpmw --help` prints.
std::string_view UsageText();

}  // namespace mcpmw::app
