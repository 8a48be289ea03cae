#include "src/common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <system_error>

#include "src/common/strings.h"

namespace mcpmw {
namespace {
std::atomic<bool> debug_enabled{false};
}  // namespace

void SetDebugLogging(bool enabled) { debug_enabled.store(enabled, std::memory_order_relaxed); }

bool DebugLoggingEnabled() { return debug_enabled.load(std::memory_order_relaxed); }

std::string ErrnoText(int error) { return std::generic_category().message(error); }

void LogLine(std::string_view line) {
  std::string out = absl::StrCat("mcpmw: ", Sv(line), "\n");
  // One write so concurrent lines from different threads never interleave mid-line; a short
  // write to a closed stderr is not worth retrying.
  ssize_t ignored = ::write(STDERR_FILENO, out.data(), out.size());
  (void)ignored;
}

}  // namespace mcpmw
