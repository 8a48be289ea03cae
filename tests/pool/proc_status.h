// Test helper: reading a live process's /proc/PID/status.
#pragma once

#include <sys/types.h>

#include <fstream>
#include <string>
#include <string_view>

namespace mcpmw::pool::test_support {

// The value of one "Name:\tvalue" line of /proc/PID/status, or "" when absent.
inline std::string ProcStatusField(pid_t pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(std::string(field) + ":", 0) == 0) {
      size_t value = line.find_first_not_of(" \t", field.size() + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "";
}

}  // namespace mcpmw::pool::test_support
