// mcpmw pool: the governor's spawn policy.
//
// Before mcpmw launches an MCP server it asks the governor whether the command may run and with
// which supervision settings. This is the prototype's proxy-process-governor (seed-spec §6.12)
// with its defects fixed:
//   - argv is split with shell-like quoting ('single', "double", backslash escapes) but no shell:
//     no expansion, no operators; `;`, `|`, `$HOME` stay literal arguments.
//   - the allowlist matches whole path components: a bare name (`node`) allows argv[0] `node`
//     (looked up on PATH) or an absolute/relative path that resolves to the same file PATH gives
//     for that name; a path entry (`/opt/mcp`, `/usr/bin/node`) allows argv[0] paths equal to it
//     or below it after lexical normalisation. `../evil/node` does not pass as `node`.
//   - matching is case-sensitive (Linux paths are); prefixes are trimmed, de-duplicated and
//     sorted but not lowercased.
// Reason codes, clamps and the decision id formula are the prototype's.
//
// Pure and thread-safe except for the PATH/filesystem lookups in Decide().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mcpmw::pool {

// Reason codes (exact spelling from the prototype).
inline constexpr std::string_view kReasonCommandEmpty = "proxy-command-empty";
inline constexpr std::string_view kReasonPrefixAllowed = "proxy-prefix-allowed";
inline constexpr std::string_view kReasonPrefixDenied = "proxy-prefix-denied";
inline constexpr std::string_view kReasonGovernorFallback = "proxy-governor-fallback";

// Defaults and clamps (prototype §6.12, §7.5).
inline constexpr std::string_view kDefaultAllowedPrefixes = "node,npx,uvx,python,python3,bun,deno";
inline constexpr int64_t kDefaultMaxRestarts = 3;
inline constexpr int64_t kDefaultRestartBackoffMs = 1000;
inline constexpr int64_t kDefaultKillTimeoutMs = 3000;

struct SpawnRequest {
  // Either a command line to split (the prototype's `--proxy "CMD"`) …
  std::string command_line;
  // … or an argv that is already split (`mcpmw stdio -- CMD ARGS…`); used when non-empty.
  std::vector<std::string> argv;
  std::vector<std::string> allowed_prefixes;
  int64_t max_restarts = kDefaultMaxRestarts;
  int64_t restart_backoff_ms = kDefaultRestartBackoffMs;
  int64_t kill_timeout_ms = kDefaultKillTimeoutMs;
};

struct SpawnDecision {
  std::string decision_id;         // sha256 hex, prototype formula (§3.1, `|`-joined)
  bool allowed = false;            // status == "allow"
  std::string_view reason_code;    // one of the kReason* constants
  std::string normalized_command;  // argv joined with single spaces, quoting args that need it
  std::vector<std::string> argv;
  std::vector<std::string> prefixes;  // normalised allowlist actually applied
  int64_t max_restarts = 0;           // clamped 0..10
  int64_t restart_backoff_ms = 0;     // clamped 100..60000
  int64_t kill_timeout_ms = 0;        // clamped 100..120000
  // For a denial: one sentence an operator can act on (what was refused and how to allow it).
  std::string explanation;
};

// Splits a command line like a POSIX shell would split words, without expanding anything.
// Errors (InvalidArgument) name the problem: an unterminated quote, a trailing backslash.
absl::StatusOr<std::vector<std::string>> SplitCommandLine(std::string_view command_line);

// Quotes one argument for display so that SplitCommandLine gives it back unchanged.
std::string QuoteArgument(std::string_view arg);

// Parses a comma-separated allowlist (MCP_PROXY_ALLOWED_PREFIXES); blank means the default.
std::vector<std::string> ParseAllowedPrefixes(std::string_view csv);

// The prototype's integer parsing for MCP_PROXY_* values: base-10 leading digits (optional sign),
// `12abc` → 12, `1e3` → 1; unparsable or blank → `fallback`.
int64_t ParseIntLikeParseInt(std::string_view text, int64_t fallback);

// Decides whether `request` may be spawned. Never fails: problems become a deny decision.
SpawnDecision Decide(const SpawnRequest& request);

}  // namespace mcpmw::pool
