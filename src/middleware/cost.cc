#include "src/middleware/cost.h"

namespace mcpmw::middleware {
namespace {

using jsonrpc::MessageKind;

// The request of a tools/call exchange, or the answer to one. A notification that calls itself
// tools/call, or a server-to-client request, is not a metered call.
bool IsClientToolCall(const MessageContext& ctx) {
  if (ctx.method != "tools/call" || ctx.envelope == nullptr) {
    return false;
  }
  MessageKind kind = ctx.envelope->kind;
  if (ctx.direction == Direction::kClientToServer) {
    return kind == MessageKind::kRequest;
  }
  return kind == MessageKind::kResponse || kind == MessageKind::kErrorResponse;
}

}  // namespace

uint64_t EstimateTokens(uint64_t bytes) { return bytes / 4 + (bytes % 4 != 0 ? 1 : 0); }

CostStage::CostStage(const policy::Bundle& bundle, telemetry::Metrics* metrics)
    : bundle_(bundle), metrics_(metrics) {
  if (metrics_ == nullptr) {
    return;
  }
  metrics_->Describe("mcpmw_cost_usd_total", "Estimated upstream cost of tool calls in USD.");
  metrics_->Describe("mcpmw_cost_usd_by_user_total",
                     "Estimated upstream cost of tool calls in USD, per user.");
  metrics_->Describe("mcpmw_cost_usd_by_tool_total",
                     "Estimated upstream cost of tool calls in USD, per tool.");
  metrics_->Describe("mcpmw_tokens_total", "Estimated tokens of tool calls (bytes / 4).");
  metrics_->Describe("mcpmw_tokens_by_user_total",
                     "Estimated tokens of tool calls (bytes / 4), per user.");
  metrics_->Describe("mcpmw_tokens_by_tool_total",
                     "Estimated tokens of tool calls (bytes / 4), per tool.");
  metrics_->Describe("mcpmw_metered_calls_total",
                     "Tool calls metered by the cost stage, dispatched or blocked.");
}

void CostStage::OnComplete(MessageContext& ctx) {
  ctx.cost = {};
  if (!IsClientToolCall(ctx)) {
    return;
  }
  const policy::Price& price = bundle_.pricing.For(ctx.tool_name);
  CostRecord& cost = ctx.cost;
  cost.input_tokens = EstimateTokens(ctx.request_bytes);
  cost.output_tokens = ctx.dispatched ? EstimateTokens(ctx.response_bytes) : 0;
  cost.usd = (ctx.dispatched ? price.request_base_fee_usd : 0.0) +
             static_cast<double>(cost.input_tokens) * price.input_token_price_usd +
             static_cast<double>(cost.output_tokens) * price.output_token_price_usd;
  if (metrics_ != nullptr) {
    Record(ctx);
  }
}

void CostStage::Record(const MessageContext& ctx) {
  std::string_view tenant = ctx.principal.tenant;
  std::string_view user = ctx.principal.user;
  std::string_view tool = ctx.tool_name;
  const CostRecord& cost = ctx.cost;
  telemetry::Metrics& m = *metrics_;
  m.sum("mcpmw_cost_usd_total", {{"tenant", tenant}}).Add(cost.usd);
  m.sum("mcpmw_cost_usd_by_user_total", {{"tenant", tenant}, {"user", user}}).Add(cost.usd);
  m.sum("mcpmw_cost_usd_by_tool_total", {{"tool", tool}}).Add(cost.usd);
  for (auto [direction, tokens] : {std::pair{std::string_view("input"), cost.input_tokens},
                                   std::pair{std::string_view("output"), cost.output_tokens}}) {
    m.counter("mcpmw_tokens_total", {{"tenant", tenant}, {"direction", direction}}).Add(tokens);
    m.counter("mcpmw_tokens_by_user_total",
              {{"tenant", tenant}, {"user", user}, {"direction", direction}})
        .Add(tokens);
    m.counter("mcpmw_tokens_by_tool_total", {{"tool", tool}, {"direction", direction}}).Add(tokens);
  }
  m.counter("mcpmw_metered_calls_total",
            {{"tenant", tenant}, {"tool", tool}, {"dispatched", ctx.dispatched ? "true" : "false"}})
      .Increment();
}

}  // namespace mcpmw::middleware
