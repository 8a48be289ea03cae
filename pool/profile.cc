#include "pool/profile.h"

#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/json_reader.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::pool {
namespace {

using sandbox::Requirement;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr uint64_t kMiB = uint64_t{1024} * 1024;

using json::AsObject;
using json::Bad;
using json::EscapeToken;
using json::ObjectReader;
using json::TypeName;

absl::StatusOr<Requirement> ParseRequirement(ObjectReader& r, std::string_view key,
                                             Requirement fallback) {
  return r.Choice<Requirement>(key,
                               {{"required", Requirement::kRequired},
                                {"optional", Requirement::kOptional},
                                {"off", Requirement::kOff}},
                               fallback);
}

// An environment variable name as execve passes it on: no '=' and no NUL.
bool ValidEnvName(std::string_view name) {
  return !name.empty() && name.find('=') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

absl::Status ParseEnv(ObjectReader& r, Profile& p) {
  MCPMW_ASSIGN_OR_RETURN(p.env_allow, r.Strings("allow"));
  for (size_t i = 0; i < p.env_allow.size(); ++i) {
    if (!ValidEnvName(p.env_allow[i])) {
      return Bad(absl::StrCat(r.Ptr("allow"), "/", i),
                 "not a variable name (empty, or contains '=' or NUL)");
    }
  }
  std::optional<element> set = r.Get("set");
  if (set) {
    std::string ptr = r.Ptr("set");
    MCPMW_ASSIGN_OR_RETURN(object obj, AsObject(*set, ptr));
    for (auto [key, value] : obj) {
      std::string item_ptr = absl::StrCat(ptr, "/", EscapeToken(key));
      if (!ValidEnvName(key)) {
        return Bad(item_ptr, "not a variable name (empty, or contains '=' or NUL)");
      }
      std::string_view s;
      if (value.get_string().get(s) != simdjson::SUCCESS) {
        return Bad(item_ptr, absl::StrCat("expected a string, found ", Sv(TypeName(value.type()))));
      }
      if (s.find('\0') != std::string_view::npos) {
        return Bad(item_ptr, "contains a NUL byte");
      }
      p.env_set[std::string(key)] = std::string(s);
    }
  }
  return r.RejectUnknown();
}

// A step written in the profile without "require" is on, as optional: its settings were written
// to take effect. An explicit "require": "off" still turns it off.
Requirement AtLeastOptional(Requirement r) {
  return r == Requirement::kOff ? Requirement::kOptional : r;
}

absl::Status ParseSandbox(ObjectReader& r, sandbox::Spec& spec) {
  MCPMW_ASSIGN_OR_RETURN(spec.no_new_privs, ParseRequirement(r, "noNewPrivs", spec.no_new_privs));
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> rl, r.Object("rlimits"));
  if (rl) {
    MCPMW_ASSIGN_OR_RETURN(spec.rlimits, ParseRequirement(*rl, "require", spec.rlimits));
    MCPMW_ASSIGN_OR_RETURN(spec.rlimit_values.open_files, rl->Whole("openFiles"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> as_mb,
                           rl->Whole("addressSpaceMb", std::numeric_limits<uint32_t>::max()));
    if (as_mb) {
      spec.rlimit_values.address_space_bytes = *as_mb * kMiB;
    }
    MCPMW_ASSIGN_OR_RETURN(spec.rlimit_values.cpu_seconds, rl->Whole("cpuSeconds"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<bool> cores, rl->Bool("coreDumps"));
    spec.rlimit_values.core_dumps = cores.value_or(false);
    MCPMW_RETURN_IF_ERROR(rl->RejectUnknown());
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> cg, r.Object("cgroup"));
  if (cg) {
    MCPMW_ASSIGN_OR_RETURN(spec.cgroup,
                           ParseRequirement(*cg, "require", AtLeastOptional(spec.cgroup)));
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> mem_mb,
                           cg->Whole("memoryMb", std::numeric_limits<uint32_t>::max()));
    if (mem_mb) {
      spec.cgroup_limits.memory_bytes = *mem_mb * kMiB;
    }
    MCPMW_ASSIGN_OR_RETURN(spec.cgroup_limits.pids_max, cg->Whole("pidsMax"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> cpu, cg->Whole("cpuPercent", 100000));
    if (cpu) {
      spec.cgroup_limits.cpu_percent = static_cast<uint32_t>(*cpu);
    }
    MCPMW_RETURN_IF_ERROR(cg->RejectUnknown());
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> sc, r.Object("seccomp"));
  if (sc) {
    MCPMW_ASSIGN_OR_RETURN(spec.seccomp,
                           ParseRequirement(*sc, "require", AtLeastOptional(spec.seccomp)));
    MCPMW_ASSIGN_OR_RETURN(
        spec.network,
        sc->Choice<sandbox::Network>(
            "network", {{"none", sandbox::Network::kNone}, {"allow", sandbox::Network::kAllow}},
            spec.network));
    MCPMW_RETURN_IF_ERROR(sc->RejectUnknown());
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> ns, r.Object("namespaces"));
  if (ns) {
    MCPMW_ASSIGN_OR_RETURN(spec.namespaces,
                           ParseRequirement(*ns, "require", AtLeastOptional(spec.namespaces)));
    for (auto [key, field] :
         {std::pair{"pid", &spec.namespace_set.pid}, std::pair{"net", &spec.namespace_set.net},
          std::pair{"mount", &spec.namespace_set.mount},
          std::pair{"user", &spec.namespace_set.user}}) {
      MCPMW_ASSIGN_OR_RETURN(std::optional<bool> on, ns->Bool(key));
      *field = on.value_or(false);
    }
    MCPMW_RETURN_IF_ERROR(ns->RejectUnknown());
  }
  return r.RejectUnknown();
}

bool ValidProfileName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string_view EntryName(std::string_view entry) {
  size_t eq = entry.find('=');
  return eq == std::string_view::npos ? entry : entry.substr(0, eq);
}

}  // namespace

std::string_view IsolationName(Isolation isolation) {
  return isolation == Isolation::kShared ? "shared" : "exclusive";
}

std::string_view PrewarmName(Prewarm prewarm) {
  return prewarm == Prewarm::kInitialize ? "initialize" : "none";
}

absl::StatusOr<Profile> ParseProfileElement(element e, std::string_view pointer) {
  MCPMW_ASSIGN_OR_RETURN(object obj, AsObject(e, pointer));
  ObjectReader r(obj, std::string(pointer));
  Profile p;

  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> name, r.String("name"));
  if (!name || !ValidProfileName(*name)) {
    return Bad(r.Ptr("name"),
               "required: 1 to 64 characters from A-Z a-z 0-9 . _ - (it names workers and "
               "metrics)");
  }
  p.name = *std::move(name);
  if (!r.Get("command")) {
    return Bad(r.Ptr("command"), R"(required: the server's argv, e.g. ["node", "dist/index.js"])");
  }
  MCPMW_ASSIGN_OR_RETURN(p.argv, r.Strings("command"));
  if (p.argv.empty() || p.argv.front().empty()) {
    return Bad(r.Ptr("command"), "the command is empty; give at least the program to run");
  }
  for (size_t i = 0; i < p.argv.size(); ++i) {
    if (p.argv[i].find('\0') != std::string::npos) {
      return Bad(absl::StrCat(r.Ptr("command"), "/", i), "contains a NUL byte");
    }
  }

  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> env, r.Object("env"));
  if (env) {
    MCPMW_RETURN_IF_ERROR(ParseEnv(*env, p));
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> cwd, r.String("cwd"));
  p.cwd = cwd.value_or("");
  if (p.cwd.find('\0') != std::string::npos) {
    return Bad(r.Ptr("cwd"), "contains a NUL byte");
  }

  constexpr uint64_t kMaxWorkers = 4096;
  MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> min_warm, r.Whole("minWarm", kMaxWorkers));
  MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> max_workers, r.Whole("maxWorkers", kMaxWorkers));
  p.min_warm = static_cast<uint32_t>(min_warm.value_or(p.min_warm));
  p.max_workers = static_cast<uint32_t>(max_workers.value_or(std::max<uint64_t>(p.min_warm, 1)));
  if (p.max_workers == 0) {
    return Bad(r.Ptr("maxWorkers"), "must be at least 1");
  }
  if (p.min_warm > p.max_workers) {
    return Bad(r.Ptr("minWarm"), absl::StrCat("is ", p.min_warm, ", above maxWorkers (",
                                              p.max_workers, "); raise maxWorkers or lower it"));
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> idle, r.Millis("idleTimeoutMs"));
  p.idle_timeout = idle.value_or(p.idle_timeout);
  MCPMW_ASSIGN_OR_RETURN(p.isolation, r.Choice<Isolation>("isolation",
                                                          {{"exclusive", Isolation::kExclusive},
                                                           {"shared", Isolation::kShared}},
                                                          p.isolation));
  MCPMW_ASSIGN_OR_RETURN(
      p.prewarm,
      r.Choice<Prewarm>("prewarm", {{"none", Prewarm::kNone}, {"initialize", Prewarm::kInitialize}},
                        p.prewarm));
  MCPMW_ASSIGN_OR_RETURN(
      p.readiness,
      r.Choice<Readiness>("readiness", {{"ping", Readiness::kPing}, {"spawn", Readiness::kSpawn}},
                          p.readiness));

  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> recycle, r.Object("recycle"));
  if (recycle) {
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> sessions, recycle->Whole("afterSessions"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> requests, recycle->Whole("afterRequests"));
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> rss_mb,
                           recycle->Whole("rssMb", std::numeric_limits<uint32_t>::max()));
    p.recycle.after_sessions = sessions.value_or(0);
    p.recycle.after_requests = requests.value_or(0);
    p.recycle.rss_bytes = rss_mb.value_or(0) * kMiB;
    MCPMW_RETURN_IF_ERROR(recycle->RejectUnknown());
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> queue, r.Object("queue"));
  if (queue) {
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> waiting, queue->Whole("maxWaiting", 1 << 20));
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> wait,
                           queue->Millis("waitTimeoutMs"));
    p.queue.max_waiting = static_cast<uint32_t>(waiting.value_or(p.queue.max_waiting));
    p.queue.wait_timeout = wait.value_or(p.queue.wait_timeout);
    MCPMW_RETURN_IF_ERROR(queue->RejectUnknown());
  }
  for (auto [key, field] :
       {std::pair{"pingIntervalMs", &p.ping_interval}, std::pair{"pingTimeoutMs", &p.ping_timeout},
        std::pair{"startTimeoutMs", &p.start_timeout}}) {
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> ms, r.Millis(key));
    *field = ms.value_or(*field);
  }
  for (auto [key, field] : {std::pair{"pingTimeoutMs", &p.ping_timeout},
                            std::pair{"startTimeoutMs", &p.start_timeout}}) {
    if (field->count() == 0) {
      return Bad(r.Ptr(key), "must be at least 1 ms");
    }
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> breaker, r.Object("breaker"));
  if (breaker) {
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> failures, breaker->Whole("failures", 1000000));
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> open,
                           breaker->Millis("openMs"));
    p.breaker.failures = static_cast<uint32_t>(failures.value_or(p.breaker.failures));
    p.breaker.open_for = open.value_or(p.breaker.open_for);
    if (p.breaker.failures == 0) {
      return Bad(breaker->Ptr("failures"), "must be at least 1");
    }
    MCPMW_RETURN_IF_ERROR(breaker->RejectUnknown());
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> sandbox, r.Object("sandbox"));
  if (sandbox) {
    MCPMW_RETURN_IF_ERROR(ParseSandbox(*sandbox, p.sandbox));
  }
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  return p;
}

absl::StatusOr<Profile> ParseProfile(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return Bad("", absl::StrCat("not valid JSON (", simdjson::error_message(err), ")"));
  }
  return ParseProfileElement(root, "");
}

absl::StatusOr<Profile> ProfileFromCommandLine(std::vector<std::string> argv,
                                               const char* const* envp, bool warm) {
  if (argv.empty() || argv.front().empty()) {
    return absl::InvalidArgumentError("no server command given (mcpmw stdio -- CMD ARGS…)");
  }
  Profile p;
  p.name = "stdio";
  p.argv = std::move(argv);
  for (const char* const* e = envp; e != nullptr && *e != nullptr; ++e) {
    std::string_view name = EntryName(*e);
    if (ValidEnvName(name)) {
      p.env_allow.emplace_back(name);
    }
  }
  p.min_warm = warm ? 1 : 0;
  p.max_workers = 1;
  p.isolation = Isolation::kExclusive;
  p.readiness = Readiness::kSpawn;
  p.ping_interval = std::chrono::milliseconds(0);
  return p;
}

std::vector<std::string> BuildEnvironment(const Profile& profile, const char* const* envp) {
  std::set<std::string_view> allowed(profile.env_allow.begin(), profile.env_allow.end());
  std::set<std::string_view> seen;
  std::vector<std::string> out;
  for (const char* const* e = envp; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = EntryName(entry);
    if (name.size() == entry.size()) {
      continue;  // no '=': not a variable
    }
    // The first entry wins, like getenv; a `set` value replaces it below.
    if (!allowed.contains(name) || profile.env_set.contains(std::string(name)) ||
        !seen.insert(name).second) {
      continue;
    }
    out.emplace_back(entry);
  }
  for (const auto& [name, value] : profile.env_set) {
    out.push_back(absl::StrCat(name, "=", value));
  }
  return out;
}

}  // namespace mcpmw::pool
