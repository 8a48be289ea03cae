#include "pool/governor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "tests/common/temp_dir.h"

namespace mcpmw::pool {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> SplitOrDie(std::string_view line) {
  absl::StatusOr<std::vector<std::string>> words = SplitCommandLine(line);
  EXPECT_TRUE(words.ok()) << words.status();
  return words.ok() ? *words : std::vector<std::string>{};
}

SpawnDecision DecideArgv(std::vector<std::string> argv, std::vector<std::string> prefixes) {
  SpawnRequest request;
  request.argv = std::move(argv);
  request.allowed_prefixes = std::move(prefixes);
  return Decide(request);
}

// Sets an environment variable for one test and restores the old value afterwards. Tests run on
// one thread, so the environment calls below race with nothing (hence the NOLINTs).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name); old != nullptr) {  // NOLINT(concurrency-mt-unsafe)
      old_ = old;
    }
    ::setenv(name, value.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
    } else {
      ::unsetenv(name_);  // NOLINT(concurrency-mt-unsafe)
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A fresh directory under the test temp dir.
std::string MakeTempDir() { return mcpmw::testing_support::MakeTempDir("governor_test"); }

void WriteExecutable(const std::string& path) {
  std::ofstream(path) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
}

TEST(GovernorSplit, KeepsQuotedSpacesInsideOneArgument) {
  EXPECT_THAT(SplitOrDie(R"(node "my server.js" --flag='a b')"),
              ElementsAre("node", "my server.js", "--flag=a b"));
}

TEST(GovernorSplit, LeavesShellMetacharactersLiteral) {
  EXPECT_THAT(SplitOrDie("node server.js ; rm -rf $HOME | cat > out && `id`"),
              ElementsAre("node", "server.js", ";", "rm", "-rf", "$HOME", "|", "cat", ">", "out",
                          "&&", "`id`"));
}

TEST(GovernorSplit, CollapsesRunsOfWhitespace) {
  EXPECT_THAT(SplitOrDie("  node \t ./servers/crm-mcp.js\n  "),
              ElementsAre("node", "./servers/crm-mcp.js"));
  EXPECT_THAT(SplitOrDie(" \t\n "), IsEmpty());
}

TEST(GovernorSplit, HonoursBackslashEscapesLikeAShell) {
  EXPECT_THAT(SplitOrDie(R"(a\ b "c\"d" 'e\f' "g\h" "\$x\`\\")"),
              ElementsAre("a b", "c\"d", "e\\f", "g\\h", "$x`\\"));
}

TEST(GovernorSplit, JoinsAdjacentQuotedPartsIntoOneWord) {
  EXPECT_THAT(SplitOrDie(R"(--a="x y"'z'w)"), ElementsAre("--a=x yzw"));
}

TEST(GovernorSplit, KeepsEmptyQuotedArguments) {
  EXPECT_THAT(SplitOrDie(R"(a '' "")"), ElementsAre("a", "", ""));
}

TEST(GovernorSplit, DropsBackslashNewlineContinuations) {
  EXPECT_THAT(SplitOrDie("node \\\n server.js \"a\\\nb\""), ElementsAre("node", "server.js", "ab"));
}

TEST(GovernorSplit, RejectsUnterminatedDoubleQuoteNamingItsColumn) {
  absl::StatusOr<std::vector<std::string>> words = SplitCommandLine(R"(node --x "my server.js)");
  ASSERT_EQ(words.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(words.status().message(), "unterminated double quote at column 10");
}

TEST(GovernorSplit, RejectsUnterminatedSingleQuoteNamingItsColumn) {
  absl::StatusOr<std::vector<std::string>> words = SplitCommandLine("node 'abc");
  ASSERT_EQ(words.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(words.status().message(), "unterminated single quote at column 6");
}

TEST(GovernorSplit, RejectsTrailingBackslash) {
  absl::StatusOr<std::vector<std::string>> words = SplitCommandLine("node x\\");
  ASSERT_EQ(words.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(words.status().message(), "trailing backslash at column 7");
}

TEST(GovernorSplit, QuoteArgumentLeavesPlainArgumentsBare) {
  EXPECT_EQ(QuoteArgument("./servers/crm-mcp.js"), "./servers/crm-mcp.js");
  EXPECT_EQ(QuoteArgument("--port=8080,a@b:c%d+e"), "--port=8080,a@b:c%d+e");
}

TEST(GovernorSplit, QuoteArgumentQuotesWhatTheSplitterWouldChange) {
  EXPECT_EQ(QuoteArgument("my server.js"), "'my server.js'");
  EXPECT_EQ(QuoteArgument(""), "''");
  EXPECT_EQ(QuoteArgument("it's"), R"('it'\''s')");
  EXPECT_EQ(QuoteArgument("$HOME"), "'$HOME'");
}

TEST(GovernorSplit, QuoteArgumentRoundTripsThroughSplitCommandLine) {
  const std::vector<std::string> args = {
      "plain",     "",  "a b", "it's", R"(back\slash)", "\"dq\"", "$HOME;`x`|y", "tab\there",
      "new\nline", "'", "''",  "\\",   "ünïcode"};
  std::string line;
  for (const std::string& arg : args) {
    line += QuoteArgument(arg) + " ";
  }
  EXPECT_EQ(SplitOrDie(line), args);
}

TEST(GovernorEnv, ParseAllowedPrefixesTrimsAndDropsEmptyEntries) {
  EXPECT_THAT(ParseAllowedPrefixes(" node , ,npx,,/opt/mcp/bin ,"),
              ElementsAre("node", "npx", "/opt/mcp/bin"));
}

TEST(GovernorEnv, ParseAllowedPrefixesFallsBackToDefaultWhenBlank) {
  const std::vector<std::string> defaults = {"node",    "npx", "uvx", "python",
                                             "python3", "bun", "deno"};
  EXPECT_EQ(ParseAllowedPrefixes(""), defaults);
  EXPECT_EQ(ParseAllowedPrefixes("  \t "), defaults);
}

TEST(GovernorEnv, ParseIntLikeParseIntStopsAtFirstNonDigit) {
  EXPECT_EQ(ParseIntLikeParseInt("12abc", 7), 12);
  EXPECT_EQ(ParseIntLikeParseInt("1e3", 7), 1);
  EXPECT_EQ(ParseIntLikeParseInt("2.9", 7), 2);
  EXPECT_EQ(ParseIntLikeParseInt("0x10", 7), 0);
}

TEST(GovernorEnv, ParseIntLikeParseIntAcceptsSignAndLeadingWhitespace) {
  EXPECT_EQ(ParseIntLikeParseInt("-3", 7), -3);
  EXPECT_EQ(ParseIntLikeParseInt("+4", 7), 4);
  EXPECT_EQ(ParseIntLikeParseInt(" \t42 ", 7), 42);
  EXPECT_EQ(ParseIntLikeParseInt("-0", 7), 0);
}

TEST(GovernorEnv, ParseIntLikeParseIntFallsBackWithoutDigits) {
  EXPECT_EQ(ParseIntLikeParseInt("", 7), 7);
  EXPECT_EQ(ParseIntLikeParseInt("   ", 7), 7);
  EXPECT_EQ(ParseIntLikeParseInt("abc", 7), 7);
  EXPECT_EQ(ParseIntLikeParseInt("-", 7), 7);
  EXPECT_EQ(ParseIntLikeParseInt("- 3", 7), 7);
}

TEST(GovernorEnv, ParseIntLikeParseIntSaturatesInsteadOfWrapping) {
  EXPECT_EQ(ParseIntLikeParseInt("99999999999999999999999", 7), INT64_MAX);
  EXPECT_EQ(ParseIntLikeParseInt("-99999999999999999999999", 7), INT64_MIN);
  EXPECT_EQ(ParseIntLikeParseInt("9223372036854775807", 7), INT64_MAX);
  EXPECT_EQ(ParseIntLikeParseInt("-9223372036854775808", 7), INT64_MIN);
}

TEST(Governor, AllowsBareNameEqualToAPrefix) {
  SpawnDecision decision = DecideArgv({"node", "server.js"}, {"node", "npx"});
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.reason_code, kReasonPrefixAllowed);
  EXPECT_EQ(decision.explanation, "");
}

TEST(Governor, SplitsTheCommandLineWithQuoting) {
  SpawnRequest request;
  request.command_line = R"(node "my server.js" --flag='a b')";
  request.allowed_prefixes = {"node"};
  SpawnDecision decision = Decide(request);
  EXPECT_TRUE(decision.allowed);
  EXPECT_THAT(decision.argv, ElementsAre("node", "my server.js", "--flag=a b"));
  EXPECT_EQ(decision.normalized_command, "node 'my server.js' '--flag=a b'");
}

TEST(Governor, PrefersThePreSplitArgv) {
  SpawnRequest request;
  request.command_line = "bash -c ignored";
  request.argv = {"node", "my server.js"};
  request.allowed_prefixes = {"node"};
  SpawnDecision decision = Decide(request);
  EXPECT_TRUE(decision.allowed);
  EXPECT_THAT(decision.argv, ElementsAre("node", "my server.js"));
  EXPECT_EQ(decision.normalized_command, "node 'my server.js'");
}

TEST(Governor, DeniesRelativePathThatOnlyEndsInAnAllowedName) {
  SpawnDecision decision = DecideArgv({"../evil/node", "x.js"}, {"node"});
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.reason_code, kReasonPrefixDenied);
  EXPECT_THAT(decision.explanation, HasSubstr("is not the `node` found on PATH"));
}

TEST(Governor, MatchesCaseSensitively) {
  SpawnDecision decision = DecideArgv({"NODE"}, {"node"});
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.reason_code, kReasonPrefixDenied);
}

TEST(Governor, DeniesNamesThatOnlyStartWithAPrefix) {
  EXPECT_FALSE(DecideArgv({"nodejs"}, {"node"}).allowed);
  EXPECT_FALSE(DecideArgv({"npx-evil"}, {"npx"}).allowed);
}

TEST(Governor, AllowsPathBelowAnAllowedDirectory) {
  SpawnDecision decision = DecideArgv({"/usr/bin/env", "node"}, {"/usr/bin"});
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.reason_code, kReasonPrefixAllowed);
  EXPECT_TRUE(DecideArgv({"/usr/bin/env"}, {"/usr/bin/"}).allowed);
  EXPECT_TRUE(DecideArgv({"/usr/./bin//env"}, {"/usr/bin"}).allowed);
  EXPECT_TRUE(DecideArgv({"/usr/bin/env"}, {"/usr/bin/env"}).allowed);
}

TEST(Governor, DeniesSiblingDirectorySharingThePrefixText) {
  SpawnDecision decision = DecideArgv({"/usr/binx/foo"}, {"/usr/bin"});
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.reason_code, kReasonPrefixDenied);
}

TEST(Governor, DeniesDotDotEscapingAnAllowedDirectory) {
  SpawnDecision decision = DecideArgv({"/usr/bin/../../etc/evil"}, {"/usr/bin"});
  EXPECT_FALSE(decision.allowed);
  EXPECT_THAT(decision.explanation, HasSubstr("--allow-prefix /etc/evil "));
}

TEST(Governor, DoesNotMatchBareProgramAgainstAPathPrefix) {
  EXPECT_FALSE(DecideArgv({"env"}, {"/usr/bin"}).allowed);
}

TEST(Governor, AllowsPathThatIsTheFilePathGivesForABareName) {
  const std::string bin = MakeTempDir();
  const std::string other = MakeTempDir();
  WriteExecutable(bin + "/node");
  WriteExecutable(other + "/node");
  ASSERT_EQ(::symlink((bin + "/node").c_str(), (other + "/node-link").c_str()), 0);
  ScopedEnv path("PATH", bin);

  EXPECT_TRUE(DecideArgv({bin + "/node"}, {"node"}).allowed);
  EXPECT_TRUE(
      DecideArgv({other + "/../" + bin.substr(bin.rfind('/') + 1) + "/node"}, {"node"}).allowed);
  EXPECT_TRUE(DecideArgv({other + "/node-link"}, {"node"}).allowed);

  SpawnDecision impostor = DecideArgv({other + "/node"}, {"node"});
  EXPECT_FALSE(impostor.allowed);
  EXPECT_EQ(impostor.reason_code, kReasonPrefixDenied);
  EXPECT_THAT(impostor.explanation, HasSubstr("is not the `node` found on PATH"));
}

TEST(Governor, ExplainsDenialWithTheFlagThatWouldAllowIt) {
  SpawnDecision decision = DecideArgv({"bash", "./servers/crm-mcp.sh"}, {"node", "npx"});
  EXPECT_EQ(decision.explanation,
            "`bash` is not on the allowlist (node, npx); add it with --allow-prefix bash or "
            "MCP_PROXY_ALLOWED_PREFIXES");
  EXPECT_EQ(DecideArgv({"bash"}, {}).explanation,
            "`bash` is not on the allowlist (it is empty); add it with --allow-prefix bash or "
            "MCP_PROXY_ALLOWED_PREFIXES");
}

TEST(Governor, DeniesEmptyCommand) {
  SpawnRequest request;
  request.command_line = " \t ";
  request.allowed_prefixes = {"node"};
  SpawnDecision decision = Decide(request);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.reason_code, kReasonCommandEmpty);
  EXPECT_THAT(decision.argv, IsEmpty());
  EXPECT_EQ(decision.normalized_command, "");
  EXPECT_THAT(decision.explanation, HasSubstr("the command is empty"));
}

TEST(Governor, DeniesEmptyProgramName) {
  SpawnRequest request;
  request.command_line = "'' server.js";
  request.allowed_prefixes = {"node"};
  SpawnDecision decision = Decide(request);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.reason_code, kReasonCommandEmpty);
}

TEST(Governor, FallsBackToDenyWhenQuotingIsBroken) {
  SpawnRequest request;
  request.command_line = R"(node   "my server.js)";
  request.allowed_prefixes = {"node"};
  SpawnDecision decision = Decide(request);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.reason_code, kReasonGovernorFallback);
  EXPECT_THAT(decision.argv, IsEmpty());
  EXPECT_EQ(decision.normalized_command, R"(node "my server.js)");
  EXPECT_THAT(decision.explanation, HasSubstr("unterminated double quote at column 8"));
  EXPECT_EQ(decision.decision_id.size(), 64u);
}

TEST(Governor, NormalizesPrefixesWithoutLowercasing) {
  SpawnDecision decision = DecideArgv({"node"}, {" npx ", "node", "", "node", "Node", "  "});
  EXPECT_THAT(decision.prefixes, ElementsAre("Node", "node", "npx"));
}

TEST(Governor, ClampsSupervisionSettings) {
  SpawnRequest request;
  request.argv = {"node"};
  request.allowed_prefixes = {"node"};
  request.max_restarts = -3;
  request.restart_backoff_ms = 999999;
  request.kill_timeout_ms = 1;
  SpawnDecision low = Decide(request);
  EXPECT_EQ(low.max_restarts, 0);
  EXPECT_EQ(low.restart_backoff_ms, 60000);
  EXPECT_EQ(low.kill_timeout_ms, 100);

  request.max_restarts = 11;
  request.restart_backoff_ms = 50;
  request.kill_timeout_ms = INT64_MAX;
  SpawnDecision high = Decide(request);
  EXPECT_EQ(high.max_restarts, 10);
  EXPECT_EQ(high.restart_backoff_ms, 100);
  EXPECT_EQ(high.kill_timeout_ms, 120000);

  request.max_restarts = 5;
  request.restart_backoff_ms = 2500;
  request.kill_timeout_ms = 4000;
  SpawnDecision inside = Decide(request);
  EXPECT_EQ(inside.max_restarts, 5);
  EXPECT_EQ(inside.restart_backoff_ms, 2500);
  EXPECT_EQ(inside.kill_timeout_ms, 4000);
}

// The prototype's own vectors (seed-spec §10.13), copied from vectors/components.
TEST(GovernorVectors, ReproducesThePrototypeDecisions) {
  const char* source_dir = std::getenv("MCPMW_SOURCE_DIR");  // NOLINT(concurrency-mt-unsafe)
  ASSERT_NE(source_dir, nullptr) << "run through ctest, or set MCPMW_SOURCE_DIR to the repo root";
  const std::string file =
      std::string(source_dir) + "/tests/pool/testdata/proxy-process-governor.json";

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.load(file).get(root), simdjson::SUCCESS) << file;
  simdjson::dom::array vectors;
  ASSERT_EQ(root["vectors"].get(vectors), simdjson::SUCCESS);
  ASSERT_EQ(vectors.size(), 5u);

  for (simdjson::dom::element vector : vectors) {
    std::string_view name = vector["name"].get_string().value();
    SCOPED_TRACE(name);
    simdjson::dom::element input = vector["input"];
    simdjson::dom::element expected = vector["expected"];

    SpawnRequest request;
    request.command_line = std::string(input["proxyCommand"].get_string().value());
    for (simdjson::dom::element prefix : input["allowedCommandPrefixes"].get_array()) {
      request.allowed_prefixes.emplace_back(prefix.get_string().value());
    }
    request.max_restarts = input["maxRestarts"].get_int64().value();
    request.restart_backoff_ms = input["restartBackoffMs"].get_int64().value();
    request.kill_timeout_ms = input["killTimeoutMs"].get_int64().value();

    SpawnDecision decision = Decide(request);

    EXPECT_EQ(decision.decision_id, expected["decisionId"].get_string().value());
    EXPECT_EQ(decision.allowed ? "allow" : "deny", expected["status"].get_string().value());
    EXPECT_EQ(decision.reason_code, expected["reasonCode"].get_string().value());
    EXPECT_EQ(decision.normalized_command, expected["normalizedCommand"].get_string().value());
    simdjson::dom::element spawn = expected["spawn"];
    EXPECT_EQ(decision.allowed, spawn["allowed"].get_bool().value());
    std::vector<std::string> argv;
    for (simdjson::dom::element arg : spawn["argv"].get_array()) {
      argv.emplace_back(arg.get_string().value());
    }
    EXPECT_EQ(decision.argv, argv);
    EXPECT_EQ(decision.max_restarts, spawn["maxRestarts"].get_int64().value());
    EXPECT_EQ(decision.restart_backoff_ms, spawn["restartBackoffMs"].get_int64().value());
    EXPECT_EQ(decision.kill_timeout_ms, spawn["killTimeoutMs"].get_int64().value());
  }
}

}  // namespace
}  // namespace mcpmw::pool
