#include "src/policy/condition.h"

#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace mcpmw::policy {
namespace {

constexpr std::string_view kArgs = R"({
  "path": "/tmp/x", "recursive": true, "count": 3, "ratio": 0.5, "tags": ["a", "b", 7],
  "nested": {"list": [{"name": "n0"}, {"name": "n1"}]}, "odd key": "v", "empty": "",
  "zero": 0, "nothing": null, "big": 18446744073709551615, "none": [], "blank": {}
})";

// A tools/call of file.delete on server "fs" by alice (roles admin, dev) in prod.
class ConditionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    json_ = simdjson::padded_string(kArgs);
    ASSERT_EQ(parser_.parse(json_).get(args_), simdjson::SUCCESS);
    ctx_.method = "tools/call";
    ctx_.tool_name = "file.delete";
    ctx_.tool_server = "fs";
    ctx_.tenant = "acme";
    ctx_.user = "alice";
    ctx_.agent = "claude-code";
    ctx_.env = "prod";
    ctx_.roles = roles_;
    ctx_.scopes = scopes_;
    ctx_.args = args_;
    ctx_.has_args = true;
  }

  // Compiles `source` as an expression and evaluates it against ctx_.
  bool Holds(std::string_view source) {
    absl::StatusOr<Condition> c = Condition::Compile(source, "r", ConditionLanguage::kExpression);
    EXPECT_TRUE(c.ok()) << source << ": " << c.status();
    return c.ok() && c->Evaluate(ctx_);
  }

  // Compiles `source`, which must fail, and returns the whole message.
  static std::string CompileError(std::string_view source, std::string_view rule = "r") {
    absl::StatusOr<Condition> c = Condition::Compile(source, rule, ConditionLanguage::kExpression);
    EXPECT_FALSE(c.ok()) << source << " compiled";
    if (c.ok()) {
      return "";
    }
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(c.status().message());
  }

  simdjson::dom::parser parser_;
  simdjson::padded_string json_;
  simdjson::dom::element args_;
  std::vector<std::string> roles_ = {"admin", "dev"};
  std::vector<std::string> scopes_ = {"tools:invoke", "files:write"};
  EvalContext ctx_;
};

using ConditionExpression = ConditionTest;
using ConditionCompile = ConditionTest;
using ConditionToString = ConditionTest;

// --- precedence ---

TEST_F(ConditionExpression, AndBindsTighterThanOr) {
  EXPECT_TRUE(Holds("true || false && false"));
  EXPECT_TRUE(Holds("false && true || true"));
  EXPECT_FALSE(Holds("(true || false) && false"));
}

TEST_F(ConditionExpression, NotBindsTighterThanComparisonAndAnd) {
  EXPECT_FALSE(Holds("!false && false"));
  EXPECT_TRUE(Holds("!(false && false)"));
  // (!"") == "x", not !("" == "x").
  EXPECT_FALSE(Holds(R"(!args.empty == "x")"));
  EXPECT_TRUE(Holds(R"(!(args.empty == "x"))"));
  EXPECT_TRUE(Holds("!!true"));
}

TEST_F(ConditionExpression, ComparisonsBindTighterThanAnd) {
  EXPECT_TRUE(Holds(R"(method == "tools/call" && tool.server == "fs")"));
  EXPECT_FALSE(Holds(R"(method == "tools/call" && tool.server == "git")"));
  EXPECT_TRUE(Holds(R"(tool.server == "git" || "admin" in principal.roles && env == "prod")"));
}

// --- operators ---

TEST_F(ConditionExpression, EqualityComparesTypeAndValue) {
  EXPECT_TRUE(Holds(R"(tool.name == "file.delete")"));
  EXPECT_FALSE(Holds(R"(tool.name == "File.delete")"));
  EXPECT_TRUE(Holds("args.count == 3"));
  EXPECT_TRUE(Holds("args.count == 3.0"));
  EXPECT_TRUE(Holds("args.ratio == 0.5"));
  EXPECT_TRUE(Holds("args.recursive == true"));
  EXPECT_TRUE(Holds("args.nothing == null"));
  EXPECT_TRUE(Holds("null == null"));
  EXPECT_TRUE(Holds(R"(args.count != 4)"));
  EXPECT_FALSE(Holds(R"(args.count != 3)"));
}

TEST_F(ConditionExpression, MismatchedTypesAreNeverEqualOrOrdered) {
  EXPECT_FALSE(Holds(R"(args.count == "3")"));
  EXPECT_TRUE(Holds(R"(args.count != "3")"));
  EXPECT_FALSE(Holds("args.nothing == false"));
  EXPECT_FALSE(Holds("args.zero == false"));
  EXPECT_FALSE(Holds(R"(args.empty == null)"));
  EXPECT_FALSE(Holds(R"("3" < 4)"));
  EXPECT_FALSE(Holds(R"("3" >= 4)"));
  EXPECT_FALSE(Holds("true > false"));
  EXPECT_FALSE(Holds("null <= null"));
  EXPECT_FALSE(Holds(R"(principal.roles == ["admin", "dev"])"));
  EXPECT_FALSE(Holds("args.blank == args.blank"));
}

TEST_F(ConditionExpression, OrdersNumbersNumerically) {
  EXPECT_TRUE(Holds("args.ratio < 1"));
  EXPECT_TRUE(Holds("args.count <= 3"));
  EXPECT_FALSE(Holds("args.count < 3"));
  EXPECT_TRUE(Holds("args.count >= 3"));
  EXPECT_FALSE(Holds("args.count > 3"));
  EXPECT_TRUE(Holds("-1 < 0"));
  EXPECT_TRUE(Holds("10 > 9"));
  EXPECT_TRUE(Holds("1e3 == 1000"));
  EXPECT_TRUE(Holds("args.big > 9223372036854775807"));
}

TEST_F(ConditionExpression, OrdersStringsByCodeUnits) {
  EXPECT_TRUE(Holds(R"("abc" < "abd")"));
  EXPECT_TRUE(Holds(R"("B" < "a")"));
  EXPECT_TRUE(Holds(R"("ab" < "abc")"));
  EXPECT_TRUE(Holds(R"("é" > "z")"));
  EXPECT_TRUE(Holds(R"(principal.user >= "alice")"));
}

TEST_F(ConditionExpression, InTestsListMembershipAndSubstrings) {
  EXPECT_TRUE(Holds(R"("admin" in principal.roles)"));
  EXPECT_FALSE(Holds(R"("root" in principal.roles)"));
  EXPECT_TRUE(Holds(R"("files:write" in principal.scopes)"));
  EXPECT_FALSE(Holds(R"("files" in principal.scopes)"));
  EXPECT_TRUE(Holds(R"(tool.server in ["git", "fs"])"));
  EXPECT_FALSE(Holds(R"(tool.server in [])"));
  EXPECT_TRUE(Holds(R"(3 in [1, 2, 3.0])"));
  EXPECT_TRUE(Holds(R"(principal.user in [principal.agent, "alice"])"));
  EXPECT_TRUE(Holds("7 in args.tags"));
  EXPECT_FALSE(Holds(R"("7" in args.tags)"));
  EXPECT_TRUE(Holds(R"("delete" in tool.name)"));
  EXPECT_FALSE(Holds(R"("Delete" in tool.name)"));
  EXPECT_FALSE(Holds(R"(3 in "123")"));
  EXPECT_FALSE(Holds(R"("x" in args.missing)"));
  EXPECT_FALSE(Holds(R"("path" in args)"));  // objects are not searched
}

TEST_F(ConditionExpression, ContainsIsInWithTheOperandsSwapped) {
  EXPECT_TRUE(Holds(R"(tool.name contains "delete")"));
  EXPECT_TRUE(Holds(R"(principal.roles contains "dev")"));
  EXPECT_FALSE(Holds(R"(principal.roles contains "de")"));
  EXPECT_TRUE(Holds(R"(args.tags contains "b")"));
  EXPECT_FALSE(Holds(R"(args.none contains "b")"));
}

TEST_F(ConditionExpression, StartsWithAndEndsWithNeedTwoStrings) {
  EXPECT_TRUE(Holds(R"(tool.name startsWith "file.")"));
  EXPECT_FALSE(Holds(R"(tool.name startsWith "delete")"));
  EXPECT_TRUE(Holds(R"(tool.name endsWith ".delete")"));
  EXPECT_FALSE(Holds(R"(tool.name endsWith "file")"));
  EXPECT_FALSE(Holds(R"(args.count startsWith "3")"));
  EXPECT_FALSE(Holds(R"(principal.roles startsWith "admin")"));
}

TEST_F(ConditionExpression, MatchesIsAPartialRe2MatchThatHonoursAnchors) {
  EXPECT_TRUE(Holds(R"(tool.name matches "^file\\.")"));
  EXPECT_FALSE(Holds(R"(tool.name matches "^delete")"));
  EXPECT_TRUE(Holds(R"(tool.name matches "delete$")"));
  EXPECT_TRUE(Holds(R"(tool.name matches "delete")"));
  EXPECT_TRUE(Holds(R"(tool.name matches "^file\\.delete$")"));
  EXPECT_FALSE(Holds(R"(tool.name matches "^file\\.del$")"));
  EXPECT_TRUE(Holds(R"(args.path matches '^/tmp/[a-z]+$')"));
  EXPECT_FALSE(Holds(R"(args.count matches "3")"));
}

TEST_F(ConditionExpression, StringEscapesAreDecoded) {
  EXPECT_TRUE(Holds(R"('it\'s' == "it's")"));
  EXPECT_TRUE(Holds(R"("a\"b" == 'a"b')"));
  EXPECT_TRUE(Holds(R"("\u00e9" == "é")"));
  EXPECT_TRUE(Holds(R"("\ud83d\ude00" == "😀")"));
  EXPECT_TRUE(Holds(R"("\\" < "]")"));
}

// --- args paths ---

TEST_F(ConditionExpression, ArgsPathsReadNestedMembersAndArrayElements) {
  EXPECT_TRUE(Holds(R"(args.path == "/tmp/x")"));
  EXPECT_TRUE(Holds(R"(args.nested.list[1].name == "n1")"));
  EXPECT_TRUE(Holds(R"(args.tags[0] == "a")"));
  EXPECT_TRUE(Holds(R"(args.tags[2] == 7)"));
  EXPECT_TRUE(Holds(R"(args["odd key"] == "v")"));
  EXPECT_TRUE(Holds(R"(args["nested"]["list"][0]["name"] == "n0")"));
}

TEST_F(ConditionExpression, MissingArgsMembersReadAsNull) {
  EXPECT_TRUE(Holds("args.missing == null"));
  EXPECT_TRUE(Holds("args.nested.list[2].name == null"));
  EXPECT_TRUE(Holds("args.tags[99] == null"));
  EXPECT_TRUE(Holds("args.path.x == null"));     // a step into a string
  EXPECT_TRUE(Holds("args.tags.x == null"));     // a name on an array
  EXPECT_TRUE(Holds("args.nested[0] == null"));  // an index on an object
  EXPECT_FALSE(Holds("args.missing"));
}

TEST_F(ConditionExpression, NoArgumentsMakesEveryArgsPathNull) {
  ctx_.has_args = false;
  ctx_.args = simdjson::dom::element();
  EXPECT_TRUE(Holds("args == null"));
  EXPECT_TRUE(Holds("args.path == null"));
  EXPECT_TRUE(Holds("!args"));
  EXPECT_FALSE(Holds(R"("a" in args.tags)"));
}

TEST_F(ConditionExpression, ABarePathIsTruthyWhenTrueNonEmptyOrNonZero) {
  EXPECT_TRUE(Holds("args.recursive"));
  EXPECT_TRUE(Holds("args.count"));
  EXPECT_TRUE(Holds("args.path"));
  EXPECT_TRUE(Holds("args.tags"));
  EXPECT_TRUE(Holds("args.nested"));
  EXPECT_TRUE(Holds("principal.roles"));
  EXPECT_FALSE(Holds("args.empty"));
  EXPECT_FALSE(Holds("args.zero"));
  EXPECT_FALSE(Holds("args.nothing"));
  EXPECT_FALSE(Holds("args.none"));
  EXPECT_FALSE(Holds("args.blank"));
  EXPECT_FALSE(Holds("[]"));
  ctx_.roles = {};
  EXPECT_FALSE(Holds("principal.roles"));
}

TEST_F(ConditionExpression, EveryRootReadsItsContextField) {
  EXPECT_TRUE(Holds(R"(method == "tools/call")"));
  EXPECT_TRUE(Holds(R"(tool.server == "fs")"));
  EXPECT_TRUE(Holds(R"(principal.tenant == "acme")"));
  EXPECT_TRUE(Holds(R"(principal.user == "alice")"));
  EXPECT_TRUE(Holds(R"(principal.agent == "claude-code")"));
  EXPECT_TRUE(Holds(R"(env == "prod")"));
}

TEST_F(ConditionExpression, EmptyAndStarConditionsAlwaysHold) {
  for (std::string_view source : {"", "   ", "*", " * \n"}) {
    absl::StatusOr<Condition> c = Condition::Compile(source, "all", ConditionLanguage::kExpression);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(c->always_true());
    EXPECT_TRUE(c->Evaluate(EvalContext{}));
    EXPECT_EQ(c->ToString(), "*");
  }
  absl::StatusOr<Condition> c = Condition::Compile("true", "t", ConditionLanguage::kExpression);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->always_true());
}

TEST_F(ConditionExpression, CopiesShareTheProgramAndMayBeEvaluatedConcurrently) {
  absl::StatusOr<Condition> c = Condition::Compile(
      R"(tool.name matches "^file\\." && "admin" in principal.roles && args.count >= 3)", "c",
      ConditionLanguage::kExpression);
  ASSERT_TRUE(c.ok()) << c.status();
  const Condition copy = *c;
  EXPECT_EQ(copy.rule_id(), "c");
  std::atomic<int> held{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        held += copy.Evaluate(ctx_) ? 1 : 0;
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(held.load(), 2000);
}

// --- compile errors ---

TEST_F(ConditionCompile, NamesTheRuleAndColumnOfADanglingOperator) {
  EXPECT_EQ(CompileError("(tool.name == )", "deny-delete"),
            "rule \"deny-delete\": column 15: expected a value after `==`, found `)`");
  EXPECT_EQ(CompileError("tool.name =="),
            "rule \"r\": column 13: expected a value after `==`, found the end of the condition");
  EXPECT_EQ(CompileError(R"(method == "x" &&)"),
            "rule \"r\": column 17: expected a value after `&&`, found the end of the condition");
  EXPECT_EQ(CompileError("|| true"), "rule \"r\": column 1: expected a value, found `||`");
  EXPECT_EQ(CompileError("!"),
            "rule \"r\": column 2: expected a value after `!`, found the end of the condition");
}

TEST_F(ConditionCompile, PointsAtTheOpeningQuoteOfAnUnterminatedString) {
  EXPECT_EQ(CompileError(R"(tool.name == "abc)"),
            "rule \"r\": column 14: unterminated string literal");
  EXPECT_EQ(CompileError(R"(tool.name == 'abc\')"),
            "rule \"r\": column 14: unterminated string literal");
}

TEST_F(ConditionCompile, ListsTheValidRootsForAnUnknownName) {
  EXPECT_EQ(CompileError(R"(env == "prod" && user == "bob")"),
            "rule \"r\": column 18: unknown name `user`; valid roots are method, env, tool.name, "
            "tool.server, principal.tenant, principal.user, principal.agent, principal.roles, "
            "principal.scopes, args.<path>");
  EXPECT_EQ(CompileError(R"(principal.role == "x")"),
            "rule \"r\": column 11: unknown field `principal.role`; valid fields are "
            "principal.tenant, principal.user, principal.agent, principal.roles, principal.scopes");
  EXPECT_EQ(CompileError("tool == 1"),
            "rule \"r\": column 6: `tool` needs a field (tool.name, tool.server), found `==`");
  EXPECT_EQ(CompileError("method.x"),
            "rule \"r\": column 7: `method` has no members; only args.<path> does");
}

TEST_F(ConditionCompile, ReportsABadRegexAtItsPattern) {
  EXPECT_EQ(CompileError(R"(tool.name matches "(unclosed")", "re"),
            "rule \"re\": column 19: invalid regular expression: missing ): (unclosed");
  EXPECT_EQ(CompileError("tool.name matches tool.server"),
            "rule \"r\": column 19: `matches` takes a string literal RE2 pattern, found `tool`");
}

TEST_F(ConditionCompile, RejectsTrailingTokens) {
  EXPECT_EQ(CompileError(R"(method == "a" "b")"),
            "rule \"r\": column 15: expected an operator or the end of the condition, found "
            "`\"b\"`");
  EXPECT_EQ(CompileError("true)"),
            "rule \"r\": column 5: expected an operator or the end of the condition, found `)`");
  EXPECT_EQ(CompileError("* && true"), "rule \"r\": column 1: expected a value, found `*`");
}

TEST_F(ConditionCompile, ExplainsUnbalancedBracketsAndChainedComparisons) {
  EXPECT_EQ(CompileError(R"((method == "a")"),
            "rule \"r\": column 15: expected `)` to close the `(` at column 1, found the end of "
            "the condition");
  EXPECT_EQ(CompileError(R"(x in ["a" "b"])"),
            "rule \"r\": column 1: unknown name `x`; valid roots are method, env, tool.name, "
            "tool.server, principal.tenant, principal.user, principal.agent, principal.roles, "
            "principal.scopes, args.<path>");
  EXPECT_EQ(CompileError(R"(env in ["a" "b"])"),
            "rule \"r\": column 13: expected `,` or `]` in the list opened at column 8, found "
            "`\"b\"`");
  EXPECT_EQ(CompileError("args.a == 1 == true"),
            "rule \"r\": column 13: `==` cannot follow a comparison; comparisons do not chain, "
            "add parentheses");
}

TEST_F(ConditionCompile, SuggestsTheDoubledFormOfASingleOperatorCharacter) {
  EXPECT_EQ(CompileError(R"(method = "a")"),
            "rule \"r\": column 8: unexpected `=`; did you mean `==`?");
  EXPECT_EQ(CompileError("true & false"),
            "rule \"r\": column 6: unexpected `&`; did you mean `&&`?");
  EXPECT_EQ(CompileError("true # x"), "rule \"r\": column 6: unexpected character `#`");
}

TEST_F(ConditionCompile, RejectsBadEscapesAndNumbers) {
  EXPECT_EQ(CompileError(R"("a\qb" == env)"),
            "rule \"r\": column 3: invalid escape `\\q` in a string");
  EXPECT_EQ(CompileError(R"("\ud800" == env)"),
            "rule \"r\": column 2: invalid \\u escape: unpaired surrogate");
  EXPECT_EQ(CompileError("args.n == 12ab"), "rule \"r\": column 11: invalid number");
  EXPECT_EQ(CompileError("args.n == 1e999"), "rule \"r\": column 11: number out of range");
  EXPECT_EQ(CompileError("args.n == -x"),
            "rule \"r\": column 12: expected a number after `-`, found `x`");
}

TEST_F(ConditionCompile, CountsColumnsInCharactersAndReportsLinesOfMultiLineSources) {
  EXPECT_EQ(CompileError(R"("é" == )"),
            "rule \"r\": column 8: expected a value after `==`, found the end of the condition");
  EXPECT_EQ(CompileError("method == \"a\" &&\n  )"),
            "rule \"r\": line 2, column 3: expected a value after `&&`, found `)`");
}

TEST_F(ConditionCompile, LimitsNesting) {
  const std::string deep = std::string(100, '(') + "true" + std::string(100, ')');
  EXPECT_EQ(CompileError(deep), "rule \"r\": column 65: nesting deeper than 64 levels");
  const std::string nots = std::string(100, '!') + "true";
  EXPECT_EQ(CompileError(nots), "rule \"r\": column 65: nesting deeper than 64 levels");
  EXPECT_TRUE(Holds(std::string(60, '(') + "true" + std::string(60, ')')));
}

// --- ToString ---

TEST_F(ConditionToString, PrintsACanonicalFullyParenthesizedForm) {
  absl::StatusOr<Condition> c = Condition::Compile(
      R"(method=='tools/call'&&!args.recursive||tool.name matches "^file\\." || -1.5 < args["odd key"][0])",
      "p", ConditionLanguage::kExpression);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string printed = c->ToString();
  EXPECT_EQ(
      printed,
      R"((((method == "tools/call") && !args.recursive) || (tool.name matches "^file\\.") || )"
      R"((-1.5 < args["odd key"][0])))");
  absl::StatusOr<Condition> again =
      Condition::Compile(printed, "p", ConditionLanguage::kExpression);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToString(), printed);
}

TEST_F(ConditionToString, KeepsFloatsFloatsAndEscapesControlCharacters) {
  absl::StatusOr<Condition> c = Condition::Compile(R"(["a\n\u0001", 1.0, -0.0, 2, args.in])", "p",
                                                   ConditionLanguage::kExpression);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ToString(), R"(["a\n\u0001", 1.0, -0.0, 2, args.in])");
}

// --- legacy substring mode (seed §6.3 step 4) ---

class ConditionLegacySubstring : public ::testing::Test {
 protected:
  bool Applies(std::string_view condition) {
    absl::StatusOr<Condition> c =
        Condition::Compile(condition, "legacy", ConditionLanguage::kLegacySubstring);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() && c->Evaluate(ctx_);
  }

  std::vector<std::string> scopes_ = {"scope:read", "scope:tools:invoke"};
  EvalContext ctx_{.tool_name = "search_docs", .tool_server = "server-alpha", .scopes = scopes_};
};

TEST_F(ConditionLegacySubstring, ReproducesPolicyVectorFour) {
  EXPECT_TRUE(Applies("tool:search_docs"));
  EXPECT_TRUE(Applies("server-alpha"));
  EXPECT_TRUE(Applies("scope:tools:invoke"));
  EXPECT_FALSE(Applies("tool:other"));
}

TEST_F(ConditionLegacySubstring, AStarAnywhereIsAWildcard) {
  EXPECT_TRUE(Applies("if * then audit"));
  ctx_ = EvalContext{};
  EXPECT_TRUE(Applies("*"));
}

TEST_F(ConditionLegacySubstring, AnEmptyNeedleNeverMatches) {
  const std::vector<std::string> blank_scopes = {"", " \t", "\xC2\xA0"};
  ctx_ = EvalContext{.tool_name = "", .tool_server = "", .scopes = blank_scopes};
  EXPECT_FALSE(Applies("deny everything"));
  EXPECT_FALSE(Applies(""));
  ctx_.tool_name = "search_docs";
  EXPECT_FALSE(Applies("deny everything"));
  EXPECT_TRUE(Applies("tool:search_docs"));
}

TEST_F(ConditionLegacySubstring, AnEmptyConditionMatchesNothing) {
  EXPECT_FALSE(Applies(""));
  absl::StatusOr<Condition> c =
      Condition::Compile("", "legacy", ConditionLanguage::kLegacySubstring);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->always_true());
}

TEST_F(ConditionLegacySubstring, LowercasesTheToolNameButSearchesCaseSensitively) {
  ctx_.tool_name = "Echo";
  EXPECT_TRUE(Applies("tool=echo"));
  EXPECT_FALSE(Applies("TOOL=ECHO"));
}

TEST_F(ConditionLegacySubstring, KeepsThePrototypesSubstringFalsePositives) {
  ctx_.tool_name = "e";
  EXPECT_TRUE(Applies("delete"));
  const std::vector<std::string> read = {"read"};
  ctx_ = EvalContext{.scopes = read};
  EXPECT_TRUE(Applies("tools:read-only"));
}

TEST_F(ConditionLegacySubstring, NormalizesScopesButNotTheServerId) {
  const std::vector<std::string> scopes = {" Read:ALL\xC2\xA0"};
  ctx_ = EvalContext{.tool_server = "Alpha", .scopes = scopes};
  EXPECT_TRUE(Applies("needs read:all"));
  EXPECT_FALSE(Applies("needs Read:ALL"));
  EXPECT_FALSE(Applies("server alpha"));
  EXPECT_TRUE(Applies("server Alpha"));
}

TEST_F(ConditionLegacySubstring, CompilesAnyTextAndPrintsItUnchanged) {
  absl::StatusOr<Condition> c =
      Condition::Compile("((( \"", "legacy", ConditionLanguage::kLegacySubstring);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ToString(), "((( \"");
  EXPECT_EQ(c->language(), ConditionLanguage::kLegacySubstring);
  EXPECT_FALSE(c->Evaluate(ctx_));
}

}  // namespace
}  // namespace mcpmw::policy
