// mcpmw middleware: the `cost` stage.
//
// Tenth in the chain (…, dispatch, response_redaction, trace, cost, report). It does its work in
// OnComplete, which runs for every exchange whatever happened, because the size of the answer is
// only known once the exchange is over. It meters tool calls: client requests with method
// `tools/call`. Every other message (tools/list, initialize, notifications, server-to-client
// requests) is not metered: ctx.cost stays {0, 0, 0} and no metric moves, so the call counter
// below counts tool calls and nothing else.
//
//   tokens  estimated from bytes as ceil(bytes / 4), the usual rule of thumb for JSON and
//           English text (tokenizers average 3.5–4.5 bytes per token on such input; mcpmw does
//           not know the model, so an exact count is not possible here):
//             input  = EstimateTokens(ctx.request_bytes)   (the request as forwarded)
//             output = EstimateTokens(ctx.response_bytes)  when ctx.dispatched, else 0
//   usd     base fee + input × inputTokenPriceUsd + output × outputTokenPriceUsd, with the
//           prices of `pricing.tools[<tool>]` over the bundle's defaults (Pricing::For). The base
//           fee is charged only when ctx.dispatched: a blocked call costs nothing upstream (the
//           prototype charged it anyway). Input tokens are priced either way: they are what the
//           caller sent and what the caller is accounted for.
//
// With a metrics registry, each metered call adds to (src/telemetry/metrics.h has the list):
//   mcpmw_cost_usd_total{tenant}  mcpmw_cost_usd_by_user_total{tenant,user}
//   mcpmw_cost_usd_by_tool_total{tool}
//   mcpmw_tokens_total{tenant,direction}  mcpmw_tokens_by_user_total{tenant,user,direction}
//   mcpmw_tokens_by_tool_total{tool,direction}   (direction = input | output)
//   mcpmw_metered_calls_total{tenant,tool,dispatched=true|false}
// Tool names come from the client; the registry's per-family series cap bounds what an
// invented name can cost in memory.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "src/middleware/stage.h"
#include "src/telemetry/metrics.h"

namespace mcpmw::middleware {

// ceil(bytes / 4): see the banner above.
uint64_t EstimateTokens(uint64_t bytes);

class CostStage final : public Stage {
 public:
  // `bundle` and `metrics` (null: no metrics) must outlive the stage; `metrics` belongs to the
  // stage's reactor.
  CostStage(const policy::Bundle& bundle, telemetry::Metrics* metrics);

  std::string_view name() const override { return "cost"; }
  FactSet reads() const override {
    return Facts({Fact::kInvocation, Fact::kPrincipal, Fact::kUpstreamResult});
  }
  FactSet writes() const override { return Facts({Fact::kCost}); }
  uint8_t hooks() const override { return 0; }

  void OnComplete(MessageContext& ctx) override;

 private:
  // The series one (tenant, user, tool) updates, looked up once and cached.
  struct Series {
    telemetry::Sum* usd_tenant = nullptr;
    telemetry::Sum* usd_user = nullptr;
    telemetry::Sum* usd_tool = nullptr;
    telemetry::Counter* tokens[2][3] = {};  // [input|output][total|by user|by tool]
    telemetry::Counter* calls[2] = {};      // [blocked|dispatched]
  };
  static constexpr size_t kMaxCachedSeries = 4096;
  Series& SeriesFor(const MessageContext& ctx);
  void Record(const MessageContext& ctx);

  const policy::Bundle& bundle_;
  telemetry::Metrics* metrics_;
  absl::flat_hash_map<std::string, Series> series_;
  std::string key_scratch_;
};

}  // namespace mcpmw::middleware
