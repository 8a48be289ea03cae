#include "src/middleware/chain_factory.h"

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
using test_support::Frame;
using test_support::Reports;
using test_support::Session;
using test_support::StageIndex;
using ::testing::HasSubstr;

using std::chrono::milliseconds;

constexpr std::string_view kResult = R"({"jsonrpc":"2.0","id":1,"result":{}})";

std::string Call(std::string_view tool, std::string_view arguments = "{}") {
  return std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":")") +
         std::string(tool) + R"(","arguments":)" + std::string(arguments) + "}}";
}

TEST(BuildChain, BuildsTheStagesInOrderWithQuotaSpendAfterCost) {
  Session s(R"({"bundleVersion":"v"})");
  ASSERT_NE(s.snapshot, nullptr);
  const Chain& chain = s.snapshot->chain;
  // kStageNames in order, plus the quota stage's spend half between cost and report.
  std::vector<std::string_view> expected(std::begin(policy::kStageNames),
                                         std::end(policy::kStageNames));
  expected.insert(expected.end() - 1, "quota");
  ASSERT_EQ(chain.size(), 13u);
  ASSERT_EQ(chain.size(), expected.size());
  for (size_t i = 0; i < chain.size(); ++i) {
    EXPECT_EQ(chain.stage_name(i), expected[i]) << i;
  }
  EXPECT_EQ(chain.stage_name(0), "normalize");
  EXPECT_EQ(chain.stage_name(5), "quota");
  EXPECT_EQ(chain.stage_name(11), "quota");
  EXPECT_EQ(chain.stage_name(12), "report");
  EXPECT_EQ(s.snapshot->bundle->version, "v");
}

TEST(BuildChain, RefusesMissingDependencies) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle =
      policy::ParseBundle(R"({"bundleVersion":"v"})");
  ASSERT_TRUE(bundle.ok());
  ManualClock clock;
  RateLimitState state;
  uint64_t sequence = 1;
  ChainDeps deps{.sequence = &sequence, .clock = &clock, .rate_state = &state};
  EXPECT_TRUE(BuildChain(*bundle, deps).ok());
  ChainDeps no_sequence = deps;
  no_sequence.sequence = nullptr;
  EXPECT_EQ(BuildChain(*bundle, no_sequence).status().code(), absl::StatusCode::kInvalidArgument);
  ChainDeps no_clock = deps;
  no_clock.clock = nullptr;
  EXPECT_EQ(BuildChain(*bundle, no_clock).status().code(), absl::StatusCode::kInvalidArgument);
  ChainDeps no_state = deps;
  no_state.rate_state = nullptr;
  EXPECT_EQ(BuildChain(*bundle, no_state).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildChain(nullptr, deps).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BuildChain, RunsWithoutMetricsOrReportSink) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle =
      policy::ParseBundle(R"({"bundleVersion":"v","pricing":{"requestBaseFeeUsd":1}})");
  ASSERT_TRUE(bundle.ok());
  ManualClock clock;
  RateLimitState state;
  uint64_t sequence = 1;
  absl::StatusOr<std::shared_ptr<ChainSnapshot>> snap = BuildChain(
      *bundle, {.session_id = "x", .sequence = &sequence, .clock = &clock, .rate_state = &state});
  ASSERT_TRUE(snap.ok());
  Frame request(Call("t"));
  MessageContext ctx{.envelope = &request.envelope(), .payload = request.view()};
  EXPECT_TRUE((*snap)->chain.OnRequest(ctx).IsContinue());
  (*snap)->chain.OnComplete(ctx);
  EXPECT_EQ(ctx.invocation_id, "x-1");
  EXPECT_TRUE(ctx.dispatched);
  EXPECT_DOUBLE_EQ(ctx.cost.usd, 1.0);  // the base fee; no token prices
}

constexpr std::string_view kTenantObserve = R"({"bundleVersion":"v",
  "tenants":{"acme":{"mode":"observe"}},
  "policyRules":[{"ruleId":"no-force","status":"deny","conditionDsl":"args.force == true"}]})";

TEST(BuildChain, AppliesTheTenantsObserveMode) {
  Session acme(kTenantObserve, "acme");
  const std::string request = Call("rm", R"({"force":true})");
  auto observed = acme.Call(request, kResult);
  EXPECT_TRUE(observed->request_verdict.IsContinue());
  EXPECT_EQ(observed->forwarded, request);
  ASSERT_FALSE(observed->ctx.decisions.empty());
  EXPECT_EQ(observed->ctx.decisions[0].stage, "policy");
  EXPECT_FALSE(observed->ctx.decisions[0].enforced);
  size_t policy = StageIndex(acme.snapshot->chain, "policy");
  EXPECT_EQ(acme.snapshot->chain.counters(policy).observed, 1u);

  Session globex(kTenantObserve, "globex");
  auto enforced = globex.Call(request, kResult);
  EXPECT_EQ(enforced->request_verdict.code, kCodePolicyDenied);
  EXPECT_EQ(globex.snapshot->chain.counters(policy).rejected, 1u);
}

TEST(BuildChain, KeepsInvocationIdsUniqueAcrossARebuild) {
  Session s(R"({"bundleVersion":"v1"})", "", Reports::kCollect);
  s.Call(Call("t"), kResult);
  s.Load(R"({"bundleVersion":"v2"})");
  s.Call(Call("t"), kResult);
  EXPECT_EQ(s.snapshot->bundle->version, "v2");
  ASSERT_EQ(s.reports.size(), 2u);
  EXPECT_THAT(s.reports[0], HasSubstr(R"("invocationId":"s-1","bundleVersion":"v1")"));
  EXPECT_THAT(s.reports[1], HasSubstr(R"("invocationId":"s-2","bundleVersion":"v2")"));
}

TEST(BuildChain, KeepsRateLimitCountersAcrossARebuild) {
  constexpr std::string_view kLimit = R"({"bundleVersion":"v1","rateLimitRules":[
      {"ruleId":"one-a-minute","limit":1,"windowSeconds":60}]})";
  Session s(kLimit);
  auto first = s.Call(Call("t"), kResult, milliseconds(10));
  EXPECT_TRUE(first->request_verdict.IsContinue());
  s.Load(R"({"bundleVersion":"v2","rateLimitRules":[
      {"ruleId":"one-a-minute","limit":1,"windowSeconds":60}]})");
  auto second = s.Call(Call("t"), kResult);
  EXPECT_EQ(second->request_verdict.code, kCodeRateLimited);
  EXPECT_EQ(second->ctx.rate.rule_id, "one-a-minute");
  EXPECT_EQ(second->ctx.rate.retry_after_ms, 59990u);
}

TEST(BuildChain, AnExchangeFinishesOnTheSnapshotItStartedUnder) {
  Session s(R"({"bundleVersion":"old","redactionRules":[
      {"ruleId":"mail","direction":"response","detector":"email"}]})",
            "", Reports::kCollect);
  std::shared_ptr<ChainSnapshot> pinned = s.snapshot;
  std::unique_ptr<Exchange> ex = s.Begin(Call("t"));
  s.Load(R"({"bundleVersion":"new"})");
  // The session answers the in-flight exchange on its own snapshot, as governance.cc does.
  std::shared_ptr<ChainSnapshot> current = s.snapshot;
  s.snapshot = pinned;
  s.Respond(*ex, R"({"jsonrpc":"2.0","id":1,"result":{"t":"a@example.com"}})");
  s.snapshot = current;
  EXPECT_EQ(ex->returned, R"({"jsonrpc":"2.0","id":1,"result":{"t":"[EMAIL_REDACTED]"}})");
  ASSERT_EQ(s.reports.size(), 1u);
  EXPECT_NE(s.reports[0].find(R"("bundleVersion":"old")"), std::string::npos);
}

}  // namespace
}  // namespace mcpmw::middleware
