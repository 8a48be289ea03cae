#include "src/app/cli.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/common/strings.h"

namespace mcpmw::app {
namespace {

constexpr std::string_view kUsage = R"(mcpmw — the MCP middleware proxy

Usage:
  mcpmw stdio [options] -- CMD [ARGS...]    run CMD as a governed MCP server behind this
                                            process's stdin/stdout (the sidecar)
  mcpmw --proxy "CMD ARGS" --stdio [options] the earlier prototype's spelling of the same;
                                            CMD is split like a shell would, without a shell
  mcpmw policy check FILE                   validate a policy bundle; errors give the JSON
                                            pointer of what is wrong (exit 0 valid, 1 not)
  mcpmw audit verify FILE --key KEYFILE     check an audit log's hash chain and signatures;
                                            names the first edited, deleted, reordered or
                                            truncated record (exit 0 intact, 1 not)
  mcpmw eval FILE [--json]                  run the prototype's offline pipeline on one
                                            invocation document (- reads stdin) and print its
                                            12-line summary, or the full report as JSON
                                            (exit 0 served, 1 blocked, 2 unreadable input)
  mcpmw pool check FILE                     validate a profiles file ({"pools": [...]}, errors
                                            give the JSON pointer) and print each profile's
                                            sandbox plan on this host: the steps applied, the
                                            steps skipped and why (exit 0 valid, 1 not)
  mcpmw pool run FILE [--metrics-file F]    start the pools' warm workers and keep them until
                                            SIGTERM or SIGINT, then stop and reap every one;
                                            F gets the pools' Prometheus metrics at exit and
                                            on SIGUSR1
  mcpmw serve --config FILE [--debug]       run the shared gateway: Streamable HTTP (2025 sessions
                                            and 2026-07-28 stateless) in front of pooled MCP
                                            servers, with identity, policy, quotas, audit and
                                            /metrics; SIGTERM drains, SIGHUP reloads the policy
  mcpmw hash-api-key < KEYFILE             print the SHA-256 digest of an API key (read from
                                            stdin, one trailing newline ignored) for the
                                            gateway config's identity.apiKeys[].sha256
  mcpmw --help                              this text
  mcpmw --version                           the version

Sidecar options:
  --allow-prefix P          allow commands named P (bare name, looked up on PATH) or under the
                            path P (whole components); repeatable. Default:
                            $MCP_PROXY_ALLOWED_PREFIXES, else node,npx,uvx,python,python3,bun,deno
  --max-restarts N          restarts after the server dies, 0..10
                            (default $MCP_PROXY_MAX_RESTARTS or 3; reset after 60 s of uptime)
  --restart-backoff-ms N    delay before the first restart, doubled for each next one, 100..60000
                            (default $MCP_PROXY_RESTART_BACKOFF_MS or 1000)
  --kill-timeout-ms N       on shutdown: wait N ms after closing the server's stdin, then
                            SIGTERM, then N ms more, then SIGKILL; 100..120000
                            (default $MCP_PROXY_KILL_TIMEOUT_MS or 3000)
  --request-timeout-ms N    a request the server has not answered N ms after it arrived gets
                            error -32001 and the server gets notifications/cancelled for it (not
                            for initialize); its late answer is dropped; progress notifications
                            restart the clock, up to 10×N in all. 0..86400000 (default 0: none)
  --max-message-bytes N     largest message accepted in either direction; larger ones are
                            answered with error -32003 and skipped (default 16777216)
  --restart-buffer-bytes N  client bytes held while the server restarts (default 8388608)
  --server-framing MODE     auto | ndjson | content-length: how to talk to the server
                            (default auto: the server's own framing once seen, before that
                            newline-delimited JSON; with --proxy, the client's framing)
  --busy-poll-us N          after each burst of messages, keep polling for N µs before sleeping
                            (default 50; 0 sleeps at once). Cuts round-trip latency where waking
                            a sleeping thread is slow (VMs); costs CPU only while traffic flows
  --debug                   one stderr line per message and lifecycle step (or MCP_PROXY_DEBUG=1)

Containment of the server (every start of it; README "Worker pools and sandboxing"):
  --sandbox-network MODE    none: the server cannot create sockets other than AF_UNIX (seccomp;
                            socket() fails with EAFNOSUPPORT) | allow (default)
  --memory-limit MB         memory of the server and its children (a cgroup); above it the
                            kernel kills the server, its requests get -32000, it is restarted
  --pids-limit N            processes and threads of the server and its children (a cgroup)
  --cpu-percent N           CPU time, in percent of one CPU (a cgroup), 1..100000
  --open-files N            RLIMIT_NOFILE
  --cpu-seconds N           RLIMIT_CPU: SIGXCPU after N s of CPU time, SIGKILL 1 s later
  --namespaces LIST         new namespaces for the server, of pid,net,mount,user (pid: whatever
                            it started dies with it)
  --env-allow NAMES         pass only these environment variables (comma-separated; default:
                            all of mcpmw's)
  --cwd DIR                 the server's working directory (default: mcpmw's)
  --sandbox-require STEPS   steps that must apply or mcpmw refuses to start, of no_new_privs,
                            rlimits, cgroup, seccomp, namespaces. Default: no_new_privs and
                            rlimits (core dumps off) required; a step the flags above turn on is
                            optional: skipped, with the reason logged, where the host lacks it
  --profile FILE            the server as one profile JSON object (README): its command, env,
                            cwd and sandbox replace `-- CMD` and the flags above

Governance (any of these turns the chain on; README "Policy bundles" has the format):
  --policy FILE             the policy bundle (also -p, --policy-file, $MCP_PROXY_POLICY_FILE);
                            reloaded when the file changes and on SIGHUP; an invalid new version
                            is refused and the running one stays
  --tenant ID, --user ID, --agent ID
                            who is calling (default $MCP_PROXY_TENANT_ID, $MCP_PROXY_USER_ID,
                            $MCP_PROXY_AGENT_ID, else the bundle's "identity")
  --roles A,B  --scopes A,B the caller's roles and scopes ($MCP_PROXY_ROLES, $MCP_PROXY_SCOPES)
  --server-id ID            the server's id in rules (tool.server) and reports
                            (default $MCP_PROXY_SERVER_ID, else upstream-mcp-server)
  --audit-log FILE          append one signed, hash-chained report per request to FILE
  --audit-key FILE          the signing key: 16+ bytes for HMAC-SHA256, or an Ed25519 PEM
  --audit-fsync MODE        never | segment (default: after each signed segment) | batch
  --metrics-file FILE       write the session's metrics (Prometheus text) to FILE at exit

The client's framing (newline-delimited JSON or Content-Length headers) is detected from its
first message and used for every answer. Diagnostics go to stderr; stdout carries only MCP.

Errors mcpmw answers itself: -32700 not JSON, -32600 not JSON-RPC, -32602 tools/call without a
tool name, -32000 the server died with the request in flight, -32001 the server is not running,
-32003 message over the size limit; governed: -32010 identity incomplete, -32011 denied by
policy, -32012 tool not available to the caller, -32013 rate limited (data.retryAfterMs), -32014
a message that could not be checked for secrets. Every governance error's data carries stage,
reasonCode and decisionId (the invocation id in the audit log, plus the stage).

Exit codes:
  0  the session ended normally (client closed stdin, a signal, or the server exited with 0)
  1  the server could not be started or kept running, or the governor refused the command
     (for a server that kept crashing: its last exit code)
  2  bad command line
  3  this kernel cannot run mcpmw (io_uring missing or disabled)
)";

absl::Status Usage(std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(problem), " (run `mcpmw --help` for usage)"));
}

absl::StatusOr<int64_t> ParseNumber(std::string_view flag, std::string_view value) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || n < 0) {
    return Usage(
        absl::StrCat(Sv(flag), " expects a whole non-negative number, got `", Sv(value), "`"));
  }
  return n;
}

void Clamp(std::string_view flag, int64_t lo, int64_t hi, int64_t* value,
           std::vector<std::string>* warnings) {
  int64_t clamped = std::clamp(*value, lo, hi);
  if (clamped != *value) {
    warnings->push_back(
        absl::StrCat(Sv(flag), " ", *value, " is outside ", lo, "..", hi, "; using ", clamped));
    *value = clamped;
  }
}

// "a, b,,c" → {"a","b","c"}.
std::vector<std::string> SplitList(std::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(Sv(list), ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

struct OptionParser {
  const std::vector<std::string_view>& args;
  size_t i;

  // For `--flag value` and `--flag=value`: true when args[i] is `flag`, with `value` set.
  absl::StatusOr<bool> Take(std::string_view flag, std::string_view* value) {
    std::string_view arg = args[i];
    if (arg == flag) {
      if (i + 1 >= args.size() || args[i + 1] == "--") {
        return Usage(absl::StrCat(Sv(flag), " needs a value"));
      }
      *value = args[++i];
      return true;
    }
    if (arg.size() > flag.size() && arg.substr(0, flag.size()) == flag && arg[flag.size()] == '=') {
      *value = arg.substr(flag.size() + 1);
      return true;
    }
    return false;
  }
};

// A flag that needs `step` turns it on; it stays optional unless --sandbox-require names it.
void TurnOn(pool::sandbox::Requirement& step) {
  if (step == pool::sandbox::Requirement::kOff) {
    step = pool::sandbox::Requirement::kOptional;
  }
}

absl::StatusOr<uint64_t> ParseLimit(std::string_view flag, std::string_view value, uint64_t max) {
  absl::StatusOr<int64_t> n = ParseNumber(flag, value);
  if (!n.ok()) {
    return n.status();
  }
  if (*n < 1 || static_cast<uint64_t>(*n) > max) {
    return Usage(absl::StrCat(Sv(flag), " is 1..", max, ", not ", *n));
  }
  return static_cast<uint64_t>(*n);
}

// Parses one containment option (--sandbox-network, --memory-limit, …, --profile) at args[p.i];
// false when args[p.i] is not one.
absl::StatusOr<bool> ParseContainmentOption(OptionParser& p, Command& cmd) {
  using pool::sandbox::Requirement;
  ContainmentFlags& c = cmd.containment;
  pool::sandbox::Spec& spec = c.sandbox;
  std::string_view v;
  auto take = [&](std::string_view name) -> absl::StatusOr<bool> {
    absl::StatusOr<bool> took = p.Take(name, &v);
    if (took.ok() && *took && name != "--profile") {
      c.given.emplace_back(name);
    }
    return took;
  };
  constexpr uint64_t kMaxMb = std::numeric_limits<uint32_t>::max();
  constexpr uint64_t kMaxCount = uint64_t{1} << 40;
  absl::StatusOr<bool> took = take("--profile");
  if (!took.ok() || *took) {
    if (took.ok() && v.empty()) {
      return Usage("--profile needs a file name");
    }
    if (took.ok()) {
      cmd.profile_file = std::string(v);
    }
    return took;
  }
  took = take("--sandbox-network");
  if (!took.ok() || *took) {
    if (took.ok()) {
      if (v == "none") {
        spec.network = pool::sandbox::Network::kNone;
        TurnOn(spec.seccomp);
      } else if (v == "allow") {
        spec.network = pool::sandbox::Network::kAllow;
      } else {
        return Usage(absl::StrCat("--sandbox-network is none or allow, not `", Sv(v), "`"));
      }
    }
    return took;
  }
  struct LimitFlag {
    std::string_view name;
    uint64_t max;
    pool::sandbox::Requirement* step;
  };
  const LimitFlag limits[] = {
      {"--memory-limit", kMaxMb, &spec.cgroup},    {"--pids-limit", kMaxCount, &spec.cgroup},
      {"--cpu-percent", 100000, &spec.cgroup},     {"--open-files", kMaxCount, &spec.rlimits},
      {"--cpu-seconds", kMaxCount, &spec.rlimits},
  };
  for (const LimitFlag& f : limits) {
    took = take(f.name);
    if (!took.ok()) {
      return took.status();
    }
    if (!*took) {
      continue;
    }
    absl::StatusOr<uint64_t> n = ParseLimit(f.name, v, f.max);
    if (!n.ok()) {
      return n.status();
    }
    TurnOn(*f.step);
    if (f.name == "--memory-limit") {
      spec.cgroup_limits.memory_bytes = *n * 1024 * 1024;
    } else if (f.name == "--pids-limit") {
      spec.cgroup_limits.pids_max = *n;
    } else if (f.name == "--cpu-percent") {
      spec.cgroup_limits.cpu_percent = static_cast<uint32_t>(*n);
    } else if (f.name == "--open-files") {
      spec.rlimit_values.open_files = *n;
    } else {
      spec.rlimit_values.cpu_seconds = *n;
    }
    return true;
  }
  took = take("--env-allow");
  if (!took.ok() || *took) {
    if (took.ok()) {
      std::vector<std::string> names = SplitList(v);
      for (const std::string& name : names) {
        if (name.find('=') != std::string::npos) {
          return Usage(absl::StrCat("--env-allow takes variable names, and `", name,
                                    "` is not one (to set a value, use a --profile file's "
                                    "\"env\": {\"set\": …})"));
        }
      }
      c.env_allow = std::move(names);
    }
    return took;
  }
  took = take("--cwd");
  if (!took.ok() || *took) {
    if (took.ok() && v.empty()) {
      return Usage("--cwd needs a directory");
    }
    if (took.ok()) {
      c.cwd = std::string(v);
    }
    return took;
  }
  took = take("--namespaces");
  if (!took.ok() || *took) {
    if (!took.ok()) {
      return took;
    }
    std::vector<std::string> names = SplitList(v);
    if (names.empty()) {
      return Usage("--namespaces needs a list: pid, net, mount, user (comma-separated)");
    }
    for (const std::string& name : names) {
      bool* field = name == "pid"     ? &spec.namespace_set.pid
                    : name == "net"   ? &spec.namespace_set.net
                    : name == "mount" ? &spec.namespace_set.mount
                    : name == "user"  ? &spec.namespace_set.user
                                      : nullptr;
      if (field == nullptr) {
        return Usage(absl::StrCat("--namespaces: unknown namespace `", name,
                                  "`; use pid, net, mount, user"));
      }
      *field = true;
    }
    TurnOn(spec.namespaces);
    return true;
  }
  took = take("--sandbox-require");
  if (!took.ok() || *took) {
    if (!took.ok()) {
      return took;
    }
    std::vector<std::string> steps = SplitList(v);
    if (steps.empty()) {
      return Usage(
          "--sandbox-require needs a list of steps: no_new_privs, rlimits, cgroup, seccomp, "
          "namespaces");
    }
    for (const std::string& step : steps) {
      Requirement* field = step == "no_new_privs" ? &spec.no_new_privs
                           : step == "rlimits"    ? &spec.rlimits
                           : step == "cgroup"     ? &spec.cgroup
                           : step == "seccomp"    ? &spec.seccomp
                           : step == "namespaces" ? &spec.namespaces
                                                  : nullptr;
      if (field == nullptr) {
        return Usage(absl::StrCat("--sandbox-require: unknown sandbox step `", step,
                                  "`; the steps are no_new_privs, rlimits, cgroup, seccomp, "
                                  "namespaces"));
      }
      *field = Requirement::kRequired;
    }
    return true;
  }
  return false;
}

// `--profile FILE` brings its own command and containment; mixing it with either is ambiguous.
absl::Status CheckProfileConflicts(const Command& cmd, bool command_given) {
  if (cmd.profile_file.empty()) {
    return absl::OkStatus();
  }
  if (command_given) {
    return Usage(
        "--profile FILE names the server command itself (its \"command\"); drop the command "
        "after `--`, or drop --profile");
  }
  if (!cmd.containment.given.empty()) {
    return Usage(absl::StrCat("--profile FILE sets the server's sandbox, environment and cwd; ",
                              "put ", cmd.containment.given.front(),
                              " in the file's \"sandbox\" (or drop --profile)"));
  }
  return absl::OkStatus();
}

// Parses one sidecar option at args[p.i]; false when args[p.i] is not one.
absl::StatusOr<bool> ParseSidecarOption(OptionParser& p, Command& cmd, bool& prefixes_given) {
  std::string_view v;
  std::string_view arg = p.args[p.i];
  if (arg == "--debug") {
    cmd.debug = true;
    return true;
  }
  if (absl::StatusOr<bool> took = ParseContainmentOption(p, cmd); !took.ok() || *took) {
    return took;
  }
  struct NumberFlag {
    std::string_view name;
    int64_t* target;
  };
  int64_t busy_poll_us = cmd.sidecar.busy_poll.count();
  auto max_bytes = static_cast<int64_t>(cmd.sidecar.max_message_bytes);
  auto buffer_bytes = static_cast<int64_t>(cmd.sidecar.restart_buffer_bytes);
  int64_t request_timeout_ms = cmd.sidecar.request_timeout.count();
  NumberFlag numbers[] = {
      {"--max-restarts", &cmd.spawn.max_restarts},
      {"--restart-backoff-ms", &cmd.spawn.restart_backoff_ms},
      {"--kill-timeout-ms", &cmd.spawn.kill_timeout_ms},
      {"--max-message-bytes", &max_bytes},
      {"--restart-buffer-bytes", &buffer_bytes},
      {"--busy-poll-us", &busy_poll_us},
      {"--request-timeout-ms", &request_timeout_ms},
  };
  for (const NumberFlag& f : numbers) {
    absl::StatusOr<bool> took = p.Take(f.name, &v);
    if (!took.ok()) {
      return took.status();
    }
    if (*took) {
      absl::StatusOr<int64_t> n = ParseNumber(f.name, v);
      if (!n.ok()) {
        return n.status();
      }
      *f.target = *n;
      if (f.name == "--max-message-bytes" && *n < 64) {
        return Usage("--max-message-bytes must be at least 64");
      }
      if (f.name == "--busy-poll-us" && *n > 10000) {
        return Usage("--busy-poll-us is at most 10000 (10 ms); 20..100 is the useful range");
      }
      if (f.name == "--request-timeout-ms" && *n > 86400000) {
        return Usage("--request-timeout-ms is at most 86400000 (24 h); 0 turns the timeout off");
      }
      cmd.sidecar.busy_poll = std::chrono::microseconds(busy_poll_us);
      cmd.sidecar.max_message_bytes = static_cast<size_t>(max_bytes);
      cmd.sidecar.restart_buffer_bytes = static_cast<size_t>(buffer_bytes);
      cmd.sidecar.request_timeout = std::chrono::milliseconds(request_timeout_ms);
      return true;
    }
  }
  absl::StatusOr<bool> took = p.Take("--allow-prefix", &v);
  if (!took.ok() || *took) {
    if (took.ok()) {
      if (!prefixes_given) {
        cmd.spawn.allowed_prefixes.clear();
        prefixes_given = true;
      }
      cmd.spawn.allowed_prefixes.emplace_back(v);
    }
    return took;
  }
  took = p.Take("--server-framing", &v);
  if (!took.ok() || *took) {
    if (took.ok()) {
      if (v == "auto") {
        cmd.sidecar.server_framing = framing::Framing::kUnknown;
      } else if (v == "ndjson") {
        cmd.sidecar.server_framing = framing::Framing::kNdjson;
      } else if (v == "content-length") {
        cmd.sidecar.server_framing = framing::Framing::kContentLength;
      } else {
        return Usage(
            absl::StrCat("--server-framing is auto, ndjson or content-length, not `", Sv(v), "`"));
      }
    }
    return took;
  }
  struct StringFlag {
    std::string_view name;
    std::string* target;
  };
  proxy::GovernanceOptions& g = cmd.governance;
  StringFlag strings[] = {
      {"--policy", &g.policy_path},
      {"--policy-file", &g.policy_path},
      {"-p", &g.policy_path},
      {"--tenant", &g.claimed.tenant},
      {"--user", &g.claimed.user},
      {"--agent", &g.claimed.agent},
      {"--server-id", &g.server_id},
      {"--audit-log", &g.audit_path},
      {"--audit-key", &g.audit_key_path},
      {"--metrics-file", &g.metrics_path},
  };
  for (const StringFlag& f : strings) {
    took = p.Take(f.name, &v);
    if (!took.ok()) {
      return took.status();
    }
    if (*took) {
      if (v.empty()) {
        return Usage(absl::StrCat(Sv(f.name), " needs a non-empty value"));
      }
      *f.target = std::string(v);
      cmd.governed = true;
      return true;
    }
  }
  for (auto [name, target] :
       {std::pair{"--roles", &g.claimed.roles}, std::pair{"--scopes", &g.claimed.scopes}}) {
    took = p.Take(name, &v);
    if (!took.ok()) {
      return took.status();
    }
    if (*took) {
      *target = SplitList(v);
      cmd.governed = true;
      return true;
    }
  }
  took = p.Take("--audit-fsync", &v);
  if (!took.ok() || *took) {
    if (took.ok()) {
      using Fsync = audit::AuditOptions::FsyncPolicy;
      if (v == "never") {
        g.audit_fsync = Fsync::kNever;
      } else if (v == "segment") {
        g.audit_fsync = Fsync::kPerSegment;
      } else if (v == "batch") {
        g.audit_fsync = Fsync::kPerBatch;
      } else {
        return Usage(absl::StrCat("--audit-fsync is never, segment or batch, not `", Sv(v), "`"));
      }
    }
    return took;
  }
  return false;
}

void ApplyEnvironment(const GetEnv& getenv, Command& cmd) {
  auto env = [&getenv](const char* name) -> std::string_view {
    const char* v = getenv(name);
    return v == nullptr ? std::string_view() : std::string_view(v);
  };
  // The caller's identity (flags override these). Unlike the prototype, MCP_PROXY_TENANT_ID
  // really is the tenant of the governed traffic.
  middleware::Principal& who = cmd.governance.claimed;
  who.tenant = std::string(env("MCP_PROXY_TENANT_ID"));
  who.user = std::string(env("MCP_PROXY_USER_ID"));
  who.agent = std::string(env("MCP_PROXY_AGENT_ID"));
  who.roles = SplitList(env("MCP_PROXY_ROLES"));
  who.scopes = SplitList(env("MCP_PROXY_SCOPES"));
  if (std::string_view server = env("MCP_PROXY_SERVER_ID"); !server.empty()) {
    cmd.governance.server_id = std::string(server);
  }
  cmd.governance.policy_path = std::string(env("MCP_PROXY_POLICY_FILE"));
  cmd.governed = !cmd.governance.policy_path.empty();
  cmd.spawn.allowed_prefixes = pool::ParseAllowedPrefixes(env("MCP_PROXY_ALLOWED_PREFIXES"));
  cmd.spawn.max_restarts =
      pool::ParseIntLikeParseInt(env("MCP_PROXY_MAX_RESTARTS"), pool::kDefaultMaxRestarts);
  cmd.spawn.restart_backoff_ms = pool::ParseIntLikeParseInt(env("MCP_PROXY_RESTART_BACKOFF_MS"),
                                                            pool::kDefaultRestartBackoffMs);
  cmd.spawn.kill_timeout_ms =
      pool::ParseIntLikeParseInt(env("MCP_PROXY_KILL_TIMEOUT_MS"), pool::kDefaultKillTimeoutMs);
  cmd.debug = env("MCP_PROXY_DEBUG") == "1";
}

// Copies the governor-facing numbers into the session options, clamped as the governor will.
void Finalize(Command& cmd) {
  Clamp("max restarts", 0, 10, &cmd.spawn.max_restarts, &cmd.warnings);
  Clamp("restart backoff (ms)", 100, 60000, &cmd.spawn.restart_backoff_ms, &cmd.warnings);
  Clamp("kill timeout (ms)", 100, 120000, &cmd.spawn.kill_timeout_ms, &cmd.warnings);
  cmd.sidecar.max_restarts = static_cast<int>(cmd.spawn.max_restarts);
  cmd.sidecar.restart_backoff = std::chrono::milliseconds(cmd.spawn.restart_backoff_ms);
  cmd.sidecar.kill_timeout = std::chrono::milliseconds(cmd.spawn.kill_timeout_ms);
}

absl::StatusOr<Command> ParseStdioVerb(const std::vector<std::string_view>& args,
                                       const GetEnv& getenv) {
  Command cmd;
  cmd.verb = Verb::kStdio;
  ApplyEnvironment(getenv, cmd);
  bool prefixes_given = false;
  OptionParser p{args, 2};
  for (; p.i < args.size(); ++p.i) {
    std::string_view arg = args[p.i];
    if (arg == "--") {
      ++p.i;
      break;
    }
    if (arg == "--help" || arg == "-h") {
      return Command{.verb = Verb::kHelp};
    }
    absl::StatusOr<bool> took = ParseSidecarOption(p, cmd, prefixes_given);
    if (!took.ok()) {
      return took.status();
    }
    if (*took) {
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      return Usage(
          absl::StrCat("unknown option `", Sv(arg), "`; put the server command after `--`"));
    }
    break;  // the server command starts here (the `--` is optional)
  }
  for (; p.i < args.size(); ++p.i) {
    cmd.spawn.argv.emplace_back(args[p.i]);
  }
  if (absl::Status st = CheckProfileConflicts(cmd, !cmd.spawn.argv.empty()); !st.ok()) {
    return st;
  }
  if (cmd.spawn.argv.empty() && cmd.profile_file.empty()) {
    return Usage(
        "`mcpmw stdio` needs the MCP server command: mcpmw stdio -- CMD [ARGS...] (or "
        "--profile FILE)");
  }
  Finalize(cmd);
  return cmd;
}

absl::StatusOr<Command> ParseLegacy(const std::vector<std::string_view>& args,
                                    const GetEnv& getenv) {
  Command cmd;
  cmd.verb = Verb::kStdio;
  ApplyEnvironment(getenv, cmd);
  bool prefixes_given = false;
  bool stdio = false;
  bool have_command = false;
  OptionParser p{args, 1};
  for (; p.i < args.size(); ++p.i) {
    std::string_view arg = args[p.i];
    std::string_view v;
    if (arg == "--help" || arg == "-h") {
      return Command{.verb = Verb::kHelp};
    }
    if (arg == "--stdio") {
      stdio = true;
      continue;
    }
    if (arg == "--") {
      // The prototype joined the rest into one string; keeping the words is strictly better.
      for (++p.i; p.i < args.size(); ++p.i) {
        cmd.spawn.argv.emplace_back(args[p.i]);
      }
      have_command = !cmd.spawn.argv.empty();
      break;
    }
    absl::StatusOr<bool> took = p.Take("--proxy", &v);
    if (!took.ok()) {
      return took.status();
    }
    if (*took) {
      cmd.spawn.command_line = std::string(v);
      have_command = true;
      continue;
    }
    took = ParseSidecarOption(p, cmd, prefixes_given);
    if (!took.ok()) {
      return took.status();
    }
    if (!*took) {
      if (arg.size() > 1 && arg[0] == '-') {
        return Usage(absl::StrCat("unknown option `", Sv(arg), "`"));
      }
      return Usage(absl::StrCat("`", Sv(arg),
                                "` looks like the prototype's file mode: use mcpmw eval FILE; "
                                "for the sidecar use: mcpmw stdio -- CMD [ARGS...]"));
    }
  }
  if (!stdio) {
    return Usage("Failed: proxy mode currently requires --stdio");
  }
  // The prototype's servers spoke Content-Length like its clients: mirror the client unless told.
  cmd.sidecar.server_framing_mirrors_client = true;
  if (absl::Status st = CheckProfileConflicts(cmd, have_command); !st.ok()) {
    return st;
  }
  if (!have_command && cmd.profile_file.empty()) {
    return Usage("--stdio needs the server command: --proxy \"CMD ARGS\" or -- CMD ARGS");
  }
  Finalize(cmd);
  return cmd;
}

absl::StatusOr<Command> ParsePolicyVerb(const std::vector<std::string_view>& args) {
  if (args.size() != 4 || args[2] != "check" || args[3].substr(0, 1) == "-") {
    return Usage("usage: mcpmw policy check FILE (validates a policy bundle without running it)");
  }
  return Command{.verb = Verb::kPolicyCheck, .policy_file = std::string(args[3])};
}

absl::StatusOr<Command> ParseServeVerb(const std::vector<std::string_view>& args) {
  constexpr std::string_view kServeUsage =
      "usage: mcpmw serve --config FILE [--debug] (FILE: the gateway config; see the README)";
  Command cmd{.verb = Verb::kServe};
  OptionParser p{args, 2};
  for (; p.i < args.size(); ++p.i) {
    std::string_view v;
    absl::StatusOr<bool> took = p.Take("--config", &v);
    if (!took.ok()) {
      return took.status();
    }
    if (*took) {
      if (v.empty()) {
        return Usage("--config needs a file name");
      }
      cmd.serve_config = std::string(v);
    } else if (args[p.i] == "--debug") {
      cmd.debug = true;
    } else if (args[p.i] == "--help" || args[p.i] == "-h") {
      return Command{.verb = Verb::kHelp};
    } else {
      return Usage(absl::StrCat("unknown option `", Sv(args[p.i]), "` for `mcpmw serve`; ",
                                Sv(kServeUsage)));
    }
  }
  if (cmd.serve_config.empty()) {
    return Usage(kServeUsage);
  }
  return cmd;
}

absl::StatusOr<Command> ParsePoolVerb(const std::vector<std::string_view>& args) {
  constexpr std::string_view kPoolUsage =
      "usage: mcpmw pool check FILE | mcpmw pool run FILE [--metrics-file F] (FILE: "
      "{\"pools\": [profile, ...]})";
  if (args.size() < 4 || (args[2] != "check" && args[2] != "run")) {
    return Usage(kPoolUsage);
  }
  Command cmd;
  cmd.verb = args[2] == "check" ? Verb::kPoolCheck : Verb::kPoolRun;
  OptionParser p{args, 3};
  for (; p.i < args.size(); ++p.i) {
    std::string_view v;
    absl::StatusOr<bool> took =
        cmd.verb == Verb::kPoolRun ? p.Take("--metrics-file", &v) : absl::StatusOr<bool>(false);
    if (!took.ok()) {
      return took.status();
    }
    if (*took) {
      if (v.empty()) {
        return Usage("--metrics-file needs a file name");
      }
      cmd.pool_metrics_file = std::string(v);
    } else if (args[p.i] == "--debug") {
      cmd.debug = true;
    } else if (args[p.i].substr(0, 1) == "-") {
      return Usage(
          absl::StrCat("unknown option `", Sv(args[p.i]), "` for `mcpmw pool ", Sv(args[2]), "`"));
    } else if (cmd.pools_file.empty()) {
      cmd.pools_file = std::string(args[p.i]);
    } else {
      return Usage(kPoolUsage);
    }
  }
  if (cmd.pools_file.empty()) {
    return Usage(kPoolUsage);
  }
  return cmd;
}

absl::StatusOr<Command> ParseAuditVerb(const std::vector<std::string_view>& args) {
  if (args.size() < 3 || args[2] != "verify") {
    return Usage("`mcpmw audit` has one subcommand: mcpmw audit verify FILE --key KEYFILE");
  }
  Command cmd;
  cmd.verb = Verb::kAuditVerify;
  OptionParser p{args, 3};
  for (; p.i < args.size(); ++p.i) {
    std::string_view v;
    absl::StatusOr<bool> took = p.Take("--key", &v);
    if (!took.ok()) {
      return took.status();
    }
    if (*took) {
      cmd.key_file = std::string(v);
    } else if (args[p.i].substr(0, 1) == "-") {
      return Usage(absl::StrCat("unknown option `", Sv(args[p.i]), "` for `mcpmw audit verify`"));
    } else if (cmd.audit_file.empty()) {
      cmd.audit_file = std::string(args[p.i]);
    } else {
      return Usage("`mcpmw audit verify` takes one FILE");
    }
  }
  if (cmd.audit_file.empty() || cmd.key_file.empty()) {
    return Usage(
        "usage: mcpmw audit verify FILE --key KEYFILE (the HMAC key or Ed25519 PEM "
        "the log was signed with)");
  }
  return cmd;
}

}  // namespace

std::string_view UsageText() { return kUsage; }

absl::StatusOr<Command> ParseCommandLine(const std::vector<std::string_view>& args,
                                         const GetEnv& getenv) {
  if (args.size() < 2) {
    return Usage("no verb given");
  }
  std::string_view verb = args[1];
  if (verb == "--help" || verb == "-h" || verb == "help") {
    return Command{.verb = Verb::kHelp};
  }
  if (verb == "--version" || verb == "version") {
    return Command{.verb = Verb::kVersion};
  }
  if (verb == "stdio") {
    return ParseStdioVerb(args, getenv);
  }
  if (verb.substr(0, 1) == "-") {
    return ParseLegacy(args, getenv);
  }
  if (verb == "audit") {
    return ParseAuditVerb(args);
  }
  if (verb == "policy") {
    return ParsePolicyVerb(args);
  }
  if (verb == "pool") {
    return ParsePoolVerb(args);
  }
  if (verb == "eval") {
    Command cmd{.verb = Verb::kEval};
    cmd.eval_args.assign(args.begin() + 2, args.end());
    return cmd;
  }
  if (verb == "serve") {
    return ParseServeVerb(args);
  }
  if (verb == "hash-api-key") {
    if (args.size() != 2) {
      return Usage(
          "usage: mcpmw hash-api-key < KEYFILE (the key is read from stdin, never from "
          "the command line)");
    }
    return Command{.verb = Verb::kHashApiKey};
  }
  if (verb == "demo") {
    return Usage(absl::StrCat("`mcpmw ", Sv(verb), "` is not in this build yet; `mcpmw stdio` is"));
  }
  return Usage(absl::StrCat("unknown verb `", Sv(verb), "`"));
}

}  // namespace mcpmw::app
