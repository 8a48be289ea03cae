// mcpmw pool (internal): finding the file a program name runs, the way execvp(3) would.
//
// Shared by the governor (a bare allowlist name matches a path only if both are the same file)
// and Spawn() (a missing or non-executable program is reported before fork, with PATH shown).
// Not part of the pool's public API.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace mcpmw::pool {

// The search path execvp uses: $PATH, or glibc's default when it is unset.
std::string EffectiveSearchPath();

// Resolves `program` to the file that exec would run. A name containing '/' is checked as is; a
// bare name is looked up in each `search_path` entry in order (an empty entry is the current
// directory). Fails with NotFound ("not found on PATH (PATH=…)", "no such file"),
// PermissionDenied (exists but is not an executable regular file) or InvalidArgument (empty
// name). The message does not repeat the program name; callers prefix it. Touches the file system;
// thread-safe.
absl::StatusOr<std::string> FindExecutable(std::string_view program, std::string_view search_path);

}  // namespace mcpmw::pool
