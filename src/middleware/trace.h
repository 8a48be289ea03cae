// mcpmw middleware: the `trace` stage.
//
// Counts every completed exchange and its latency, and every decision a stage recorded, into the
// reactor's metrics registry (src/telemetry/metrics.h):
//
//   mcpmw_requests_total{method,outcome=served|blocked|errored}   Counter
//   mcpmw_request_latency_us{method}                               Histogram (arrival → answer)
//   mcpmw_decisions_total{stage,status,enforced=true|false}        Counter
//
// Methods are the request's own name for the MCP methods and "other" for anything else, so a
// client inventing method names cannot grow the registry. Series are looked up once and cached.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "src/middleware/stage.h"
#include "src/telemetry/metrics.h"

namespace mcpmw::middleware {

class TraceStage final : public Stage {
 public:
  explicit TraceStage(telemetry::Metrics* metrics) : metrics_(metrics) {}

  std::string_view name() const override { return "trace"; }
  FactSet reads() const override { return Facts({Fact::kInvocation, Fact::kUpstreamResult}); }
  FactSet writes() const override { return Facts({Fact::kTrace}); }
  uint8_t hooks() const override { return 0; }

  void OnComplete(MessageContext& ctx) override;

 private:
  struct MethodSeries {
    telemetry::Counter* served = nullptr;
    telemetry::Counter* blocked = nullptr;
    telemetry::Counter* errored = nullptr;
    telemetry::Histogram* latency = nullptr;
  };
  MethodSeries& For(std::string_view method);

  telemetry::Metrics* metrics_;
  absl::flat_hash_map<std::string, MethodSeries> by_method_;
  // The last method's series: a session mostly calls one method after another.
  std::string last_method_;
  MethodSeries last_series_;
  // Stages record a handful of (stage, status) pairs: a short list beats hashing a built key.
  struct DecisionSeries {
    std::string_view stage;   // a stage's name(): static for the stage's life
    std::string_view status;  // a literal, as in Decision
    bool enforced = true;
    telemetry::Counter* counter = nullptr;
  };
  std::deque<DecisionSeries> decisions_;
  // hints_[k]: the series the k-th decision of the previous exchange counted on (checked before
  // use; exchanges of one kind record the same rows in the same order).
  std::vector<DecisionSeries*> hints_;
};

// "served", "blocked" or "errored": how an exchange ended (also the report's `outcome`).
std::string_view ExchangeOutcome(const MessageContext& ctx);

}  // namespace mcpmw::middleware
