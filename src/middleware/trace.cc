#include "src/middleware/trace.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"

namespace mcpmw::middleware {
namespace {

constexpr std::string_view kKnownMethods[] = {
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
};

std::string_view MethodLabel(std::string_view method) {
  return std::find(std::begin(kKnownMethods), std::end(kKnownMethods), method) !=
                 std::end(kKnownMethods)
             ? method
             : "other";
}

}  // namespace

std::string_view ExchangeOutcome(const MessageContext& ctx) {
  bool rejected = ctx.outcome.kind == Verdict::Kind::kReject;
  if (rejected && !ctx.dispatched) {
    return "blocked";
  }
  return rejected || ctx.upstream_error ? "errored" : "served";
}

TraceStage::MethodSeries& TraceStage::For(std::string_view method) {
  std::string_view label = MethodLabel(method);
  auto it = by_method_.find(Sv(label));
  if (it != by_method_.end()) {
    return it->second;
  }
  MethodSeries s;
  s.served = &metrics_->counter("mcpmw_requests_total", {{"method", label}, {"outcome", "served"}});
  s.blocked =
      &metrics_->counter("mcpmw_requests_total", {{"method", label}, {"outcome", "blocked"}});
  s.errored =
      &metrics_->counter("mcpmw_requests_total", {{"method", label}, {"outcome", "errored"}});
  s.latency = &metrics_->histogram("mcpmw_request_latency_us", {{"method", label}});
  return by_method_.emplace(std::string(label), s).first->second;
}

void TraceStage::OnComplete(MessageContext& ctx) {
  if (metrics_ == nullptr) {
    return;
  }
  if (last_series_.served == nullptr || std::string_view(ctx.method) != last_method_) {
    last_series_ = For(ctx.method);
    last_method_ = ctx.method;
  }
  MethodSeries& s = last_series_;
  std::string_view outcome = ExchangeOutcome(ctx);
  (outcome == "served" ? s.served : outcome == "blocked" ? s.blocked : s.errored)->Increment();
  if (ctx.finished > ctx.started) {
    s.latency->Observe(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(ctx.finished - ctx.started).count()));
  }
  if (hints_.size() < ctx.decisions.size()) {
    hints_.resize(ctx.decisions.size(), nullptr);
  }
  for (size_t k = 0; k < ctx.decisions.size(); ++k) {
    const Decision& d = ctx.decisions[k];
    // Stage names and statuses are static strings: the same row has the same pointers, so the
    // bytes are compared only when those differ.
    auto same_text = [](std::string_view a, std::string_view b) {
      return a.size() == b.size() && (a.data() == b.data() || a == b);
    };
    auto same = [&](const DecisionSeries& ds) {
      return ds.enforced == d.enforced && same_text(ds.stage, d.stage) &&
             same_text(ds.status, d.status);
    };
    DecisionSeries* found = hints_[k] != nullptr && same(*hints_[k]) ? hints_[k] : nullptr;
    for (size_t j = 0; found == nullptr && j < decisions_.size(); ++j) {
      if (same(decisions_[j])) {
        found = &decisions_[j];
      }
    }
    if (found == nullptr) {
      telemetry::Counter* c = &metrics_->counter(
          "mcpmw_decisions_total",
          {{"stage", d.stage}, {"status", d.status}, {"enforced", d.enforced ? "true" : "false"}});
      found = &decisions_.emplace_back(DecisionSeries{d.stage, d.status, d.enforced, c});
    }
    hints_[k] = found;
    found->counter->Increment();
  }
}

}  // namespace mcpmw::middleware
