#include "src/middleware/report.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/common/clock.h"
#include "src/jsonrpc/envelope.h"
#include "src/middleware/chain_factory.h"
#include "src/policy/bundle.h"
#include "src/telemetry/metrics.h"
#include "tests/middleware/governed_session.h"

namespace mcpmw::middleware {
namespace {

using test_support::Reports;
using test_support::Session;

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

// One report, parsed. The padded copy keeps the DOM's strings alive. A missing member or one of
// another type fails the test and reads as empty, never as a dangling element.
class Report {
 public:
  explicit Report(const std::string& json) : text_(json) {
    EXPECT_EQ(parser_.parse(text_).get(root_), simdjson::SUCCESS) << json;
  }
  simdjson::dom::element operator[](std::string_view pointer) const {
    simdjson::dom::element e;
    if (root_.at_pointer(pointer).get(e) != simdjson::SUCCESS) {
      ADD_FAILURE() << "no " << pointer;
      EXPECT_EQ(empty_.parse("null", 4).get(e), simdjson::SUCCESS);
    }
    return e;
  }
  bool Has(std::string_view pointer) const {
    return root_.at_pointer(pointer).error() == simdjson::SUCCESS;
  }
  std::string Str(std::string_view pointer) const {
    std::string_view s;
    EXPECT_EQ((*this)[pointer].get_string().get(s), simdjson::SUCCESS) << pointer;
    return std::string(s);
  }
  int64_t Int(std::string_view pointer) const {
    int64_t n = -1;
    EXPECT_EQ((*this)[pointer].get_int64().get(n), simdjson::SUCCESS) << pointer;
    return n;
  }
  bool Bool(std::string_view pointer) const {
    bool b = false;
    EXPECT_EQ((*this)[pointer].get_bool().get(b), simdjson::SUCCESS) << pointer;
    return b;
  }
  size_t Count(std::string_view pointer) const {
    simdjson::dom::array a;
    if ((*this)[pointer].get_array().get(a) != simdjson::SUCCESS) {
      ADD_FAILURE() << pointer << " is not an array";
      return 0;
    }
    return a.size();
  }

 private:
  simdjson::padded_string text_;
  simdjson::dom::parser parser_;
  mutable simdjson::dom::parser empty_;
  simdjson::dom::element root_;
};

constexpr std::string_view kBundle = R"({"bundleVersion":"2026-11-24.7",
  "policyRules":[{"ruleId":"no-rm","status":"deny","conditionDsl":"tool.name == \"rm\"",
                  "reasonCode":"no-delete"}],
  "redactionRules":[{"ruleId":"mail","detector":"email"},
                    {"ruleId":"pw","direction":"request","matchPath":"$.password","mode":"drop"}],
  "pricing":{"requestBaseFeeUsd":0.5}})";

std::string Call(std::string_view tool, std::string_view arguments = "{}") {
  return std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":")") +
         std::string(tool) + R"(","arguments":)" + std::string(arguments) + "}}";
}

TEST(ReportStage, ReportsAServedCallWithEveryField) {
  Session s(kBundle, "", Reports::kCollect);
  s.claimed = {.tenant = "acme", .user = "alice", .agent = "claude"};
  s.Call(
      Call("lookup", R"({"who":"alice@example.com","password":"hunter2"})"),
      R"({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"bob@example.com"}]}})",
      milliseconds(12));
  ASSERT_EQ(s.reports.size(), 1u);
  const std::string& json = s.reports[0];
  Report r(json);
  EXPECT_EQ(r.Int("/v"), 3);
  EXPECT_EQ(r.Str("/invocationId"), "s-1");
  EXPECT_EQ(r.Str("/bundleVersion"), "2026-11-24.7");
  EXPECT_EQ(r.Str("/method"), "tools/call");
  EXPECT_EQ(r.Str("/tool"), "lookup");
  EXPECT_EQ(r.Str("/server"), "fs");
  EXPECT_EQ(r.Str("/principal/tenant"), "acme");
  EXPECT_EQ(r.Str("/principal/user"), "alice");
  EXPECT_EQ(r.Str("/principal/agent"), "claude");
  EXPECT_EQ(r.Str("/outcome"), "served");
  EXPECT_FALSE(r.Has("/error"));
  EXPECT_FALSE(r.Has("/rateLimit"));
  EXPECT_EQ(r.Int("/latencyUs"), 12000);
  EXPECT_TRUE(r.Bool("/dispatched"));

  // A routine pass is its stage's name alone; any other row is [stage, status, reasonCode] (the
  // decision id is "<invocationId>:<stage>" and is not repeated), with a fourth element only
  // for a stage in observe mode.
  EXPECT_THAT(json, HasSubstr(R"("decisions":["policy","tool_filter",)"
                              R"(["request_redaction","transform","request-redaction:2"],)"
                              R"("dispatch",["response_redaction","transform",)"
                              R"("response-redaction:1"]],)"));

  ASSERT_EQ(r.Count("/redactions"), 3u);
  EXPECT_EQ(r.Str("/redactions/0/direction"), "request");
  EXPECT_EQ(r.Str("/redactions/0/ruleId"), "mail");
  EXPECT_EQ(r.Str("/redactions/0/pointer"), "/who");
  EXPECT_EQ(r.Str("/redactions/0/action"), "redact");
  EXPECT_EQ(r.Str("/redactions/1/ruleId"), "pw");
  EXPECT_EQ(r.Str("/redactions/1/action"), "drop");
  EXPECT_EQ(r.Str("/redactions/2/direction"), "response");
  EXPECT_EQ(r.Str("/redactions/2/pointer"), "/content/0/text");
  EXPECT_THAT(json, Not(HasSubstr("example.com")));
  EXPECT_THAT(json, Not(HasSubstr("hunter2")));

  EXPECT_GT(r.Int("/cost/inputTokens"), 0);
  EXPECT_GT(r.Int("/cost/outputTokens"), 0);
  double usd = 0;
  ASSERT_EQ(r["/cost/usd"].get_double().get(usd), simdjson::SUCCESS);
  EXPECT_DOUBLE_EQ(usd, 0.5);
}

TEST(ReportStage, ReportsABlockedCallWithItsError) {
  Session s(kBundle, "", Reports::kCollect);
  s.Call(Call("rm"), "");
  ASSERT_EQ(s.reports.size(), 1u);
  Report r(s.reports[0]);
  EXPECT_EQ(r.Str("/outcome"), "blocked");
  EXPECT_EQ(r.Int("/error/code"), -32011);
  EXPECT_EQ(r.Str("/error/stage"), "policy");
  EXPECT_EQ(r.Str("/error/reasonCode"), "no-delete");
  EXPECT_FALSE(r.Bool("/dispatched"));
  EXPECT_EQ(r.Int("/latencyUs"), 0);
  ASSERT_EQ(r.Count("/decisions"), 2u);
  EXPECT_EQ(r.Str("/invocationId"), "s-1");  // the client saw decisionId "s-1:policy"
  EXPECT_EQ(r.Str("/decisions/0/1"), "deny");
  EXPECT_EQ(r.Str("/decisions/1/0"), "dispatch");
  EXPECT_EQ(r.Str("/decisions/1/2"), "dispatch:blocked-by-policy");
  EXPECT_FALSE(r.Has("/redactions"));  // nothing was redacted
}

TEST(ReportStage, ReportsAnErrorAnswerAsErroredWithoutAnErrorObject) {
  Session s(kBundle, "", Reports::kCollect);
  s.Call(Call("lookup"), R"({"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"down"}})");
  ASSERT_EQ(s.reports.size(), 1u);
  Report r(s.reports[0]);
  EXPECT_EQ(r.Str("/outcome"), "errored");
  EXPECT_FALSE(r.Has("/error"));
  EXPECT_TRUE(r.Bool("/dispatched"));
}

TEST(ReportStage, ReportsAWithheldAnswerAsErroredByTheStageThatWithheldIt) {
  Session s(kBundle, "", Reports::kCollect);
  s.Call(Call("lookup"), R"({"jsonrpc":"2.0","id":1,"result":{"to":"a@example.com","n":tru}})");
  ASSERT_EQ(s.reports.size(), 1u);
  Report r(s.reports[0]);
  EXPECT_EQ(r.Str("/outcome"), "errored");
  EXPECT_EQ(r.Int("/error/code"), -32014);
  EXPECT_EQ(r.Str("/error/stage"), "response_redaction");
  EXPECT_EQ(r.Str("/error/reasonCode"), "redaction-unreadable");
}

TEST(ReportStage, ReportsTheRateLimitThatRefusedACall) {
  Session s(R"({"bundleVersion":"v","rateLimitRules":[
      {"ruleId":"per-user","limit":1,"windowSeconds":60}],
      "redactionRules":[{"ruleId":"mail","detector":"email"}]})",
            "", Reports::kCollect);
  s.claimed = {.tenant = "acme", .user = "alice"};
  s.Call(Call("lookup"), R"({"jsonrpc":"2.0","id":1,"result":{}})", milliseconds(3));
  s.Call(Call("lookup"), "");
  ASSERT_EQ(s.reports.size(), 2u);
  // Every stage passed the first call with nothing to note.
  EXPECT_THAT(s.reports[0], HasSubstr(R"("decisions":["tool_filter","rate_limit",)"
                                      R"("request_redaction","dispatch","response_redaction"],)"));
  Report r(s.reports[1]);
  EXPECT_EQ(r.Str("/outcome"), "blocked");
  EXPECT_EQ(r.Int("/error/code"), -32013);
  EXPECT_EQ(r.Str("/error/stage"), "rate_limit");
  EXPECT_EQ(r.Str("/rateLimit/ruleId"), "per-user");
  EXPECT_EQ(r.Str("/rateLimit/key"), "acme:alice");
  EXPECT_EQ(r.Int("/rateLimit/retryAfterMs"), 59997);
  EXPECT_EQ(r.Str("/invocationId"), "s-2");
}

TEST(ReportStage, MarksTheDecisionOfAStageInObserveModeWithObserve) {
  Session s(R"({"bundleVersion":"v","stages":{"policy":{"mode":"observe"}},"policyRules":[
      {"ruleId":"d","status":"deny","conditionDsl":"args.x == 1"}]})",
            "", Reports::kCollect);
  s.Call(Call("t", R"({"x":1})"), R"({"jsonrpc":"2.0","id":1,"result":{}})");
  ASSERT_EQ(s.reports.size(), 1u);
  Report r(s.reports[0]);
  EXPECT_EQ(r.Str("/outcome"), "served");
  EXPECT_EQ(r.Str("/decisions/0/0"), "policy");
  EXPECT_EQ(r.Str("/decisions/0/1"), "deny");
  EXPECT_EQ(r.Str("/decisions/0/3"), "observe");
  EXPECT_EQ(r.Str("/decisions/1"), "tool_filter");  // routine passes, enforced
  EXPECT_EQ(r.Str("/decisions/2"), "dispatch");
}

TEST(ReportStage, EscapesStringsAndOmitsTheToolOutsideToolsCall) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle =
      policy::ParseBundle(R"({"bundleVersion":"v\"1"})");
  ASSERT_TRUE(bundle.ok());
  ReportStage stage(**bundle, nullptr);
  MessageContext ctx;
  ctx.invocation_id = "s-1";
  ctx.method = "ping";
  ctx.principal.user = "a\"b\n";
  Report r(stage.Render(ctx));
  EXPECT_EQ(r.Str("/bundleVersion"), "v\"1");
  EXPECT_EQ(r.Str("/principal/user"), "a\"b\n");
  EXPECT_FALSE(r.Has("/tool"));
  EXPECT_EQ(r.Count("/decisions"), 0u);
}

TEST(ReportStage, PacksWhatTheExchangeSaidIntoBytesThatRenderAfterTheExchangeIsGone) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle =
      policy::ParseBundle(R"({"bundleVersion":"v"})");
  ASSERT_TRUE(bundle.ok());
  std::string packed;
  ReportStage stage(**bundle, [&](const ReportDraft& draft) {
    // One byte past the end, to show the draft writes exactly what it said it would.
    packed.assign(draft.packed_size() + 1, '\x5a');
    draft.PackInto(packed.data());
    EXPECT_EQ(packed.back(), '\x5a');
    packed.pop_back();
  });

  std::string expected;
  {
    MessageContext ctx;
    ctx.invocation_id = "a-long-invocation-id-0001";
    ctx.method = "tools/call";
    ctx.tool_name = "a-tool-with-a-long-name";
    ctx.principal = {.tenant = "acme-corporation", .user = "alice", .agent = "planner"};
    ctx.outcome = Verdict::Reject(-32013, "limited");
    ctx.stopped_by = "rate_limit";
    ctx.decisions = {{.stage = "policy", .status = "allow", .reason_code = std::string("ok")},
                     {.stage = "tool_filter", .status = "allow", .routine = true},
                     {.stage = "rate_limit", .status = "deny", .reason_code = "rate-limited"}};
    ctx.rate = {.limited = true, .retry_after_ms = 900, .rule_id = "per-user", .key = "acme"};
    ctx.redactions = {{.direction = Direction::kServerToClient,
                       .rule_id = "mail",
                       .pointer = "/to",
                       .action = "mask"}};
    ctx.cost = {.input_tokens = 7, .output_tokens = 9, .usd = 0.25};
    ctx.dispatched = false;
    expected = stage.Render(ctx);
    stage.OnComplete(ctx);
  }
  ASSERT_FALSE(packed.empty());
  std::string rendered;
  RenderPackedReport(packed, &rendered);
  EXPECT_EQ(rendered, expected);
  Report r(rendered);
  EXPECT_EQ(r.Str("/tool"), "a-tool-with-a-long-name");
  EXPECT_EQ(r.Str("/principal/tenant"), "acme-corporation");
  EXPECT_EQ(r.Int("/error/code"), -32013);
  EXPECT_EQ(r.Str("/error/stage"), "rate_limit");
  EXPECT_EQ(r.Str("/decisions/0/2"), "ok");
  EXPECT_EQ(r.Str("/decisions/1"), "tool_filter");
  EXPECT_EQ(r.Int("/rateLimit/retryAfterMs"), 900);
  EXPECT_EQ(r.Str("/redactions/0/direction"), "response");
  EXPECT_EQ(r.Int("/cost/outputTokens"), 9);
}

TEST(ReportStage, RendersCutShortPackedBytesAsValidJsonWithEmptyValues) {
  MessageContext ctx;
  ctx.invocation_id = "s-1";
  ctx.method = "tools/call";
  ctx.decisions = {{.stage = "policy", .status = "deny", .reason_code = "no"}};
  ReportDraft draft(ctx, "v");
  std::string packed(draft.packed_size(), '\0');
  draft.PackInto(packed.data());
  for (size_t cut : {size_t{0}, size_t{3}, packed.size() / 2, packed.size() - 1}) {
    std::string rendered;
    RenderPackedReport(std::string_view(packed).substr(0, cut), &rendered);
    Report r(rendered);
    EXPECT_TRUE(r.Has("/invocationId")) << cut;
    EXPECT_TRUE(r.Has("/dispatched")) << cut;
  }
}

// A report stage on a bundle that decides nothing, and a tools/call exchange to fill in.
class ReportRendering : public ::testing::Test {
 protected:
  ReportRendering()
      : bundle_(*policy::ParseBundle(R"({"bundleVersion":"v"})")), stage_(*bundle_, nullptr) {
    ctx_.invocation_id = "s-1";
    ctx_.method = "tools/call";
  }
  std::string Render() const { return stage_.Render(ctx_); }

  std::shared_ptr<const policy::Bundle> bundle_;
  ReportStage stage_;
  MessageContext ctx_;
};

TEST_F(ReportRendering, RendersRepeatedDecisionRowsAndChangedOnesAlike) {
  ctx_.decisions = {{.stage = "policy", .status = "allow", .reason_code = "policy-allow"},
                    {.stage = "dispatch", .status = "allow", .reason_code = "dispatch:dispatched"}};
  const std::string rows =
      R"("decisions":[["policy","allow","policy-allow"],["dispatch","allow","dispatch:dispatched"]],)";
  EXPECT_THAT(Render(), HasSubstr(rows));
  EXPECT_THAT(Render(), HasSubstr(rows));  // the same rows again
  // A different literal, an observed row, a reason built at run time and a shorter list: each
  // is written as it is, never as the rows before.
  ctx_.decisions[1].reason_code = "dispatch:not-dispatched";
  EXPECT_THAT(Render(), HasSubstr(R"(["dispatch","allow","dispatch:not-dispatched"]],)"));
  ctx_.decisions[1].enforced = false;
  EXPECT_THAT(Render(), HasSubstr(R"(["dispatch","allow","dispatch:not-dispatched","observe"]],)"));
  ctx_.decisions[0].reason_code = std::string("policy-allow");
  ctx_.decisions[0].status = "deny";
  EXPECT_THAT(Render(), HasSubstr(R"("decisions":[["policy","deny","policy-allow"],)"));
  ctx_.decisions.pop_back();
  EXPECT_THAT(Render(), HasSubstr(R"("decisions":[["policy","deny","policy-allow"]],)"));
  ctx_.decisions.clear();
  EXPECT_THAT(Render(), HasSubstr(R"("decisions":[],)"));
}

TEST_F(ReportRendering, WritesARoutinePassAsItsStageNameUnlessTheStageOnlyObserved) {
  ctx_.decisions = {{.stage = "rate_limit", .status = "allow", .reason_code = "rate-limit:allowed"},
                    {.stage = "dispatch",
                     .status = "allow",
                     .reason_code = "dispatch:dispatched",
                     .routine = true}};
  EXPECT_THAT(
      Render(),
      HasSubstr(R"("decisions":[["rate_limit","allow","rate-limit:allowed"],"dispatch"],)"));
  ctx_.decisions[1].enforced = false;
  EXPECT_THAT(Render(), HasSubstr(R"(["dispatch","allow","dispatch:dispatched","observe"]],)"));
}

TEST_F(ReportRendering, WritesTheCostToTwelveSignificantDigits) {
  ctx_.cost.usd = 0.0001 + 74 * 0.000002 + 69 * 0.000008;  // 0.0007999999999999999 in binary
  ctx_.cost.input_tokens = 74;
  ctx_.cost.output_tokens = 69;
  EXPECT_THAT(Render(), HasSubstr(R"("cost":{"usd":0.0008,"inputTokens":74,"outputTokens":69},)"));
  ctx_.cost.usd = 1.0 / 3;
  EXPECT_THAT(Render(), HasSubstr(R"("usd":0.333333333333,)"));
}

}  // namespace
}  // namespace mcpmw::middleware
