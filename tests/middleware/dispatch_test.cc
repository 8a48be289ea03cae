#include "src/middleware/dispatch.h"

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

using test_support::Exchange;
using test_support::FindDecision;
using test_support::Frame;
using test_support::Session;

using std::chrono::milliseconds;

constexpr std::string_view kDenyRm = R"({"bundleVersion":"v","policyRules":[
  {"ruleId":"no-rm","status":"deny","conditionDsl":"tool.name == \"rm\""}]})";
constexpr std::string_view kCallLs =
    R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ls"}})";
constexpr std::string_view kCallRm =
    R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm"}})";
constexpr std::string_view kResult = R"({"jsonrpc":"2.0","id":1,"result":{"content":[]}})";

TEST(DispatchStage, MarksAForwardedRequestDispatchedAndCountsItsBytes) {
  Session s(kDenyRm);
  std::unique_ptr<Exchange> ex = s.Begin(kCallLs);
  EXPECT_TRUE(ex->ctx.dispatched);
  EXPECT_EQ(ex->ctx.request_bytes, kCallLs.size());
  EXPECT_TRUE(ex->ctx.blocked_by.empty());
  const Decision* d = FindDecision(ex->ctx, "dispatch");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "dispatch:dispatched");
}

TEST(DispatchStage, MeasuresLatencyOnTheInjectedClock) {
  Session s(kDenyRm);
  s.clock.Advance(milliseconds(1000));
  auto ex = s.Call(kCallLs, kResult, milliseconds(42));
  EXPECT_EQ(ex->ctx.finished - ex->ctx.started, milliseconds(42));
  EXPECT_EQ(ex->ctx.response_bytes, kResult.size());
  EXPECT_FALSE(ex->ctx.upstream_error);
}

TEST(DispatchStage, NotesAnErrorAnswerFromTheServer) {
  Session s(kDenyRm);
  auto ex = s.Call(kCallLs, R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}})");
  EXPECT_TRUE(ex->ctx.dispatched);
  EXPECT_TRUE(ex->ctx.upstream_error);
}

TEST(DispatchStage, RecordsWhichStageBlockedARejectedRequest) {
  Session s(kDenyRm);
  s.clock.Advance(milliseconds(5));
  auto ex = s.Begin(kCallRm);
  ASSERT_EQ(ex->request_verdict.code, kCodePolicyDenied);
  EXPECT_FALSE(ex->ctx.dispatched);
  EXPECT_EQ(ex->ctx.request_bytes, 0u);
  EXPECT_EQ(ex->ctx.blocked_by, "policy");
  ASSERT_FALSE(ex->ctx.decisions.empty());
  const Decision& last = ex->ctx.decisions.back();
  EXPECT_EQ(last.stage, "dispatch");
  EXPECT_EQ(last.status, "deny");
  EXPECT_EQ(last.reason_code, "dispatch:blocked-by-policy");
  // Completed at once: no time passed.
  EXPECT_EQ(ex->ctx.finished, ex->ctx.started);
  EXPECT_EQ(ex->ctx.finished.time_since_epoch(), milliseconds(5));
}

TEST(DispatchStage, DoesNotBlameAnObservedDeny) {
  ManualClock clock;
  clock.Advance(milliseconds(7));
  DispatchStage stage(clock);
  MessageContext ctx;
  ctx.decisions.push_back(
      {.stage = "policy", .status = "deny", .reason_code = "policy-deny", .enforced = false});
  stage.OnComplete(ctx);
  EXPECT_TRUE(ctx.blocked_by.empty());
  EXPECT_EQ(ctx.decisions.back().reason_code, "dispatch:not-dispatched");
  EXPECT_EQ(ctx.finished.time_since_epoch(), milliseconds(7));
}

TEST(DispatchStage, BlamesTheStageWhoseVerdictTookEffect) {
  ManualClock clock;
  DispatchStage stage(clock);
  MessageContext ctx;
  ctx.decisions.push_back({.stage = "auth", .status = "allow"});
  ctx.decisions.push_back({.stage = "rate_limit", .status = "deny"});
  ctx.decisions.push_back({.stage = "trace", .status = "deny", .enforced = false});
  ctx.stopped_by = "rate_limit";  // what the chain records when rate_limit's Reject takes effect
  stage.OnComplete(ctx);
  EXPECT_EQ(ctx.blocked_by, "rate_limit");
  EXPECT_EQ(ctx.decisions.back().reason_code, "dispatch:blocked-by-rate_limit");
}

TEST(DispatchStage, KeepsTheFinishTimeTheResponseSet) {
  ManualClock clock;
  DispatchStage stage(clock);
  Frame frame(kResult);
  MessageContext ctx{.direction = Direction::kServerToClient,
                     .envelope = &frame.envelope(),
                     .payload = frame.view()};
  ctx.dispatched = true;
  clock.Advance(milliseconds(10));
  stage.OnResponse(ctx);
  clock.Advance(milliseconds(10));
  stage.OnComplete(ctx);
  EXPECT_EQ(ctx.finished.time_since_epoch(), milliseconds(10));
  EXPECT_EQ(ctx.decisions.size(), 0u);
}

}  // namespace
}  // namespace mcpmw::middleware
