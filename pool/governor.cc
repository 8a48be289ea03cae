#include "pool/governor.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <limits>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "pool/path_lookup.h"
#include "src/common/sha256.h"
#include "src/common/strings.h"

namespace mcpmw::pool {
namespace {

constexpr std::string_view kComponent = "proxy-process-governor";

constexpr int64_t kMinMaxRestarts = 0, kMaxMaxRestarts = 10;
constexpr int64_t kMinRestartBackoffMs = 100, kMaxRestartBackoffMs = 60000;
constexpr int64_t kMinKillTimeoutMs = 100, kMaxKillTimeoutMs = 120000;

// Word separators. A POSIX shell splits on space, tab and newline only; the prototype collapsed
// every whitespace character, so \r, \v and \f separate words here too.
bool IsSeparator(char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); }

// Characters that never need quoting for SplitCommandLine (the same set as Python's shlex.quote,
// restricted to ASCII).
bool IsPlainArgChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("_@%+=:,./-").find(c) != std::string_view::npos;
}

// The prototype's normalisation of a command line (trim, collapse whitespace runs), used only
// for the best-effort normalized_command of a line that could not be split.
std::string CollapseWhitespace(std::string_view line) {
  std::string out;
  for (absl::string_view word :
       absl::StrSplit(Sv(line), absl::ByAnyChar(" \t\n\r\v\f"), absl::SkipEmpty())) {
    if (!out.empty()) {
      out.push_back(' ');
    }
    absl::StrAppend(&out, word);
  }
  return out;
}

std::string JoinQuoted(const std::vector<std::string>& argv) {
  return absl::StrJoin(
      argv, " ", [](std::string* out, const std::string& arg) { out->append(QuoteArgument(arg)); });
}

// Lexically normalised absolute path as components: relative paths are taken against `cwd`,
// "." and empty components vanish, ".." removes the previous component (and stays at "/").
// Nothing is looked up on disk, so symlinks are not followed.
std::vector<std::string> NormalizedComponents(std::string_view path, std::string_view cwd) {
  std::vector<std::string> parts;
  auto add = [&parts](std::string_view p) {
    for (absl::string_view part : absl::StrSplit(Sv(p), '/', absl::SkipEmpty())) {
      if (part == ".") {
        continue;
      }
      if (part == "..") {
        if (!parts.empty()) {
          parts.pop_back();
        }
        continue;
      }
      parts.emplace_back(part);
    }
  };
  if (path.empty() || path.front() != '/') {
    add(cwd);
  }
  add(path);
  return parts;
}

std::string JoinComponents(const std::vector<std::string>& parts) {
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

std::optional<std::string> CurrentDirectory() {
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof(buf)) == nullptr) {
    return std::nullopt;
  }
  return std::string(buf);
}

std::optional<std::string> RealPath(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) {
    return std::nullopt;
  }
  std::string out(resolved);
  std::free(resolved);
  return out;
}

// Lazily computed, per Decide() call: the file-system facts the allow rule may need.
class MatchContext {
 public:
  explicit MatchContext(std::string_view program) : program_(program) {}

  const std::string& Cwd() {
    if (!cwd_) {
      // Without a cwd a relative path cannot be placed; "/" keeps the comparison well defined and
      // can only make it stricter for relative argv[0] under a relative prefix.
      cwd_ = CurrentDirectory().value_or("/");
    }
    return *cwd_;
  }

  const std::vector<std::string>& ProgramComponents() {
    if (!program_components_) {
      program_components_ = NormalizedComponents(program_, Cwd());
    }
    return *program_components_;
  }

  const std::optional<std::string>& ProgramRealPath() {
    if (!program_real_) {
      program_real_ = RealPath(std::string(program_));
    }
    return *program_real_;
  }

 private:
  std::string_view program_;
  std::optional<std::string> cwd_;
  std::optional<std::vector<std::string>> program_components_;
  std::optional<std::optional<std::string>> program_real_;
};

// The allow rule (see governor.h). `program` is argv[0], non-empty.
bool PrefixAllows(std::string_view prefix, std::string_view program, MatchContext& context) {
  bool program_is_path = program.find('/') != std::string_view::npos;
  if (prefix.find('/') == std::string_view::npos) {
    if (program == prefix) {
      return true;
    }
    if (!program_is_path) {
      return false;
    }
    // A path passes for a bare name only if it is the very file exec would find for that name.
    absl::StatusOr<std::string> on_path = FindExecutable(prefix, EffectiveSearchPath());
    if (!on_path.ok()) {
      return false;
    }
    std::optional<std::string> wanted = RealPath(*on_path);
    const std::optional<std::string>& actual = context.ProgramRealPath();
    return wanted.has_value() && actual.has_value() && *wanted == *actual;
  }
  // A bare argv[0] is found through PATH at spawn time, so it has no path to compare here.
  if (!program_is_path) {
    return false;
  }
  std::vector<std::string> allowed = NormalizedComponents(prefix, context.Cwd());
  const std::vector<std::string>& actual = context.ProgramComponents();
  return actual.size() >= allowed.size() &&
         std::equal(allowed.begin(), allowed.end(), actual.begin());
}

std::string DenialExplanation(const std::vector<std::string>& argv,
                              const std::vector<std::string>& prefixes, MatchContext& context) {
  const std::string& program = argv.front();
  bool program_is_path = program.find('/') != std::string::npos;
  std::string listed = prefixes.empty() ? "it is empty" : absl::StrJoin(prefixes, ", ");
  std::string detail;
  if (program_is_path) {
    const std::vector<std::string>& parts = context.ProgramComponents();
    std::string_view base = parts.empty() ? std::string_view() : parts.back();
    if (!base.empty() && std::binary_search(prefixes.begin(), prefixes.end(), base)) {
      detail = absl::StrCat(" and is not the `", Sv(base), "` found on PATH");
    }
  }
  // A path is suggested in its normalised absolute form, which means the same from any cwd.
  std::string suggestion = program_is_path ? JoinComponents(context.ProgramComponents()) : program;
  return absl::StrCat("`", QuoteArgument(program), "` is not on the allowlist (", listed, ")",
                      detail, "; add it with --allow-prefix ", QuoteArgument(suggestion),
                      " or MCP_PROXY_ALLOWED_PREFIXES");
}

std::vector<std::string> NormalizePrefixes(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  for (const std::string& prefix : raw) {
    absl::string_view trimmed = absl::StripAsciiWhitespace(prefix);
    if (!trimmed.empty()) {
      out.emplace_back(trimmed);
    }
  }
  // Byte order equals the prototype's UTF-16 code-unit order for every BMP-only prefix.
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void Finish(SpawnDecision& decision) {
  std::string id_input = absl::StrJoin(
      {std::string(decision.normalized_command), absl::StrJoin(decision.prefixes, ","),
       std::string(decision.allowed ? "allow" : "deny"), std::string(decision.reason_code),
       absl::StrCat(decision.max_restarts), absl::StrCat(decision.restart_backoff_ms),
       absl::StrCat(decision.kill_timeout_ms), std::string(kComponent)},
      "|");
  decision.decision_id = Sha256Hex(id_input);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitCommandLine(std::string_view command_line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  size_t i = 0;
  const size_t n = command_line.size();
  while (i < n) {
    const char c = command_line[i];
    if (IsSeparator(c)) {
      if (in_word) {
        words.push_back(std::move(word));
        word.clear();
        in_word = false;
      }
      ++i;
      continue;
    }
    if (c == '\\') {
      if (i + 1 == n) {
        return absl::InvalidArgumentError(absl::StrCat("trailing backslash at column ", i + 1));
      }
      // Backslash-newline is a line continuation: it vanishes and does not start a word.
      if (command_line[i + 1] != '\n') {
        word.push_back(command_line[i + 1]);
        in_word = true;
      }
      i += 2;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      size_t close = command_line.find('\'', i + 1);
      if (close == std::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unterminated single quote at column ", i + 1));
      }
      word.append(command_line.substr(i + 1, close - i - 1));
      i = close + 1;
      continue;
    }
    if (c == '"') {
      const size_t open = i++;
      bool closed = false;
      while (i < n) {
        const char d = command_line[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        // Inside double quotes a backslash only escapes the characters a shell would treat
        // specially there; before anything else it is an ordinary character.
        if (d == '\\' && i + 1 < n) {
          const char e = command_line[i + 1];
          if (e == '"' || e == '\\' || e == '$' || e == '`') {
            word.push_back(e);
            i += 2;
            continue;
          }
          if (e == '\n') {
            i += 2;
            continue;
          }
        }
        word.push_back(d);
        ++i;
      }
      if (!closed) {
        return absl::InvalidArgumentError(
            absl::StrCat("unterminated double quote at column ", open + 1));
      }
      continue;
    }
    word.push_back(c);
    ++i;
  }
  if (in_word) {
    words.push_back(std::move(word));
  }
  return words;
}

std::string QuoteArgument(std::string_view arg) {
  if (!arg.empty() && std::all_of(arg.begin(), arg.end(), IsPlainArgChar)) {
    return std::string(arg);
  }
  // Single quotes keep everything literal; an embedded ' closes, is escaped, and reopens.
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out.append("'\\''");
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

std::vector<std::string> ParseAllowedPrefixes(std::string_view csv) {
  if (absl::StripAsciiWhitespace(Sv(csv)).empty()) {
    csv = kDefaultAllowedPrefixes;
  }
  std::vector<std::string> out;
  for (absl::string_view entry : absl::StrSplit(Sv(csv), ',')) {
    absl::string_view trimmed = absl::StripAsciiWhitespace(entry);
    if (!trimmed.empty()) {
      out.emplace_back(trimmed);
    }
  }
  return out;
}

int64_t ParseIntLikeParseInt(std::string_view text, int64_t fallback) {
  size_t i = 0;
  while (i < text.size() && absl::ascii_isspace(static_cast<unsigned char>(text[i]))) {
    ++i;
  }
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    negative = text[i] == '-';
    ++i;
  }
  const size_t digits_start = i;
  // Accumulate as a negative number so INT64_MIN is reachable; saturate instead of wrapping
  // (parseInt would give an inexact double, which the clamps then bound anyway).
  int64_t value = 0;
  bool saturated = false;
  for (; i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i])); ++i) {
    const int digit = text[i] - '0';
    if (saturated) {
      continue;
    }
    if (value < (std::numeric_limits<int64_t>::min() + digit) / 10) {
      saturated = true;
      continue;
    }
    value = value * 10 - digit;
  }
  if (i == digits_start) {
    return fallback;
  }
  if (saturated) {
    return negative ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  if (negative) {
    return value;
  }
  return value == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max()
                                                      : -value;
}

SpawnDecision Decide(const SpawnRequest& request) {
  SpawnDecision decision;
  decision.prefixes = NormalizePrefixes(request.allowed_prefixes);
  decision.max_restarts = std::clamp(request.max_restarts, kMinMaxRestarts, kMaxMaxRestarts);
  decision.restart_backoff_ms =
      std::clamp(request.restart_backoff_ms, kMinRestartBackoffMs, kMaxRestartBackoffMs);
  decision.kill_timeout_ms =
      std::clamp(request.kill_timeout_ms, kMinKillTimeoutMs, kMaxKillTimeoutMs);

  if (!request.argv.empty()) {
    decision.argv = request.argv;
  } else {
    absl::StatusOr<std::vector<std::string>> split = SplitCommandLine(request.command_line);
    if (!split.ok()) {
      decision.reason_code = kReasonGovernorFallback;
      decision.normalized_command = CollapseWhitespace(request.command_line);
      decision.explanation =
          absl::StrCat("cannot split the command line: ", split.status().message(),
                       "; fix the quoting (no shell runs, so quotes only group words)");
      Finish(decision);
      return decision;
    }
    decision.argv = *std::move(split);
  }
  decision.normalized_command = JoinQuoted(decision.argv);

  // An empty program name (`''`) can never be executed, so it counts as no command at all.
  if (decision.argv.empty() || decision.argv.front().empty()) {
    decision.reason_code = kReasonCommandEmpty;
    decision.explanation =
        "the command is empty; give the MCP server command after `--` or with --proxy";
    Finish(decision);
    return decision;
  }

  const std::string& program = decision.argv.front();
  MatchContext context(program);
  decision.allowed = std::any_of(
      decision.prefixes.begin(), decision.prefixes.end(),
      [&](const std::string& prefix) { return PrefixAllows(prefix, program, context); });
  if (decision.allowed) {
    decision.reason_code = kReasonPrefixAllowed;
  } else {
    decision.reason_code = kReasonPrefixDenied;
    decision.explanation = DenialExplanation(decision.argv, decision.prefixes, context);
  }
  Finish(decision);
  return decision;
}

}  // namespace mcpmw::pool
