#include "pool/worker.h"

#include <unistd.h>

#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mcpmw::pool {

std::string_view WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return "starting";
    case WorkerState::kWarm:
      return "warm";
    case WorkerState::kLeased:
      return "leased";
    case WorkerState::kDraining:
      return "draining";
    case WorkerState::kDead:
      return "dead";
  }
  return "unknown";
}

absl::StatusOr<uint64_t> ReadRssBytes(pid_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/statm");
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, " (process ", pid, " gone?)"));
  }
  // statm: size resident shared text lib data dt, all in pages.
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
  if (!(in >> size_pages >> resident_pages)) {
    return absl::NotFoundError(absl::StrCat(path, " is empty or unreadable (process exited?)"));
  }
  static const auto page_size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return resident_pages * page_size;
}

}  // namespace mcpmw::pool
