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

TEST(Cli, HelpAndVersionWinAnywhere) {
  EXPECT_EQ(Parse({"--help"})->verb, Verb::kHelp);
  EXPECT_EQ(Parse({"stdio", "-h"})->verb, Verb::kHelp);
  EXPECT_EQ(Parse({"--version"})->verb, Verb::kVersion);
  EXPECT_THAT(UsageText(), HasSubstr("Exit codes:"));
}

}  // namespace
}  // namespace mcpmw::app
