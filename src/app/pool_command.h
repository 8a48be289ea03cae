// mcpmw app: the `mcpmw pool` verbs, and the profile the sidecar's server runs under.
//
// `mcpmw pool check FILE` reads a profiles file, {"pools": [<profile>, …]} (pool/profile.h has a
// profile's shape), plans each profile's sandbox against this host and prints what its workers
// would get: the steps applied, and the steps skipped with the host's reason. `mcpmw pool run
// FILE` starts the pools (pool/pool_manager.h), logs when each profile has its minWarm workers
// ready and keeps them until SIGTERM or SIGINT, then stops and reaps every worker. Both are for
// operators trying a profile before a gateway uses it. The governor's allowlist does not apply to
// them: the profiles file is the operator's own configuration, like the allowlist itself.
//
// For `mcpmw stdio`, SidecarProfile builds the one exclusive profile the sidecar launches its
// server with (through the same Profile → sandbox::Plan → Spawn path as the pool).
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/profile.h"
#include "pool/sandbox/host.h"
#include "pool/sandbox/sandbox.h"
#include "src/app/cli.h"

namespace mcpmw::app {

// Parses a profiles file's text: an object with one key, "pools", an array of profile objects.
// Errors are InvalidArgument and start with the JSON pointer of the bad value
// ("/pools/1/queue/maxWaiting: …"); a second profile with an existing name is reported at its
// "/pools/N/name".
absl::StatusOr<std::vector<pool::Profile>> ParseProfilesFile(std::string_view json);

// Reads and parses the profiles file at `path`; every error message starts with the path
// (NotFound/PermissionDenied when it cannot be read, else ParseProfilesFile's errors).
absl::StatusOr<std::vector<pool::Profile>> LoadProfilesFile(const std::string& path);

// Reads one profile object (`mcpmw stdio --profile FILE`); errors start with the path.
absl::StatusOr<pool::Profile> LoadProfileFile(const std::string& path);

// Applies the sidecar's containment flags to `profile`: its sandbox Spec becomes the flags' Spec,
// and --env-allow and --cwd replace the allowlist and the working directory when given.
void ApplyContainment(const ContainmentFlags& flags, pool::Profile& profile);

// The sidecar's server profile once the governor approved `argv`: the --profile file's profile
// (`from_file`) with its command replaced by the approved argv, or else
// pool::ProfileFromCommandLine(argv, envp) (name "stdio", mcpmw's whole environment) with `flags`
// applied. InvalidArgument when argv is empty.
absl::StatusOr<pool::Profile> SidecarProfile(const ContainmentFlags& flags,
                                             std::optional<pool::Profile> from_file,
                                             std::vector<std::string> argv,
                                             const char* const* envp);

// What `mcpmw pool check` prints for a profile whose sandbox was planned: its command and pool
// settings, its environment and cwd, then one line per sandbox step in the order the child
// applies them: "applied (required): …", "skipped (optional): <the host's reason>" or "off".
std::string DescribeProfile(const pool::Profile& profile, const pool::sandbox::SandboxPlan& plan);

// `mcpmw pool check`: prints each profile's description to `out` and returns 0 when the file is
// valid and every profile can start on `host`; otherwise logs each problem and returns 1.
int RunPoolCheck(const Command& cmd, const pool::sandbox::HostCapabilities& host, std::FILE* out);

// `mcpmw pool run`: returns the process exit code (0 after a signal-initiated shutdown, 1 when the
// file is invalid or a pool cannot start). Blocks SIGINT, SIGTERM and SIGUSR1 on the calling
// thread and waits for them there, so call it from the main thread before any other thread
// exists (the pool's reactor thread inherits the mask).
int RunPoolRun(const Command& cmd);

}  // namespace mcpmw::app
