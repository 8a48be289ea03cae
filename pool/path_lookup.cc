#include "pool/path_lookup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/common/strings.h"

namespace mcpmw::pool {
namespace {

// glibc's confstr(_CS_PATH), which execvp falls back to when PATH is unset.
constexpr std::string_view kDefaultSearchPath = "/bin:/usr/bin";

enum class FileCheck { kExecutable, kMissing, kNotExecutable, kDirectory };

FileCheck CheckFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return FileCheck::kMissing;
  }
  if (S_ISDIR(st.st_mode)) {
    return FileCheck::kDirectory;
  }
  // access(X_OK) rather than the mode bits: it also sees noexec mounts' ACLs and root's rules.
  if (!S_ISREG(st.st_mode) || ::access(path.c_str(), X_OK) != 0) {
    return FileCheck::kNotExecutable;
  }
  return FileCheck::kExecutable;
}

}  // namespace

std::string EffectiveSearchPath() {
  // mcpmw never changes its environment after start-up, so reading it races with nothing.
  const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
  return std::string(path != nullptr ? std::string_view(path) : kDefaultSearchPath);
}

absl::StatusOr<std::string> FindExecutable(std::string_view program, std::string_view search_path) {
  if (program.empty()) {
    return absl::InvalidArgumentError("the program name is empty");
  }
  if (program.find('/') != std::string_view::npos) {
    std::string path(program);
    switch (CheckFile(path)) {
      case FileCheck::kExecutable:
        return path;
      case FileCheck::kMissing:
        return absl::NotFoundError("no such file");
      case FileCheck::kDirectory:
        return absl::PermissionDeniedError("it is a directory");
      case FileCheck::kNotExecutable:
        return absl::PermissionDeniedError("the file is not executable");
    }
  }
  // Like execvp: an entry holding a non-executable file is skipped, but if nothing executable is
  // found the permission problem is reported rather than "not found".
  std::string not_executable;
  for (absl::string_view dir : absl::StrSplit(Sv(search_path), ':')) {
    std::string candidate =
        dir.empty() ? absl::StrCat("./", Sv(program)) : absl::StrCat(dir, "/", Sv(program));
    switch (CheckFile(candidate)) {
      case FileCheck::kExecutable:
        return candidate;
      case FileCheck::kNotExecutable:
        if (not_executable.empty()) {
          not_executable = candidate;
        }
        break;
      case FileCheck::kMissing:
      case FileCheck::kDirectory:
        break;
    }
  }
  if (!not_executable.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(not_executable, " is on PATH but is not executable"));
  }
  return absl::NotFoundError(absl::StrCat("not found on PATH (PATH=", Sv(search_path), ")"));
}

}  // namespace mcpmw::pool
