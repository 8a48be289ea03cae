#include "src/middleware/cost.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/policy/bundle.h"
#include "src/telemetry/metrics.h"

namespace mcpmw::middleware {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const policy::Bundle> MustParse(std::string_view json) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle = policy::ParseBundle(json);
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  return bundle.ok() ? *bundle : std::make_shared<const policy::Bundle>();
}

constexpr std::string_view kPricedBundle = R"json({
  "bundleVersion": "cost-1",
  "pricing": {
    "requestBaseFeeUsd": 0.01, "inputTokenPriceUsd": 0.0001, "outputTokenPriceUsd": 0.0002,
    "tools": { "render": { "outputTokenPriceUsd": 0.001 } }
  }
})json";

// A completed exchange as OnComplete sees it: the response on its way back, or (for a blocked
// call) the request itself.
struct Exchange {
  std::string tenant = "acme";
  std::string user = "alice";
  std::string tool = "search";
  std::string method = "tools/call";
  bool dispatched = true;
  uint64_t request_bytes = 480;   // 120 tokens
  uint64_t response_bytes = 317;  // 80 tokens (79.25 rounded up)
  jsonrpc::MessageKind kind = jsonrpc::MessageKind::kResponse;
  Direction direction = Direction::kServerToClient;
  bool abandoned = false;  // mcpmw ended it without an answer: no envelope at OnComplete
};

class Harness {
 public:
  explicit Harness(std::string_view bundle_json, telemetry::Metrics* metrics = nullptr)
      : bundle_(MustParse(bundle_json)), stage_(*bundle_, metrics) {}

  const CostRecord& Complete(const Exchange& x = {}) {
    envelope_.kind = x.kind;
    ctx_ = MessageContext{};
    ctx_.direction = x.direction;
    ctx_.envelope = x.abandoned ? nullptr : &envelope_;
    ctx_.request_kind = x.direction == Direction::kClientToServer || x.abandoned
                            ? x.kind
                            : jsonrpc::MessageKind::kRequest;
    ctx_.invocation_id = "inv-1";
    ctx_.method = x.method;
    ctx_.tool_name = x.tool;
    ctx_.principal.tenant = x.tenant;
    ctx_.principal.user = x.user;
    ctx_.dispatched = x.dispatched;
    ctx_.request_bytes = x.request_bytes;
    ctx_.response_bytes = x.response_bytes;
    stage_.OnComplete(ctx_);
    return ctx_.cost;
  }

 private:
  std::shared_ptr<const policy::Bundle> bundle_;
  CostStage stage_;
  jsonrpc::Envelope envelope_;
  MessageContext ctx_;
};

TEST(EstimateTokens, IsBytesOverFourRoundedUp) {
  EXPECT_EQ(EstimateTokens(0), 0u);
  EXPECT_EQ(EstimateTokens(1), 1u);
  EXPECT_EQ(EstimateTokens(4), 1u);
  EXPECT_EQ(EstimateTokens(5), 2u);
  EXPECT_EQ(EstimateTokens(317), 80u);
  EXPECT_EQ(EstimateTokens(400), 100u);
}

TEST(CostStage, DeclaresWhatItReadsAndWrites) {
  policy::Bundle bundle;
  CostStage stage(bundle, nullptr);
  EXPECT_EQ(stage.name(), "cost");
  EXPECT_EQ(stage.reads(), Facts({Fact::kInvocation, Fact::kPrincipal, Fact::kUpstreamResult}));
  EXPECT_EQ(stage.writes(), Facts({Fact::kCost}));
}

TEST(CostStage, PricesADispatchedToolCallFromItsRequestAndResponseBytes) {
  Harness h(kPricedBundle);
  const CostRecord& cost = h.Complete();
  EXPECT_EQ(cost.input_tokens, 120u);
  EXPECT_EQ(cost.output_tokens, 80u);
  EXPECT_DOUBLE_EQ(cost.usd, 0.01 + 120 * 0.0001 + 80 * 0.0002);  // 0.038
}

TEST(CostStage, ChargesABlockedCallNothingButStillCountsItsInputTokens) {
  Harness h(kPricedBundle);
  const CostRecord& cost = h.Complete({.dispatched = false,
                                       .response_bytes = 200,  // mcpmw's own error reply
                                       .kind = jsonrpc::MessageKind::kRequest,
                                       .direction = Direction::kClientToServer});
  EXPECT_EQ(cost.input_tokens, 120u);
  EXPECT_EQ(cost.output_tokens, 0u);
  EXPECT_DOUBLE_EQ(cost.usd, 0.0);  // it never reached the server
}

TEST(CostStage, UsesAToolsOwnPricesOverTheDefaults) {
  Harness h(kPricedBundle);
  const CostRecord& cost = h.Complete({.tool = "render"});
  EXPECT_DOUBLE_EQ(cost.usd, 0.01 + 120 * 0.0001 + 80 * 0.001);
}

TEST(CostStage, AnErrorAnswerFromTheServerIsStillMetered) {
  Harness h(kPricedBundle);
  const CostRecord& cost = h.Complete({.kind = jsonrpc::MessageKind::kErrorResponse});
  EXPECT_EQ(cost.output_tokens, 80u);
  EXPECT_DOUBLE_EQ(cost.usd, 0.038);
}

TEST(CostStage, MetersACallMcpmwAbandonedAfterDispatchingIt) {
  telemetry::Metrics metrics;
  Harness h(kPricedBundle, &metrics);
  const CostRecord& cost = h.Complete({.response_bytes = 0,
                                       .kind = jsonrpc::MessageKind::kRequest,
                                       .direction = Direction::kClientToServer,
                                       .abandoned = true});
  EXPECT_EQ(cost.input_tokens, 120u);
  EXPECT_EQ(cost.output_tokens, 0u);
  EXPECT_DOUBLE_EQ(cost.usd, 0.01 + 120 * 0.0001);  // the server got the request
  EXPECT_THAT(
      metrics.RenderPrometheus(),
      HasSubstr(R"(mcpmw_metered_calls_total{dispatched="true",tenant="acme",tool="search"} 1)"));
}

TEST(CostStage, DoesNotMeterANotificationMcpmwEnded) {
  Harness h(kPricedBundle);
  const CostRecord& cost = h.Complete({.kind = jsonrpc::MessageKind::kNotification,
                                       .direction = Direction::kClientToServer,
                                       .abandoned = true});
  EXPECT_EQ(cost.input_tokens, 0u);
}

TEST(CostStage, DoesNotMeterOtherMethodsNotificationsOrServerRequests) {
  telemetry::Metrics metrics;
  Harness h(kPricedBundle, &metrics);
  for (const Exchange& x : {
           Exchange{.method = "tools/list"},
           Exchange{.method = "initialize"},
           Exchange{.kind = jsonrpc::MessageKind::kNotification,
           .direction = Direction::kClientToServer},
           Exchange{.kind = jsonrpc::MessageKind::kRequest,
           .direction = Direction::kServerToClient},
       }) {
    const CostRecord& cost = h.Complete(x);
    EXPECT_EQ(cost.input_tokens, 0u) << x.method;
    EXPECT_EQ(cost.output_tokens, 0u) << x.method;
    EXPECT_EQ(cost.usd, 0.0) << x.method;
  }
  EXPECT_EQ(metrics.RenderPrometheus(), "");
}

TEST(CostStage, WithoutPricingCountsTokensAtNoCost) {
  Harness h(R"({"bundleVersion":"free"})");
  const CostRecord& cost = h.Complete();
  EXPECT_EQ(cost.input_tokens, 120u);
  EXPECT_EQ(cost.output_tokens, 80u);
  EXPECT_EQ(cost.usd, 0.0);
}

TEST(CostStage, AddsToPerTenantPerUserAndPerToolTotals) {
  telemetry::Metrics metrics;
  Harness h(kPricedBundle, &metrics);
  h.Complete({.user = "alice"});                  // 0.038
  h.Complete({.user = "bob", .tool = "render"});  // 0.01 + 0.012 + 0.08 = 0.102
  h.Complete({.user = "bob",
              .dispatched = false,
              .kind = jsonrpc::MessageKind::kRequest,
              .direction = Direction::kClientToServer});  // blocked: 0
  h.Complete({.tenant = "beta", .user = "alice"});        // 0.038

  EXPECT_NEAR(metrics.sum("mcpmw_cost_usd_total", {{"tenant", "acme"}}).value(), 0.140, 1e-12);
  EXPECT_NEAR(metrics.sum("mcpmw_cost_usd_total", {{"tenant", "beta"}}).value(), 0.038, 1e-12);
  EXPECT_NEAR(
      metrics.sum("mcpmw_cost_usd_by_user_total", {{"tenant", "acme"}, {"user", "bob"}}).value(),
      0.102, 1e-12);
  EXPECT_NEAR(metrics.sum("mcpmw_cost_usd_by_tool_total", {{"tool", "search"}}).value(), 0.076,
              1e-12);
  EXPECT_NEAR(metrics.sum("mcpmw_cost_usd_by_tool_total", {{"tool", "render"}}).value(), 0.102,
              1e-12);

  EXPECT_EQ(
      metrics.counter("mcpmw_tokens_total", {{"tenant", "acme"}, {"direction", "input"}}).value(),
      360u);
  EXPECT_EQ(
      metrics.counter("mcpmw_tokens_total", {{"tenant", "acme"}, {"direction", "output"}}).value(),
      160u);
  EXPECT_EQ(metrics
                .counter("mcpmw_tokens_by_user_total",
                         {{"tenant", "acme"}, {"user", "bob"}, {"direction", "output"}})
                .value(),
            80u);
  EXPECT_EQ(
      metrics.counter("mcpmw_tokens_by_tool_total", {{"tool", "search"}, {"direction", "input"}})
          .value(),
      360u);
  EXPECT_EQ(metrics
                .counter("mcpmw_metered_calls_total",
                         {{"tenant", "acme"}, {"tool", "search"}, {"dispatched", "true"}})
                .value(),
            1u);
  EXPECT_EQ(metrics
                .counter("mcpmw_metered_calls_total",
                         {{"tenant", "acme"}, {"tool", "search"}, {"dispatched", "false"}})
                .value(),
            1u);

  std::string text = metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# HELP mcpmw_cost_usd_total Estimated upstream cost of tool calls "
                              "in USD.\n# TYPE mcpmw_cost_usd_total counter\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_cost_usd_total{tenant=\"beta\"} 0.038\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_tokens_total{direction=\"output\",tenant=\"beta\"} 80\n"));
}

}  // namespace
}  // namespace mcpmw::middleware
