// mcpmw middleware: building the governance chain for one bundle snapshot.
//
//   normalize, auth, policy, tool_filter, rate_limit, quota, request_redaction, dispatch,
//   response_redaction, trace, cost, quota (its accounting half, src/middleware/quota.h), report
//
// Called off the message path whenever a bundle is loaded: every stage is configured from the
// bundle and gets its mode for the tenant (Bundle::ModeFor), and the chain is validated
// (Chain::Build). State that must outlive a reload — rate-limit counters, quota counters, the
// invocation sequence, metrics — is owned by the caller and passed in.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "src/common/clock.h"
#include "src/middleware/chain.h"
#include "src/middleware/quota.h"
#include "src/middleware/rate_limit.h"
#include "src/middleware/report.h"
#include "src/telemetry/metrics.h"

namespace mcpmw::middleware {

struct ChainDeps {
  std::string session_id;        // prefixes invocation ids
  uint64_t* sequence = nullptr;  // the next invocation number; shared across reloads
  const Clock* clock = nullptr;  // rate windows, latencies
  RateLimitState* rate_state = nullptr;
  telemetry::Metrics* metrics = nullptr;  // may be null
  ReportSink report;                      // may be empty: no reports
  std::string tenant;                     // the tenant whose modes apply
  // Tenant quota counters. May be null only for a bundle that sets no quota (BuildChain refuses
  // one that does: its quotas would silently not apply).
  QuotaState* quota_state = nullptr;
  WallClock wall_clock;  // the cost budget's UTC day; empty: the system clock
};

// A chain together with the bundle its stages point into: a session keeps this alive for as
// long as an exchange that started under it is in flight.
struct ChainSnapshot {
  std::shared_ptr<const policy::Bundle> bundle;
  Chain chain;
};

absl::StatusOr<std::shared_ptr<ChainSnapshot>> BuildChain(
    std::shared_ptr<const policy::Bundle> bundle, const ChainDeps& deps);

}  // namespace mcpmw::middleware
