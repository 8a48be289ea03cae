#include "src/app/pool_command.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pool/governor.h"
#include "pool/pool_manager.h"
#include "simdjson.h"
#include "src/common/log.h"
#include "src/common/strings.h"

namespace mcpmw::app {
namespace {

using pool::sandbox::ChildStep;
using pool::sandbox::Requirement;

constexpr uint64_t kMiB = uint64_t{1024} * 1024;
// While some profile is still short of its minWarm workers, how often `pool run` looks again.
constexpr std::chrono::milliseconds kWarmCheckInterval{100};

absl::Status Bad(std::string_view pointer, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(pointer), ": ", Sv(what)));
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int error = errno;
    std::string why = absl::StrCat("cannot read ", path, ": ", ErrnoText(error));
    return error == EACCES ? absl::PermissionDeniedError(why) : absl::NotFoundError(why);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::Status PrefixPath(const std::string& path, const absl::Status& status) {
  return {status.code(), absl::StrCat(path, ": ", status.message())};
}

std::string_view RequirementName(Requirement r) {
  switch (r) {
    case Requirement::kOff:
      return "off";
    case Requirement::kOptional:
      return "optional";
    case Requirement::kRequired:
      return "required";
  }
  return "off";
}

// The settings of `step` that the description shows ("open files 1024, core dumps off").
std::string StepDetails(ChildStep step, const pool::Profile& profile,
                        const pool::sandbox::SandboxPlan& plan) {
  const pool::sandbox::Spec& spec = profile.sandbox;
  std::vector<std::string> parts;
  switch (step) {
    case ChildStep::kNoNewPrivs:
      parts.emplace_back("setuid and file capabilities cannot raise privileges");
      break;
    case ChildStep::kRlimits: {
      const pool::sandbox::Rlimits& r = spec.rlimit_values;
      parts.emplace_back(r.core_dumps ? "core dumps on" : "core dumps off");
      if (r.open_files) {
        parts.push_back(absl::StrCat("open files ", *r.open_files));
      }
      if (r.address_space_bytes) {
        parts.push_back(absl::StrCat("address space ", *r.address_space_bytes / kMiB, " MiB"));
      }
      if (r.cpu_seconds) {
        parts.push_back(absl::StrCat("CPU time ", *r.cpu_seconds, " s"));
      }
      break;
    }
    case ChildStep::kCgroup: {
      const pool::sandbox::CgroupLimits& c = spec.cgroup_limits;
      parts.emplace_back("one cgroup per worker, killed as a whole at teardown");
      if (c.memory_bytes) {
        parts.push_back(absl::StrCat("memory ", *c.memory_bytes / kMiB, " MiB"));
      }
      if (c.pids_max) {
        parts.push_back(absl::StrCat("pids ", *c.pids_max));
      }
      if (c.cpu_percent) {
        parts.push_back(absl::StrCat("CPU ", *c.cpu_percent, "% of one CPU"));
      }
      break;
    }
    case ChildStep::kNamespaces: {
      const pool::sandbox::Namespaces& n = spec.namespace_set;
      for (auto [on, name] : {std::pair{n.pid, "pid"}, std::pair{n.net, "net"},
                              std::pair{n.mount, "mount"}, std::pair{n.user, "user"}}) {
        if (on) {
          parts.emplace_back(name);
        }
      }
      if (parts.empty()) {
        parts.emplace_back("none asked for");
      }
      break;
    }
    case ChildStep::kSeccomp:
      parts.emplace_back("default deny list");
      parts.emplace_back(spec.network == pool::sandbox::Network::kNone
                             ? "network none (only AF_UNIX sockets)"
                             : "network allowed");
      if (plan.applies(ChildStep::kSeccomp)) {
        parts.push_back(absl::StrCat(plan.seccomp_instructions(), " BPF instructions"));
      }
      break;
  }
  return absl::StrJoin(parts, ", ");
}

Requirement StepRequirement(ChildStep step, const pool::sandbox::Spec& spec) {
  switch (step) {
    case ChildStep::kNoNewPrivs:
      return spec.no_new_privs;
    case ChildStep::kRlimits:
      return spec.rlimits;
    case ChildStep::kCgroup:
      return spec.cgroup;
    case ChildStep::kNamespaces:
      return spec.namespaces;
    case ChildStep::kSeccomp:
      return spec.seccomp;
  }
  return Requirement::kOff;
}

// Whether the profile configures `step` (limits, network, namespaces) beyond turning it on.
bool HasSettings(ChildStep step, const pool::sandbox::Spec& spec) {
  switch (step) {
    case ChildStep::kNoNewPrivs:
      return false;
    case ChildStep::kRlimits: {
      const pool::sandbox::Rlimits& r = spec.rlimit_values;
      return r.open_files || r.address_space_bytes || r.cpu_seconds || r.core_dumps;
    }
    case ChildStep::kCgroup: {
      const pool::sandbox::CgroupLimits& c = spec.cgroup_limits;
      return c.memory_bytes || c.pids_max || c.cpu_percent;
    }
    case ChildStep::kNamespaces: {
      const pool::sandbox::Namespaces& n = spec.namespace_set;
      return n.pid || n.net || n.mount || n.user;
    }
    case ChildStep::kSeccomp:
      return spec.network == pool::sandbox::Network::kNone;
  }
  return false;
}

void Print(std::FILE* out, std::string_view text) { std::fwrite(text.data(), 1, text.size(), out); }

// Writes the pools' metrics to `path` through a temporary file and a rename, so a reader never
// sees half of them.
void WriteMetricsFile(const pool::PoolManager& pools, const std::string& path) {
  const std::string text = pools.RenderPrometheus();
  const std::string tmp = absl::StrCat(path, ".tmp-", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) {
      LogError("pool run: cannot write the metrics to ", tmp, ": ", ErrnoText(errno));
      ::unlink(tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    LogError("pool run: cannot rename ", tmp, " to ", path, ": ", ErrnoText(errno));
    ::unlink(tmp.c_str());
  }
}

}  // namespace

absl::StatusOr<std::vector<pool::Profile>> ParseProfilesFile(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return Bad("/", absl::StrCat("not valid JSON (", simdjson::error_message(err), ")"));
  }
  simdjson::dom::object top;
  if (root.get_object().get(top) != simdjson::SUCCESS) {
    return Bad("/", R"(expected an object: {"pools": [profile, ...]})");
  }
  simdjson::dom::array pools;
  bool have_pools = false;
  for (auto [key, value] : top) {
    if (key != "pools") {
      return Bad(absl::StrCat("/", Sv(key)), R"(unknown key; a profiles file has only "pools")");
    }
    if (value.get_array().get(pools) != simdjson::SUCCESS) {
      return Bad("/pools", "expected an array of profile objects");
    }
    have_pools = true;
  }
  if (!have_pools) {
    return Bad("/pools", "required: the array of profiles");
  }
  std::vector<pool::Profile> profiles;
  std::map<std::string, size_t> names;
  for (simdjson::dom::element e : pools) {
    const size_t i = profiles.size();
    const std::string pointer = absl::StrCat("/pools/", i);
    absl::StatusOr<pool::Profile> profile = pool::ParseProfileElement(e, pointer);
    if (!profile.ok()) {
      return profile.status();
    }
    if (auto [it, fresh] = names.emplace(profile->name, i); !fresh) {
      return Bad(absl::StrCat(pointer, "/name"),
                 absl::StrCat("`", profile->name, "` is already the name of /pools/", it->second,
                              "; names must be unique"));
    }
    profiles.push_back(*std::move(profile));
  }
  return profiles;
}

absl::StatusOr<std::vector<pool::Profile>> LoadProfilesFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadTextFile(path);
  if (!text.ok()) {
    return text.status();
  }
  absl::StatusOr<std::vector<pool::Profile>> profiles = ParseProfilesFile(*text);
  if (!profiles.ok()) {
    return PrefixPath(path, profiles.status());
  }
  return profiles;
}

absl::StatusOr<pool::Profile> LoadProfileFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadTextFile(path);
  if (!text.ok()) {
    return text.status();
  }
  absl::StatusOr<pool::Profile> profile = pool::ParseProfile(*text);
  if (!profile.ok()) {
    return PrefixPath(path, profile.status());
  }
  return profile;
}

void ApplyContainment(const ContainmentFlags& flags, pool::Profile& profile) {
  profile.sandbox = flags.sandbox;
  if (flags.env_allow) {
    profile.env_allow = *flags.env_allow;
  }
  if (!flags.cwd.empty()) {
    profile.cwd = flags.cwd;
  }
}

absl::StatusOr<pool::Profile> SidecarProfile(const ContainmentFlags& flags,
                                             std::optional<pool::Profile> from_file,
                                             std::vector<std::string> argv,
                                             const char* const* envp) {
  if (argv.empty() || argv.front().empty()) {
    return absl::InvalidArgumentError("no server command given (mcpmw stdio -- CMD ARGS…)");
  }
  if (from_file) {
    from_file->argv = std::move(argv);
    return *std::move(from_file);
  }
  absl::StatusOr<pool::Profile> profile =
      pool::ProfileFromCommandLine(std::move(argv), envp, /*warm=*/false);
  if (profile.ok()) {
    ApplyContainment(flags, *profile);
  }
  return profile;
}

std::string DescribeProfile(const pool::Profile& p, const pool::sandbox::SandboxPlan& plan) {
  std::vector<std::string> words;
  words.reserve(p.argv.size());
  for (const std::string& arg : p.argv) {
    words.push_back(pool::QuoteArgument(arg));
  }
  std::string out = absl::StrCat("profile `", p.name, "`: ", absl::StrJoin(words, " "), "\n");
  absl::StrAppend(&out, "  ", Sv(pool::IsolationName(p.isolation)), ", minWarm ", p.min_warm,
                  ", maxWorkers ", p.max_workers, ", prewarm ", Sv(pool::PrewarmName(p.prewarm)),
                  ", readiness ", p.readiness == pool::Readiness::kPing ? "ping" : "spawn", "\n");
  std::vector<std::string> env;
  if (!p.env_allow.empty()) {
    env.push_back(absl::StrCat("allowed from mcpmw's: ", absl::StrJoin(p.env_allow, ", ")));
  }
  if (!p.env_set.empty()) {
    std::vector<std::string> set;
    set.reserve(p.env_set.size());
    for (const auto& [name, value] : p.env_set) {
      set.push_back(name);
    }
    env.push_back(absl::StrCat("set: ", absl::StrJoin(set, ", ")));
  }
  absl::StrAppend(&out, "  environment: ", env.empty() ? "empty" : absl::StrJoin(env, "; "), "\n");
  absl::StrAppend(&out, "  cwd: ", p.cwd.empty() ? "mcpmw's" : p.cwd, "\n");
  for (ChildStep step : {ChildStep::kNoNewPrivs, ChildStep::kRlimits, ChildStep::kCgroup,
                         ChildStep::kNamespaces, ChildStep::kSeccomp}) {
    const std::string_view name = pool::sandbox::ChildStepName(step);
    const Requirement requirement = StepRequirement(step, p.sandbox);
    std::string line = absl::StrCat("  ", Sv(name), ":", std::string(14 - name.size(), ' '));
    if (plan.applies(step)) {
      absl::StrAppend(&line, "applied (", Sv(RequirementName(requirement)),
                      "): ", StepDetails(step, p, plan));
    } else if (requirement == Requirement::kOff) {
      absl::StrAppend(&line, "off");
      if (HasSettings(step, p.sandbox)) {
        absl::StrAppend(&line, R"( (its settings are ignored: give it "require": "optional" or )"
                               R"("required"))");
      }
    } else {
      std::string reason = "not applied";
      for (const pool::sandbox::SkippedStep& skipped : plan.skipped()) {
        if (skipped.step == name) {
          reason = skipped.reason;
        }
      }
      absl::StrAppend(&line, "skipped (", Sv(RequirementName(requirement)), "): ", reason);
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

int RunPoolCheck(const Command& cmd, const pool::sandbox::HostCapabilities& host, std::FILE* out) {
  absl::StatusOr<std::vector<pool::Profile>> profiles = LoadProfilesFile(cmd.pools_file);
  if (!profiles.ok()) {
    LogError("INVALID: ", profiles.status().message());
    return 1;
  }
  size_t unstartable = 0;
  for (const pool::Profile& profile : *profiles) {
    absl::StatusOr<pool::sandbox::SandboxPlan> plan = pool::sandbox::Plan(profile.sandbox, host);
    if (!plan.ok()) {
      ++unstartable;
      Print(out, absl::StrCat("profile `", profile.name,
                              "`: cannot start on this host: ", plan.status().message(), "\n"));
      continue;
    }
    Print(out, DescribeProfile(profile, *plan));
  }
  if (unstartable > 0) {
    LogError("INVALID: ", cmd.pools_file, ": ", unstartable, " of ", profiles->size(),
             " profile(s) cannot start on this host (a required sandbox step is missing or the "
             "sandbox contradicts itself)");
    return 1;
  }
  Print(out, absl::StrCat("OK: ", cmd.pools_file, ": ", profiles->size(), " profile(s)\n"));
  return 0;
}

int RunPoolRun(const Command& cmd) {
  absl::StatusOr<std::vector<pool::Profile>> profiles = LoadProfilesFile(cmd.pools_file);
  if (!profiles.ok()) {
    LogError(profiles.status().message());
    return 1;
  }
  // Signals are taken synchronously below; the reactor thread inherits this mask, so none of them
  // can land on it. A vanished worker is an EPIPE, not a death.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);

  std::vector<std::pair<std::string, uint32_t>> warming;  // profiles short of minWarm, once
  std::vector<std::string> names;
  for (const pool::Profile& p : *profiles) {
    names.push_back(p.name);
    if (p.min_warm > 0) {
      warming.emplace_back(p.name, p.min_warm);
    }
  }
  absl::StatusOr<std::unique_ptr<pool::PoolManager>> pools =
      pool::PoolManager::Start(*std::move(profiles));
  if (!pools.ok()) {
    LogError(pools.status().message());
    return 1;
  }
  LogError("pool run: started ", absl::StrJoin(names, ", "),
           "; SIGTERM or SIGINT stops every worker",
           cmd.pool_metrics_file.empty()
               ? ""
               : absl::StrCat(", SIGUSR1 writes the metrics to ", cmd.pool_metrics_file));
  while (true) {
    siginfo_t info{};
    int signo = 0;
    if (warming.empty()) {
      signo = ::sigwaitinfo(&mask, &info);
    } else {
      timespec tick{0, std::chrono::nanoseconds(kWarmCheckInterval).count()};
      signo = ::sigtimedwait(&mask, &info, &tick);
    }
    if (signo == SIGINT || signo == SIGTERM) {
      LogError("pool run: received SIG", sigabbrev_np(signo), "; stopping every worker");
      break;
    }
    if (signo == SIGUSR1) {
      if (!cmd.pool_metrics_file.empty()) {
        WriteMetricsFile(**pools, cmd.pool_metrics_file);
      }
      continue;
    }
    for (auto it = warming.begin(); it != warming.end();) {
      absl::StatusOr<pool::ProfileStats> stats = (*pools)->Stats(it->first);
      if (stats.ok() && stats->warm >= it->second) {
        LogError("pool ", it->first, ": ", stats->warm, " warm");
        it = warming.erase(it);
      } else {
        ++it;
      }
    }
  }
  (*pools)->Shutdown();
  LogError("pool run: every worker stopped and reaped");
  if (!cmd.pool_metrics_file.empty()) {
    WriteMetricsFile(**pools, cmd.pool_metrics_file);
  }
  return 0;
}

}  // namespace mcpmw::app
