#include "pool/sandbox/rlimits.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "src/common/log.h"

namespace mcpmw::pool::sandbox {

Feature ProbeRlimits() {
  rlimit current{};
  if (::getrlimit(RLIMIT_NOFILE, &current) != 0) {
    return {false, absl::StrCat("getrlimit failed: ", ErrnoText(errno))};
  }
  return {true, ""};
}

PreparedRlimits PrepareRlimits(const Rlimits& values) {
  PreparedRlimits prepared;
  auto add = [&prepared](int resource, rlim_t soft, rlim_t hard) {
    prepared.entries[prepared.count++] = {resource, {soft, hard}};
  };
  if (values.open_files) {
    add(RLIMIT_NOFILE, *values.open_files, *values.open_files);
  }
  if (values.address_space_bytes) {
    add(RLIMIT_AS, *values.address_space_bytes, *values.address_space_bytes);
  }
  if (values.cpu_seconds) {
    add(RLIMIT_CPU, *values.cpu_seconds, *values.cpu_seconds + 1);
  }
  if (!values.core_dumps) {
    add(RLIMIT_CORE, 0, 0);
  }
  return prepared;
}

int ApplyRlimits(const PreparedRlimits& prepared) {
  for (int i = 0; i < prepared.count; ++i) {
    const PreparedRlimits::Entry& entry = prepared.entries[i];
    if (::setrlimit(static_cast<__rlimit_resource_t>(entry.resource), &entry.value) != 0) {
      return errno;
    }
  }
  return 0;
}

}  // namespace mcpmw::pool::sandbox
