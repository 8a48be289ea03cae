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
  EXPECT_THAT(Parse({"stdio", "--policy-file", "p.json", "--", "node"}).status().message(),
              HasSubstr("not enforced by this build yet"));
  EXPECT_THAT(Parse({"frobnicate"}).status().message(), HasSubstr("unknown verb `frobnicate`"));
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
