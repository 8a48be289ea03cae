// mcpmw common: operator-facing diagnostics on stderr.
//
// stdout belongs to the MCP client in the sidecar, so every diagnostic goes to stderr, one line
// each, prefixed "mcpmw: ". Debug lines are off unless enabled (--debug or MCP_PROXY_DEBUG=1).
// Thread-safe: each line is written with a single write(2).
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace mcpmw {

// Enables or disables Debug() lines for the whole process.
void SetDebugLogging(bool enabled);
bool DebugLoggingEnabled();

// Writes "mcpmw: <line>\n" to stderr with one write(2).
void LogLine(std::string_view line);

// The text for an errno value ("No such file or directory"); thread-safe, unlike strerror.
std::string ErrnoText(int error);

template <typename... Args>
void LogError(const Args&... args) {
  LogLine(absl::StrCat(args...));
}

template <typename... Args>
void LogDebug(const Args&... args) {
  if (DebugLoggingEnabled()) {
    LogLine(absl::StrCat("debug: ", args...));
  }
}

}  // namespace mcpmw
