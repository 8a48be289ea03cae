#include "src/app/cli.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcpmw::app {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<Command> Parse(std::vector<std::string_view> args,
                              std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "mcpmw");
  return ParseCommandLine(args, [env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(Cli, StdioVerbTakesTheCommandAfterDoubleDashVerbatim) {
  auto cmd = Parse({"stdio", "--", "node", "my server.js", "--flag=a b"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->verb, Verb::kStdio);
  EXPECT_THAT(cmd->spawn.argv, ElementsAre("node", "my server.js", "--flag=a b"));
  EXPECT_FALSE(cmd->sidecar.server_framing_mirrors_client);
}

TEST(Cli, StdioOptionsAcceptSpaceAndEqualsForms) {
  auto cmd = Parse({"stdio", "--kill-timeout-ms", "500", "--max-restarts=2", "--max-message-bytes",
                    "1024", "--server-framing=content-length", "--allow-prefix", "/opt/mcp",
                    "--allow-prefix", "node", "--busy-poll-us=75", "--", "node", "s.js"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->sidecar.kill_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(cmd->sidecar.max_restarts, 2);
  EXPECT_EQ(cmd->sidecar.max_message_bytes, 1024u);
  EXPECT_EQ(cmd->sidecar.server_framing, framing::Framing::kContentLength);
  EXPECT_THAT(cmd->spawn.allowed_prefixes, ElementsAre("/opt/mcp", "node"));
  EXPECT_EQ(cmd->sidecar.busy_poll, std::chrono::microseconds(75));
}

TEST(Cli, RequestTimeoutIsOffByDefaultAndSetInMilliseconds) {
  auto off = Parse({"stdio", "--", "node", "s.js"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->sidecar.request_timeout, std::chrono::milliseconds(0));
  auto on = Parse({"stdio", "--request-timeout-ms", "2000", "--", "node", "s.js"});
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->sidecar.request_timeout, std::chrono::milliseconds(2000));
  auto legacy = Parse({"--proxy", "node s.js", "--stdio", "--request-timeout-ms=150"});
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_EQ(legacy->sidecar.request_timeout, std::chrono::milliseconds(150));
  EXPECT_THAT(Parse({"stdio", "--request-timeout-ms", "90000000", "--", "node"}).status().message(),
              HasSubstr("--request-timeout-ms is at most 86400000"));
  EXPECT_THAT(Parse({"stdio", "--request-timeout-ms", "-1", "--", "node"}).status().message(),
              HasSubstr("--request-timeout-ms expects a whole non-negative number"));
}

TEST(Cli, EnvironmentSetsDefaultsThePrototypeWay) {
  auto cmd = Parse({"stdio", "--", "node", "s.js"}, {{"MCP_PROXY_MAX_RESTARTS", "12abc"},
                                                     {"MCP_PROXY_KILL_TIMEOUT_MS", "50"},
                                                     {"MCP_PROXY_ALLOWED_PREFIXES", " uvx , node "},
                                                     {"MCP_PROXY_DEBUG", "1"}});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->sidecar.max_restarts, 10);                              // 12 clamped
  EXPECT_EQ(cmd->sidecar.kill_timeout, std::chrono::milliseconds(100));  // 50 clamped
  EXPECT_THAT(cmd->spawn.allowed_prefixes, ElementsAre("uvx", "node"));
  EXPECT_TRUE(cmd->debug);
  EXPECT_EQ(cmd->warnings.size(), 2u);
}

TEST(Cli, LegacyProxyFlagKeepsTheCommandLineAndMirrorsClientFraming) {
  auto cmd = Parse({"--proxy", "node 'my server.js'", "--stdio"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->spawn.command_line, "node 'my server.js'");
  EXPECT_TRUE(cmd->sidecar.server_framing_mirrors_client);
}

TEST(Cli, LegacyProxyWithoutStdioIsRejectedWithThePrototypesMessage) {
  auto cmd = Parse({"--proxy", "node s.js"});
  ASSERT_FALSE(cmd.ok());
  EXPECT_THAT(cmd.status().message(), HasSubstr("proxy mode currently requires --stdio"));
}

TEST(Cli, ErrorsNameTheProblemAndTheFix) {
  EXPECT_THAT(Parse({"stdio"}).status().message(), HasSubstr("mcpmw stdio -- CMD"));
  EXPECT_THAT(Parse({"stdio", "--kill-timeout-ms", "soon", "--", "node"}).status().message(),
              HasSubstr("--kill-timeout-ms expects a whole non-negative number, got `soon`"));
  EXPECT_THAT(Parse({"stdio", "--bogus", "--", "node"}).status().message(),
              HasSubstr("unknown option `--bogus`"));
  EXPECT_THAT(Parse({"stdio", "--server-framing", "xml", "--", "node"}).status().message(),
              HasSubstr("auto, ndjson or content-length"));
  EXPECT_THAT(Parse({"stdio", "--audit-fsync", "always", "--", "node"}).status().message(),
              HasSubstr("--audit-fsync is never, segment or batch, not `always`"));
  EXPECT_THAT(Parse({"policy", "lint", "b.json"}).status().message(),
              HasSubstr("usage: mcpmw policy check FILE"));
  EXPECT_THAT(Parse({"frobnicate"}).status().message(), HasSubstr("unknown verb `frobnicate`"));
}

TEST(Cli, GovernanceFlagsTurnTheChainOnAndOverrideTheEnvironment) {
  auto cmd =
      Parse({"stdio", "--policy", "b.json", "--user", "alice", "--scopes", " Read, write ,",
             "--audit-log", "a.jsonl", "--audit-key", "k", "--audit-fsync", "batch", "--", "node"},
            {{"MCP_PROXY_TENANT_ID", "acme"},
             {"MCP_PROXY_USER_ID", "bob"},
             {"MCP_PROXY_SERVER_ID", "crm"}});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_TRUE(cmd->governed);
  EXPECT_EQ(cmd->governance.policy_path, "b.json");
  EXPECT_EQ(cmd->governance.claimed.tenant, "acme");
  EXPECT_EQ(cmd->governance.claimed.user, "alice");
  EXPECT_THAT(cmd->governance.claimed.scopes, ElementsAre("Read", "write"));
  EXPECT_EQ(cmd->governance.server_id, "crm");
  EXPECT_EQ(cmd->governance.audit_path, "a.jsonl");
  EXPECT_EQ(cmd->governance.audit_fsync, audit::AuditOptions::FsyncPolicy::kPerBatch);
  // The prototype's spelling takes a bundle too; without any governance flag it is a relay.
  auto legacy = Parse({"--proxy", "node s.js", "--stdio", "-p", "b.json"});
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_EQ(legacy->governance.policy_path, "b.json");
  auto plain = Parse({"stdio", "--", "node"});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->governed);
}

TEST(Cli, PolicyCheckTakesOneFile) {
  auto cmd = Parse({"policy", "check", "b.json"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->verb, Verb::kPolicyCheck);
  EXPECT_EQ(cmd->policy_file, "b.json");
}

TEST(Cli, AuditVerifyTakesTheLogAndTheKey) {
  auto cmd = Parse({"audit", "verify", "audit.jsonl", "--key", "audit.key"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->verb, Verb::kAuditVerify);
  EXPECT_EQ(cmd->audit_file, "audit.jsonl");
  EXPECT_EQ(cmd->key_file, "audit.key");
  EXPECT_THAT(Parse({"audit", "verify", "audit.jsonl"}).status().message(),
              HasSubstr("mcpmw audit verify FILE --key KEYFILE"));
  EXPECT_THAT(Parse({"audit", "show"}).status().message(), HasSubstr("one subcommand"));
}

TEST(Cli, StdioContainmentFlagsTurnTheirStepsOnAsOptional) {
  using pool::sandbox::Requirement;
  auto cmd = Parse({"stdio",
                    "--sandbox-network",
                    "none",
                    "--memory-limit",
                    "64",
                    "--pids-limit=16",
                    "--cpu-percent",
                    "50",
                    "--open-files",
                    "256",
                    "--cpu-seconds",
                    "30",
                    "--namespaces",
                    "pid, net",
                    "--env-allow",
                    "PATH,HOME",
                    "--cwd",
                    "/srv",
                    "--",
                    "node",
                    "s.js"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  const pool::sandbox::Spec& spec = cmd->containment.sandbox;
  EXPECT_EQ(spec.network, pool::sandbox::Network::kNone);
  EXPECT_EQ(spec.seccomp, Requirement::kOptional);
  EXPECT_EQ(spec.cgroup, Requirement::kOptional);
  EXPECT_EQ(spec.cgroup_limits.memory_bytes, uint64_t{64} * 1024 * 1024);
  EXPECT_EQ(spec.cgroup_limits.pids_max, 16u);
  EXPECT_EQ(spec.cgroup_limits.cpu_percent, 50u);
  EXPECT_EQ(spec.rlimits, Requirement::kRequired);  // the default Spec already requires it
  EXPECT_EQ(spec.rlimit_values.open_files, 256u);
  EXPECT_EQ(spec.rlimit_values.cpu_seconds, 30u);
  EXPECT_EQ(spec.namespaces, Requirement::kOptional);
  EXPECT_TRUE(spec.namespace_set.pid);
  EXPECT_TRUE(spec.namespace_set.net);
  EXPECT_FALSE(spec.namespace_set.user);
  EXPECT_THAT(*cmd->containment.env_allow, ElementsAre("PATH", "HOME"));
  EXPECT_EQ(cmd->containment.cwd, "/srv");
  EXPECT_THAT(cmd->spawn.argv, ElementsAre("node", "s.js"));
}

TEST(Cli, SandboxRequireMakesStepsRequiredInEitherOrder) {
  using pool::sandbox::Requirement;
  for (auto args :
       {std::vector<std::string_view>{"stdio", "--sandbox-require", "cgroup,seccomp",
                                      "--memory-limit", "64", "--", "node"},
        std::vector<std::string_view>{"stdio", "--memory-limit", "64", "--sandbox-require",
                                      "cgroup,seccomp", "--", "node"}}) {
    auto cmd = Parse(args);
    ASSERT_TRUE(cmd.ok()) << cmd.status();
    EXPECT_EQ(cmd->containment.sandbox.cgroup, Requirement::kRequired);
    EXPECT_EQ(cmd->containment.sandbox.seccomp, Requirement::kRequired);
    EXPECT_EQ(cmd->containment.sandbox.namespaces, Requirement::kOff);
  }
}

TEST(Cli, WithoutContainmentFlagsTheServerGetsTheDefaultSandboxAndWholeEnvironment) {
  auto cmd = Parse({"stdio", "--", "node"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->containment.sandbox.no_new_privs, pool::sandbox::Requirement::kRequired);
  EXPECT_EQ(cmd->containment.sandbox.cgroup, pool::sandbox::Requirement::kOff);
  EXPECT_EQ(cmd->containment.sandbox.seccomp, pool::sandbox::Requirement::kOff);
  EXPECT_FALSE(cmd->containment.env_allow.has_value());
  EXPECT_TRUE(cmd->containment.given.empty());
}

TEST(Cli, ContainmentFlagErrorsSayWhatIsAccepted) {
  auto message = [](std::vector<std::string_view> args) {
    return std::string(Parse(std::move(args)).status().message());
  };
  EXPECT_THAT(message({"stdio", "--sandbox-network", "off", "--", "node"}),
              HasSubstr("--sandbox-network is none or allow, not `off`"));
  EXPECT_THAT(message({"stdio", "--memory-limit", "0", "--", "node"}),
              HasSubstr("--memory-limit is 1..4294967295, not 0"));
  EXPECT_THAT(message({"stdio", "--pids-limit", "lots", "--", "node"}),
              HasSubstr("--pids-limit expects a whole non-negative number, got `lots`"));
  EXPECT_THAT(message({"stdio", "--cpu-percent", "100001", "--", "node"}),
              HasSubstr("--cpu-percent is 1..100000, not 100001"));
  EXPECT_THAT(message({"stdio", "--namespaces", "pid,ipc", "--", "node"}),
              HasSubstr("unknown namespace `ipc`; use pid, net, mount, user"));
  EXPECT_THAT(message({"stdio", "--namespaces", "", "--", "node"}),
              HasSubstr("--namespaces needs a list"));
  EXPECT_THAT(message({"stdio", "--sandbox-require", "apparmor", "--", "node"}),
              HasSubstr("unknown sandbox step `apparmor`; the steps are no_new_privs, rlimits, "
                        "cgroup, seccomp, namespaces"));
  EXPECT_THAT(message({"stdio", "--env-allow", "A=1", "--", "node"}),
              HasSubstr("`A=1` is not one"));
  EXPECT_THAT(message({"stdio", "--cwd=", "--", "node"}), HasSubstr("--cwd needs a directory"));
}

TEST(Cli, ProfileFileReplacesTheCommandAndTheContainmentFlags) {
  auto cmd = Parse({"stdio", "--profile", "p.json", "--max-restarts", "2"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->profile_file, "p.json");
  EXPECT_TRUE(cmd->spawn.argv.empty());
  EXPECT_THAT(Parse({"stdio", "--profile", "p.json", "--", "node"}).status().message(),
              HasSubstr("--profile FILE names the server command itself"));
  EXPECT_THAT(Parse({"stdio", "--profile", "p.json", "--pids-limit", "8"}).status().message(),
              HasSubstr("put --pids-limit in the file's \"sandbox\""));
  auto legacy = Parse({"--stdio", "--profile=p.json"});
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_EQ(legacy->profile_file, "p.json");
}

TEST(Cli, PoolVerbsTakeTheProfilesFile) {
  auto check = Parse({"pool", "check", "pools.json"});
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->verb, Verb::kPoolCheck);
  EXPECT_EQ(check->pools_file, "pools.json");
  auto run = Parse({"pool", "run", "pools.json", "--metrics-file", "m.prom", "--debug"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->verb, Verb::kPoolRun);
  EXPECT_EQ(run->pools_file, "pools.json");
  EXPECT_EQ(run->pool_metrics_file, "m.prom");
  EXPECT_TRUE(run->debug);
  EXPECT_THAT(Parse({"pool", "check", "pools.json", "--metrics-file", "m"}).status().message(),
              HasSubstr("unknown option `--metrics-file` for `mcpmw pool check`"));
  EXPECT_THAT(Parse({"pool", "start", "pools.json"}).status().message(),
              HasSubstr("usage: mcpmw pool check FILE | mcpmw pool run FILE"));
  EXPECT_THAT(Parse({"pool", "run"}).status().message(), HasSubstr("usage: mcpmw pool"));
}

TEST(Cli, HelpAndVersionWinAnywhere) {
  EXPECT_EQ(Parse({"--help"})->verb, Verb::kHelp);
  EXPECT_EQ(Parse({"stdio", "-h"})->verb, Verb::kHelp);
  EXPECT_EQ(Parse({"--version"})->verb, Verb::kVersion);
  EXPECT_THAT(UsageText(), HasSubstr("Exit codes:"));
}

}  // namespace
}  // namespace mcpmw::app
