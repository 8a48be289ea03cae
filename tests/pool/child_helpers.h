// Test helpers shared by the pool tests: waiting for a child, reading its output and its
// /proc/PID/status.
#pragma once

#include <poll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <string_view>

namespace mcpmw::pool::test_support {

// Upper bound for anything the tests wait on; each wait returns as soon as its event happens.
inline constexpr int kWaitMs = 10000;

inline int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// True once the child behind `pidfd` has exited (within `timeout_ms`).
inline bool WaitForExit(int pidfd, int timeout_ms = kWaitMs) {
  pollfd pfd{pidfd, POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&pfd, 1, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  return rc == 1 && (pfd.revents & POLLIN) != 0;
}

// Reads one '\n'-terminated line (without the newline), waiting at most kWaitMs for each byte.
inline std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (true) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, kWaitMs) != 1 || ::read(fd, &c, 1) != 1 || c == '\n') {
      return line;
    }
    line.push_back(c);
  }
}

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
