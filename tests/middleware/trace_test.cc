#include "src/middleware/trace.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/common/clock.h"
#include "src/common/strings.h"
#include "src/jsonrpc/envelope.h"
#include "src/middleware/chain_factory.h"
#include "src/policy/bundle.h"
#include "src/telemetry/metrics.h"
#include "tests/middleware/governed_session.h"

namespace mcpmw::middleware {
namespace {

using test_support::Session;

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kDenyRm = R"({"bundleVersion":"v","policyRules":[
  {"ruleId":"no-rm","status":"deny","conditionDsl":"tool.name == \"rm\""}]})";

std::string Call(std::string_view tool) {
  return std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":")") +
         std::string(tool) + R"("}})";
}
constexpr std::string_view kResult = R"({"jsonrpc":"2.0","id":1,"result":{}})";
constexpr std::string_view kError = R"({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}})";

TEST(TraceStage, CountsExchangesByMethodAndOutcome) {
  Session s(kDenyRm);
  s.Call(Call("ls"), kResult, milliseconds(3));
  s.Call(Call("ls"), kResult, milliseconds(3));
  s.Call(Call("rm"), kResult);
  s.Call(Call("ls"), kError, milliseconds(40));
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"served\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"blocked\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"errored\"} 1\n"));
}

TEST(TraceStage, ObservesTheLatencyOfEachAnsweredExchange) {
  Session s(kDenyRm);
  s.Call(Call("ls"), kResult, milliseconds(3));
  s.Call(Call("ls"), kError, milliseconds(40));
  s.Call(Call("rm"), kResult);  // blocked at once: no latency to observe
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("mcpmw_request_latency_us_count{method=\"tools/call\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_request_latency_us_sum{method=\"tools/call\"} 43000\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_request_latency_us_bucket{method=\"tools/call\",le=\"5000\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_request_latency_us_bucket{method=\"tools/call\",le=\"50000\"} 2\n"));
}

// The Prometheus line counting enforced decisions of `stage` with `status`.
std::string DecisionsLine(std::string_view stage, std::string_view status, int count) {
  return absl::StrCat("mcpmw_decisions_total{enforced=\"true\",stage=\"", Sv(stage), "\",status=\"",
                      Sv(status), "\"} ", count, "\n");
}

TEST(TraceStage, CountsDecisionsByStageStatusAndEnforcement) {
  Session s(kDenyRm);
  s.Call(Call("rm"), kResult);
  s.Call(Call("ls"), kResult);
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr(DecisionsLine("policy", "deny", 1)));
  EXPECT_THAT(text, HasSubstr(DecisionsLine("policy", "allow", 1)));
  EXPECT_THAT(text, HasSubstr(DecisionsLine("dispatch", "deny", 1)));
  EXPECT_THAT(text, HasSubstr(DecisionsLine("dispatch", "allow", 1)));
}

TEST(TraceStage, CountsDecisionsRightWhenExchangesAlternateKindAndMethod) {
  // The stage remembers the last method and where each row was counted; exchanges that change
  // method or produce different rows must still land on their own series.
  Session s(kDenyRm);
  s.Call(Call("rm"), kResult);
  s.Call(Call("ls"), kResult);
  s.Call(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", kResult);
  s.Call(Call("rm"), kResult);
  s.Call(Call("ls"), kResult);
  s.Call(Call("ls"), kResult);
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr(DecisionsLine("policy", "deny", 2)));
  EXPECT_THAT(text, HasSubstr(DecisionsLine("policy", "allow", 4)));
  EXPECT_THAT(text, HasSubstr(DecisionsLine("dispatch", "deny", 2)));
  EXPECT_THAT(text, HasSubstr(DecisionsLine("dispatch", "allow", 4)));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"served\"} 3\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"blocked\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_requests_total{method=\"ping\",outcome=\"served\"} 1\n"));
}

TEST(TraceStage, CountsObservedDecisionsAsNotEnforced) {
  Session s(R"({"bundleVersion":"v","mode":"observe","policyRules":[
    {"ruleId":"no-rm","status":"deny","conditionDsl":"args.force == true"}]})");
  s.Call(
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm","arguments":{"force":true}}})",
      kResult);
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("mcpmw_decisions_total{enforced=\"false\",stage=\"policy\","
                              "status=\"deny\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"served\"} 1\n"));
}

TEST(TraceStage, LabelsAnUnknownMethodOther) {
  Session s(R"({"bundleVersion":"v"})");
  s.Call(R"({"jsonrpc":"2.0","id":1,"method":"x/made-up-1"})", kResult);
  s.Call(R"({"jsonrpc":"2.0","id":2,"method":"x/made-up-2"})", kResult);
  s.Call(R"({"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"a"}})", kResult);
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("mcpmw_requests_total{method=\"other\",outcome=\"served\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"resources/read\",outcome=\"served\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("made-up")));
}

TEST(TraceStage, DoesNothingWithoutARegistry) {
  TraceStage stage(nullptr);
  MessageContext ctx;
  ctx.method = "tools/call";
  ctx.decisions.push_back({.stage = "policy", .status = "deny"});
  stage.OnComplete(ctx);
  EXPECT_EQ(ctx.decisions.size(), 1u);
}

TEST(ExchangeOutcome, TellsServedBlockedAndErroredApart) {
  MessageContext ctx;
  ctx.dispatched = true;
  EXPECT_EQ(ExchangeOutcome(ctx), "served");
  ctx.upstream_error = true;
  EXPECT_EQ(ExchangeOutcome(ctx), "errored");
  ctx.upstream_error = false;
  ctx.outcome = Verdict::Reject(kCodeRedactionFailed, "withheld");
  EXPECT_EQ(ExchangeOutcome(ctx), "errored");  // dispatched, answer withheld
  ctx.dispatched = false;
  EXPECT_EQ(ExchangeOutcome(ctx), "blocked");
}

}  // namespace
}  // namespace mcpmw::middleware
