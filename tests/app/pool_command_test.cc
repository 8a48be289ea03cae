#include "src/app/pool_command.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::app {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A host that has what every Linux has (no_new_privs, rlimits) and nothing else, each missing
// feature with its reason.
pool::sandbox::HostCapabilities BareHost() {
  pool::sandbox::HostCapabilities host;
  host.no_new_privs.available = true;
  host.rlimits.available = true;
  host.seccomp.reason = "test host: seccomp is compiled out";
  for (pool::sandbox::CgroupController* c :
       {&host.cgroup.memory, &host.cgroup.pids, &host.cgroup.cpu}) {
    c->reason = "test host: no cgroup mounted";
  }
  host.cgroup.v2_kill_reason = "test host: no unified hierarchy";
  for (pool::sandbox::Feature* f :
       {&host.user_namespace, &host.pid_namespace, &host.net_namespace, &host.mount_namespace}) {
    f->reason = "test host: namespaces disabled";
  }
  return host;
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  std::string path =
      absl::StrCat(::testing::TempDir(), "/pool_command_test-", ::getpid(), "-", name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return path;
}

// Runs RunPoolCheck on `json` against `host`; returns {exit code, what it printed}.
std::pair<int, std::string> Check(const std::string& json,
                                  const pool::sandbox::HostCapabilities& host) {
  Command cmd{.verb = Verb::kPoolCheck};
  cmd.pools_file = WriteTemp("check.json", json);
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* out = ::open_memstream(&buf, &size);
  int code = RunPoolCheck(cmd, host, out);
  std::fclose(out);
  std::string text(buf, size);
  std::free(buf);
  ::unlink(cmd.pools_file.c_str());
  return {code, text};
}

TEST(ParseProfilesFile, ReadsEveryProfileOfThePoolsArray) {
  auto profiles = ParseProfilesFile(
      R"({"pools":[{"name":"a","command":["node","a.js"],"minWarm":2,"maxWorkers":3},)"
      R"({"name":"b","command":["cat"],"isolation":"shared"}]})");
  ASSERT_TRUE(profiles.ok()) << profiles.status();
  ASSERT_EQ(profiles->size(), 2u);
  EXPECT_EQ((*profiles)[0].name, "a");
  EXPECT_THAT((*profiles)[0].argv, ElementsAre("node", "a.js"));
  EXPECT_EQ((*profiles)[0].min_warm, 2u);
  EXPECT_EQ((*profiles)[1].isolation, pool::Isolation::kShared);
}

TEST(ParseProfilesFile, ErrorsStartWithTheJsonPointerOfTheBadValue) {
  auto message = [](std::string_view json) {
    return std::string(ParseProfilesFile(json).status().message());
  };
  EXPECT_THAT(message("{"), StartsWith("/: not valid JSON"));
  EXPECT_THAT(message("[]"), StartsWith(R"(/: expected an object: {"pools": [profile, ...]})"));
  EXPECT_THAT(message(R"({"pool":[]})"), StartsWith("/pool: unknown key"));
  EXPECT_THAT(message(R"({"pools":{}})"), StartsWith("/pools: expected an array"));
  EXPECT_THAT(message("{}"), StartsWith("/pools: required"));
  EXPECT_THAT(message(R"({"pools":[{"name":"a","command":["x"]},)"
                      R"({"name":"b","command":["x"],"queue":{"maxWaiting":-1}}]})"),
              StartsWith("/pools/1/queue/maxWaiting: "));
  EXPECT_EQ(message(R"({"pools":[{"name":"a","command":["x"]},{"name":"a","command":["y"]}]})"),
            "/pools/1/name: `a` is already the name of /pools/0; names must be unique");
  EXPECT_EQ(ParseProfilesFile("[]").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LoadProfilesFile, NamesTheFileInEveryError) {
  absl::StatusOr<std::vector<pool::Profile>> missing = LoadProfilesFile("/nonexistent/pools.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "cannot read /nonexistent/pools.json: No such file or directory");
  std::string path = WriteTemp("bad.json", R"({"pools":[{"name":"a b","command":["x"]}]})");
  absl::StatusOr<std::vector<pool::Profile>> bad = LoadProfilesFile(path);
  EXPECT_THAT(std::string(bad.status().message()),
              StartsWith(absl::StrCat(path, ": /pools/0/name: required")));
  ::unlink(path.c_str());
}

TEST(SidecarProfile, BuildsTheExclusiveStdioProfileWithTheFlagsApplied) {
  const char* envp[] = {"PATH=/usr/bin", "HOME=/root", "SECRET=x", nullptr};
  ContainmentFlags flags;
  flags.sandbox.cgroup = pool::sandbox::Requirement::kOptional;
  flags.sandbox.cgroup_limits.pids_max = 16;
  flags.env_allow = std::vector<std::string>{"PATH"};
  flags.cwd = "/srv";
  absl::StatusOr<pool::Profile> p = SidecarProfile(flags, std::nullopt, {"node", "s.js"}, envp);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "stdio");
  EXPECT_EQ(p->isolation, pool::Isolation::kExclusive);
  EXPECT_THAT(p->argv, ElementsAre("node", "s.js"));
  EXPECT_THAT(pool::BuildEnvironment(*p, envp), ElementsAre("PATH=/usr/bin"));
  EXPECT_EQ(p->cwd, "/srv");
  EXPECT_EQ(p->sandbox.cgroup_limits.pids_max, 16u);
}

TEST(SidecarProfile, WithoutEnvAllowPassesMcpmwsWholeEnvironment) {
  const char* envp[] = {"PATH=/usr/bin", "HOME=/root", nullptr};
  absl::StatusOr<pool::Profile> p = SidecarProfile({}, std::nullopt, {"node"}, envp);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(pool::BuildEnvironment(*p, envp), ElementsAre("PATH=/usr/bin", "HOME=/root"));
}

TEST(SidecarProfile, AProfileFileKeepsItsSettingsAndRunsTheApprovedCommand) {
  absl::StatusOr<pool::Profile> file = pool::ParseProfile(
      R"({"name":"boxed","command":["node","s.js"],"env":{"set":{"A":"1"}},"cwd":"/tmp",)"
      R"("sandbox":{"seccomp":{"require":"required","network":"none"}}})");
  ASSERT_TRUE(file.ok()) << file.status();
  const char* envp[] = {"PATH=/usr/bin", nullptr};
  absl::StatusOr<pool::Profile> p = SidecarProfile({}, *file, {"/usr/bin/node", "s.js"}, envp);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "boxed");
  EXPECT_THAT(p->argv, ElementsAre("/usr/bin/node", "s.js"));
  EXPECT_THAT(pool::BuildEnvironment(*p, envp), ElementsAre("A=1"));
  EXPECT_EQ(p->cwd, "/tmp");
  EXPECT_EQ(p->sandbox.network, pool::sandbox::Network::kNone);
  EXPECT_EQ(SidecarProfile({}, std::nullopt, {}, envp).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DescribeProfile, ShowsAppliedSkippedAndOffStepsWithTheHostsReason) {
  absl::StatusOr<pool::Profile> p = pool::ParseProfile(
      R"({"name":"everything","command":["node","my server.js"],"minWarm":2,"maxWorkers":4,)"
      R"("env":{"allow":["PATH"],"set":{"LOG":"warn"}},)"
      R"("sandbox":{"rlimits":{"openFiles":64},"seccomp":{"require":"optional","network":"none"}}})");
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<pool::sandbox::SandboxPlan> plan = pool::sandbox::Plan(p->sandbox, BareHost());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(DescribeProfile(*p, *plan),
            "profile `everything`: node 'my server.js'\n"
            "  exclusive, minWarm 2, maxWorkers 4, prewarm none, readiness ping\n"
            "  environment: allowed from mcpmw's: PATH; set: LOG\n"
            "  cwd: mcpmw's\n"
            "  no_new_privs:  applied (required): setuid and file capabilities cannot raise "
            "privileges\n"
            "  rlimits:       applied (required): core dumps off, open files 64\n"
            "  cgroup:        off\n"
            "  namespaces:    off\n"
            "  seccomp:       skipped (optional): this host has no usable seccomp filters (test "
            "host: seccomp is compiled out); `network: none` is not enforced\n");
}

TEST(DescribeProfile, WarnsThatTheSettingsOfAStepLeftOffAreIgnored) {
  absl::StatusOr<pool::Profile> p =
      pool::ParseProfile(R"({"name":"a","command":["x"],"sandbox":{"cgroup":{"require":"off",)"
                         R"("memoryMb":64},"namespaces":{"require":"off"}}})");
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<pool::sandbox::SandboxPlan> plan = pool::sandbox::Plan(p->sandbox, BareHost());
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string text = DescribeProfile(*p, *plan);
  EXPECT_THAT(text, HasSubstr("  cgroup:        off (its settings are ignored: give it "
                              "\"require\": \"optional\" or \"required\")\n"));
  EXPECT_THAT(text, HasSubstr("  namespaces:    off\n"));
}

TEST(RunPoolCheck, PrintsEachPlanAndSucceedsWhenEveryProfileCanStart) {
  auto [code, out] = Check(R"({"pools":[{"name":"a","command":["x"]},{"name":"b","command":["y"],)"
                           R"("sandbox":{"cgroup":{"require":"optional","pidsMax":8}}}]})",
                           BareHost());
  EXPECT_EQ(code, 0);
  EXPECT_THAT(out, HasSubstr("profile `a`: x\n"));
  EXPECT_THAT(out, HasSubstr("  cgroup:        skipped (optional): "));
  EXPECT_THAT(out, HasSubstr(": 2 profile(s)\n"));
}

TEST(RunPoolCheck, FailsWhenARequiredStepIsMissingOnThisHost) {
  auto [code, out] = Check(R"({"pools":[{"name":"a","command":["x"]},{"name":"strict",)"
                           R"("command":["y"],"sandbox":{"cgroup":{"require":"required",)"
                           R"("memoryMb":64}}}]})",
                           BareHost());
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("profile `a`: x\n"));
  EXPECT_THAT(out, HasSubstr("profile `strict`: cannot start on this host: "));
  EXPECT_THAT(out, HasSubstr("test host: no cgroup mounted"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("OK:")));
}

TEST(RunPoolCheck, FailsOnAnInvalidFile) {
  auto [code, out] = Check(R"({"pools":[{"command":["x"]}]})", BareHost());
  EXPECT_EQ(code, 1);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace mcpmw::app
