#include "src/middleware/chain_factory.h"

#include "src/middleware/auth.h"
#include "src/middleware/cost.h"
#include "src/middleware/dispatch.h"
#include "src/middleware/normalize.h"
#include "src/middleware/policy.h"
#include "src/middleware/request_redaction.h"
#include "src/middleware/response_redaction.h"
#include "src/middleware/tool_filter.h"
#include "src/middleware/trace.h"

namespace mcpmw::middleware {

absl::StatusOr<std::shared_ptr<ChainSnapshot>> BuildChain(
    std::shared_ptr<const policy::Bundle> bundle, const ChainDeps& deps) {
  if (bundle == nullptr || deps.sequence == nullptr || deps.clock == nullptr ||
      deps.rate_state == nullptr) {
    return absl::InvalidArgumentError("BuildChain needs a bundle, a sequence, a clock and state");
  }
  const policy::Bundle& b = *bundle;
  if (deps.quota_state == nullptr && b.HasQuotas()) {
    return absl::InvalidArgumentError(
        "bundle sets tenant quotas (tenants.<t>.callsPerMinute, …) but the session keeps no "
        "quota counters: pass ChainDeps::quota_state");
  }
  std::vector<std::unique_ptr<Stage>> stages;
  stages.push_back(std::make_unique<NormalizeStage>(deps.session_id, deps.sequence));
  stages.push_back(std::make_unique<AuthStage>(b));
  stages.push_back(std::make_unique<PolicyStage>(b));
  stages.push_back(std::make_unique<ToolFilterStage>(b));
  stages.push_back(std::make_unique<RateLimitStage>(b, *deps.clock, deps.rate_state));
  stages.push_back(std::make_unique<QuotaStage>(b, *deps.clock, deps.wall_clock, deps.quota_state,
                                                deps.metrics));
  stages.push_back(std::make_unique<RequestRedactionStage>(b));
  stages.push_back(std::make_unique<DispatchStage>(*deps.clock));
  stages.push_back(std::make_unique<ResponseRedactionStage>(b));
  stages.push_back(std::make_unique<TraceStage>(deps.metrics));
  stages.push_back(std::make_unique<CostStage>(b, deps.metrics));
  // The cost of a call is known only after cost's OnComplete: quota charges it here.
  stages.push_back(
      std::make_unique<QuotaSpendStage>(b, *deps.clock, deps.wall_clock, deps.quota_state));
  stages.push_back(std::make_unique<ReportStage>(b, deps.report));
  std::vector<Chain::Entry> entries;
  for (std::unique_ptr<Stage>& s : stages) {
    Mode mode = b.ModeFor(s->name(), deps.tenant);
    entries.push_back({.stage = std::move(s), .mode = mode});
  }
  absl::StatusOr<Chain> chain = Chain::Build(std::move(entries));
  if (!chain.ok()) {
    return chain.status();
  }
  return std::make_shared<ChainSnapshot>(
      ChainSnapshot{.bundle = std::move(bundle), .chain = *std::move(chain)});
}

}  // namespace mcpmw::middleware
