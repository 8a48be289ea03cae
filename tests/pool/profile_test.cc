#include "pool/profile.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::pool {
namespace {

using sandbox::Network;
using sandbox::Requirement;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kFullExample[] = R"({
  "name": "everything",
  "command": ["node", "dist/index.js"],
  "env": {"allow": ["PATH", "HOME"], "set": {"K": "V"}},
  "cwd": "/srv",
  "minWarm": 2,
  "maxWorkers": 8,
  "idleTimeoutMs": 60000,
  "isolation": "exclusive",
  "prewarm": "none",
  "recycle": {"afterSessions": 100, "afterRequests": 10000, "rssMb": 512},
  "queue": {"maxWaiting": 64, "waitTimeoutMs": 5000},
  "pingIntervalMs": 30000,
  "pingTimeoutMs": 2000,
  "startTimeoutMs": 15000,
  "breaker": {"failures": 5, "openMs": 10000},
  "sandbox": {
    "noNewPrivs": "required",
    "rlimits": {"require": "required", "openFiles": 1024, "addressSpaceMb": 4096,
                "cpuSeconds": 600, "coreDumps": false},
    "cgroup": {"require": "optional", "memoryMb": 512, "pidsMax": 128, "cpuPercent": 100},
    "seccomp": {"require": "optional", "network": "none"},
    "namespaces": {"require": "off", "pid": false, "net": true, "mount": false, "user": false}
  }
})";

std::string ErrorOf(std::string_view json) {
  absl::StatusOr<Profile> p = ParseProfile(json);
  EXPECT_FALSE(p.ok()) << "parsed although it should not: " << json;
  if (p.ok()) {
    return "";
  }
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  return std::string(p.status().message());
}

TEST(ParseProfile, AcceptsTheFullDocumentedExample) {
  absl::StatusOr<Profile> p = ParseProfile(kFullExample);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "everything");
  EXPECT_THAT(p->argv, ElementsAre("node", "dist/index.js"));
  EXPECT_THAT(p->env_allow, ElementsAre("PATH", "HOME"));
  EXPECT_EQ(p->env_set, (std::map<std::string, std::string>{{"K", "V"}}));
  EXPECT_EQ(p->cwd, "/srv");
  EXPECT_EQ(p->min_warm, 2u);
  EXPECT_EQ(p->max_workers, 8u);
  EXPECT_EQ(p->idle_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(p->isolation, Isolation::kExclusive);
  EXPECT_EQ(p->prewarm, Prewarm::kNone);
  EXPECT_EQ(p->readiness, Readiness::kPing);
  EXPECT_EQ(p->recycle.after_sessions, 100u);
  EXPECT_EQ(p->recycle.after_requests, 10000u);
  EXPECT_EQ(p->recycle.rss_bytes, 512ull * 1024 * 1024);
  EXPECT_EQ(p->queue.max_waiting, 64u);
  EXPECT_EQ(p->queue.wait_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(p->ping_interval, std::chrono::milliseconds(30000));
  EXPECT_EQ(p->ping_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(p->start_timeout, std::chrono::milliseconds(15000));
  EXPECT_EQ(p->breaker.failures, 5u);
  EXPECT_EQ(p->breaker.open_for, std::chrono::milliseconds(10000));
  const sandbox::Spec& s = p->sandbox;
  EXPECT_EQ(s.no_new_privs, Requirement::kRequired);
  EXPECT_EQ(s.rlimits, Requirement::kRequired);
  EXPECT_EQ(s.rlimit_values.open_files, 1024u);
  EXPECT_EQ(s.rlimit_values.address_space_bytes, 4096ull * 1024 * 1024);
  EXPECT_EQ(s.rlimit_values.cpu_seconds, 600u);
  EXPECT_FALSE(s.rlimit_values.core_dumps);
  EXPECT_EQ(s.cgroup, Requirement::kOptional);
  EXPECT_EQ(s.cgroup_limits.memory_bytes, 512ull * 1024 * 1024);
  EXPECT_EQ(s.cgroup_limits.pids_max, 128u);
  EXPECT_EQ(s.cgroup_limits.cpu_percent, 100u);
  EXPECT_EQ(s.seccomp, Requirement::kOptional);
  EXPECT_EQ(s.network, Network::kNone);
  EXPECT_EQ(s.namespaces, Requirement::kOff);
  EXPECT_FALSE(s.namespace_set.pid);
  EXPECT_TRUE(s.namespace_set.net);
}

TEST(ParseProfile, FillsDefaultsForAMinimalProfile) {
  absl::StatusOr<Profile> p = ParseProfile(R"({"name":"demo","command":["demo-server"]})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->min_warm, 0u);
  EXPECT_EQ(p->max_workers, 1u);
  EXPECT_EQ(p->isolation, Isolation::kExclusive);
  EXPECT_EQ(p->prewarm, Prewarm::kNone);
  EXPECT_TRUE(p->env_allow.empty());
  EXPECT_TRUE(p->env_set.empty());
  EXPECT_EQ(p->sandbox.no_new_privs, Requirement::kRequired);
  EXPECT_EQ(p->sandbox.cgroup, Requirement::kOff);
}

TEST(ParseProfile, ParsesSharedIsolationAndPrewarmInitialize) {
  absl::StatusOr<Profile> p = ParseProfile(
      R"({"name":"s","command":["x"],"isolation":"shared","prewarm":"initialize","minWarm":3,"readiness":"spawn"})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->isolation, Isolation::kShared);
  EXPECT_EQ(p->prewarm, Prewarm::kInitialize);
  EXPECT_EQ(p->readiness, Readiness::kSpawn);
  EXPECT_EQ(p->max_workers, 3u) << "maxWorkers defaults to minWarm";
}

TEST(ParseProfile, TurnsOnAWrittenSandboxStepAsOptionalUnlessItSaysOff) {
  absl::StatusOr<Profile> p = ParseProfile(R"({"name":"x","command":["cat"],"sandbox":{
      "cgroup":{"memoryMb":512},"seccomp":{"network":"none"},
      "namespaces":{"require":"off","pid":true}}})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->sandbox.cgroup, sandbox::Requirement::kOptional);
  EXPECT_EQ(p->sandbox.cgroup_limits.memory_bytes, uint64_t{512} << 20);
  EXPECT_EQ(p->sandbox.seccomp, sandbox::Requirement::kOptional);
  EXPECT_EQ(p->sandbox.network, sandbox::Network::kNone);
  EXPECT_EQ(p->sandbox.namespaces, sandbox::Requirement::kOff);
  // rlimits keeps its default (required) when written without "require".
  absl::StatusOr<Profile> q =
      ParseProfile(R"({"name":"x","command":["cat"],"sandbox":{"rlimits":{"openFiles":64}}})");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->sandbox.rlimits, sandbox::Requirement::kRequired);
}

TEST(ParseProfile, RejectsAnUnknownTopLevelKeyWithItsPointer) {
  std::string error = ErrorOf(R"({"name":"a","command":["x"],"minwarm":2})");
  EXPECT_THAT(error, StartsWith("/minwarm: unknown key"));
  EXPECT_THAT(error, HasSubstr("minWarm"));
}

TEST(ParseProfile, RejectsAnUnknownNestedKeyWithItsPointer) {
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"sandbox":{"cgroup":{"memMb":5}}})"),
              StartsWith("/sandbox/cgroup/memMb: unknown key"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"recycle":{"afterSession":1}})"),
              StartsWith("/recycle/afterSession: unknown key"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"env":{"deny":["X"]}})"),
              StartsWith("/env/deny: unknown key"));
}

TEST(ParseProfile, RejectsWrongTypesWithThePointerOfTheValue) {
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"queue":{"maxWaiting":"64"}})"),
              StartsWith("/queue/maxWaiting: expected a whole number ≥ 0, found a string"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x", 3]})"),
              StartsWith("/command/1: expected a string, found a number"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":"node index.js"})"),
              StartsWith("/command: expected an array of strings, found a string"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"minWarm":-1})"),
              StartsWith("/minWarm: expected a whole number ≥ 0"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"idleTimeoutMs":1.5})"),
              StartsWith("/idleTimeoutMs: expected a whole number ≥ 0"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"env":{"set":{"K":1}}})"),
              StartsWith("/env/set/K: expected a string, found a number"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"sandbox":{"rlimits":{"coreDumps":"no"}}})"),
              StartsWith("/sandbox/rlimits/coreDumps: expected true or false, found a string"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"isolation":"private"})"),
              StartsWith("/isolation: \"private\" is not one of \"exclusive\", \"shared\""));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"sandbox":{"seccomp":{"require":"yes"}}})"),
              StartsWith("/sandbox/seccomp/require: \"yes\" is not one of"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"breaker":[]})"),
              StartsWith("/breaker: expected an object, found an array"));
  EXPECT_THAT(ErrorOf("[1]"), StartsWith("/: expected an object, found an array"));
}

TEST(ParseProfile, RejectsMissingOrMeaninglessRequiredValues) {
  EXPECT_THAT(ErrorOf(R"({"command":["x"]})"), StartsWith("/name: required"));
  EXPECT_THAT(ErrorOf(R"({"name":"has space","command":["x"]})"), StartsWith("/name: required"));
  EXPECT_THAT(ErrorOf(R"({"name":"a"})"), StartsWith("/command: required"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":[]})"),
              StartsWith("/command: the command is empty"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"minWarm":3,"maxWorkers":2})"),
              StartsWith("/minWarm: is 3, above maxWorkers (2)"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"maxWorkers":0})"),
              StartsWith("/maxWorkers: must be at least 1"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"breaker":{"failures":0}})"),
              StartsWith("/breaker/failures: must be at least 1"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],"env":{"allow":["A=B"]}})"),
              StartsWith("/env/allow/0: not a variable name"));
  EXPECT_THAT(ErrorOf(R"({"name":"a","command":["x"],)"), StartsWith("/: not valid JSON"));
}

TEST(BuildEnvironment, KeepsOnlyAllowedNamesPlusSetValues) {
  Profile p;
  p.env_allow = {"PATH", "HOME", "ABSENT"};
  p.env_set = {{"LOG_LEVEL", "warn"}, {"HOME", "/srv/home"}};
  const char* envp[] = {"PATH=/usr/bin", "SECRET_TOKEN=hunter2", "HOME=/root", "PATHX=/nope",
                        "AWS_SECRET=x",  "PATH=/second",         "NOEQUALS",   nullptr};
  EXPECT_THAT(BuildEnvironment(p, envp),
              ElementsAre("PATH=/usr/bin", "HOME=/srv/home", "LOG_LEVEL=warn"));
}

TEST(BuildEnvironment, PassesNothingWithoutAnAllowlist) {
  Profile p;
  const char* envp[] = {"PATH=/usr/bin", "HOME=/root", nullptr};
  EXPECT_TRUE(BuildEnvironment(p, envp).empty());
}

TEST(ProfileFromCommandLine, MakesOneExclusiveWorkerWithTheWholeEnvironment) {
  const char* envp[] = {"PATH=/usr/bin", "API_KEY=k", nullptr};
  absl::StatusOr<Profile> p = ProfileFromCommandLine({"npx", "server"}, envp, /*warm=*/true);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->argv, ElementsAre("npx", "server"));
  EXPECT_EQ(p->isolation, Isolation::kExclusive);
  EXPECT_EQ(p->max_workers, 1u);
  EXPECT_EQ(p->min_warm, 1u);
  EXPECT_EQ(p->readiness, Readiness::kSpawn) << "the pool must write nothing before the client";
  EXPECT_EQ(p->ping_interval, std::chrono::milliseconds(0));
  EXPECT_THAT(BuildEnvironment(*p, envp), ElementsAre("PATH=/usr/bin", "API_KEY=k"));

  absl::StatusOr<Profile> cold = ProfileFromCommandLine({"npx"}, envp, /*warm=*/false);
  ASSERT_TRUE(cold.ok());
  EXPECT_EQ(cold->min_warm, 0u);

  absl::StatusOr<Profile> empty = ProfileFromCommandLine({}, envp, true);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mcpmw::pool
