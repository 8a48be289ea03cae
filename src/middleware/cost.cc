#include "src/middleware/cost.h"

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"

namespace mcpmw::middleware {
namespace {

using jsonrpc::MessageKind;

// The request of a tools/call exchange, or the answer to one. A notification that calls itself
// tools/call, or a server-to-client request, is not a metered call.
bool IsClientToolCall(const MessageContext& ctx) {
  if (!ctx.MethodIs("tools/call")) {
    return false;
  }
  if (ctx.envelope == nullptr) {
    // mcpmw ended the exchange (the server died, or the session closed) before any answer.
    return ctx.request_kind == MessageKind::kRequest;
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
  // A call that never reached the server cost nothing upstream.
  cost.usd = ctx.dispatched
                 ? price.request_base_fee_usd +
                       static_cast<double>(cost.input_tokens) * price.input_token_price_usd +
                       static_cast<double>(cost.output_tokens) * price.output_token_price_usd
                 : 0.0;
  if (metrics_ != nullptr) {
    Record(ctx);
  }
}

CostStage::Series& CostStage::SeriesFor(const MessageContext& ctx) {
  std::string_view tenant = ctx.principal.tenant;
  std::string_view user = ctx.principal.user;
  std::string_view tool = ctx.tool_name;
  key_scratch_.clear();
  key_scratch_.append(tenant).push_back('\0');
  key_scratch_.append(user).push_back('\0');
  key_scratch_.append(tool);
  if (auto it = series_.find(key_scratch_); it != series_.end()) {
    return it->second;
  }
  if (series_.size() >= kMaxCachedSeries) {
    series_.clear();  // the registry keeps the series; only the shortcuts are dropped
  }
  telemetry::Metrics& m = *metrics_;
  Series s;
  s.usd_tenant = &m.sum("mcpmw_cost_usd_total", {{"tenant", tenant}});
  s.usd_user = &m.sum("mcpmw_cost_usd_by_user_total", {{"tenant", tenant}, {"user", user}});
  s.usd_tool = &m.sum("mcpmw_cost_usd_by_tool_total", {{"tool", tool}});
  for (int d = 0; d < 2; ++d) {
    std::string_view direction = d == 0 ? "input" : "output";
    s.tokens[d][0] =
        &m.counter("mcpmw_tokens_total", {{"tenant", tenant}, {"direction", direction}});
    s.tokens[d][1] = &m.counter("mcpmw_tokens_by_user_total",
                                {{"tenant", tenant}, {"user", user}, {"direction", direction}});
    s.tokens[d][2] =
        &m.counter("mcpmw_tokens_by_tool_total", {{"tool", tool}, {"direction", direction}});
    s.calls[d] =
        &m.counter("mcpmw_metered_calls_total",
                   {{"tenant", tenant}, {"tool", tool}, {"dispatched", d == 1 ? "true" : "false"}});
  }
  return series_.emplace(key_scratch_, s).first->second;
}

void CostStage::Record(const MessageContext& ctx) {
  Series& s = SeriesFor(ctx);
  const CostRecord& cost = ctx.cost;
  s.usd_tenant->Add(cost.usd);
  s.usd_user->Add(cost.usd);
  s.usd_tool->Add(cost.usd);
  for (int d = 0; d < 2; ++d) {
    uint64_t tokens = d == 0 ? cost.input_tokens : cost.output_tokens;
    for (telemetry::Counter* c : s.tokens[d]) {
      c->Add(tokens);
    }
  }
  s.calls[ctx.dispatched ? 1 : 0]->Increment();
}

}  // namespace mcpmw::middleware
