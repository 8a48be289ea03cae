// mcpmw middleware: the `quota` stage — per-tenant quotas (bundle `tenants`, README "Tenant
// quotas").
//
// Sixth in the chain (…, tool_filter, rate_limit, quota, request_redaction, …). Where
// rate_limit protects servers from bursts with rules of any shape, quota is the tenant's
// contract: how much of the gateway one tenant may use. It governs what the cost stage meters,
// client requests with method `tools/call`, against the tenant's quotas (Bundle::QuotaFor: its own
// entry, each missing quota taken from "*"):
//
//   callsPerMinute       a sliding window of 60 one-second slots on the clock's time axis (the
//                        slots are aligned to whole seconds, not to a tenant's first call). A
//                        call is admitted while the calls counted in the current slot and the 59
//                        before it are fewer than the limit, so no 60 s span ever admits more than
//                        the limit plus what one second at its edge held, and memory is 60
//                        counters per tenant whatever the limit. Refused: retry when enough old
//                        slots have left the window (0: every call is refused; retry when the
//                        current second leaves the window).
//   costBudgetUsdPerDay  the USD the cost stage computed for the tenant's completed calls, summed
//                        per UTC day of the wall clock (days since the Unix epoch). A call that
//                        arrives while the day's spend is at or above the budget is refused until
//                        00:00 UTC. The budget is checked when a call arrives and charged when it
//                        completes, so calls already in flight when it runs out still complete and
//                        are charged: the spend can pass the budget by their cost.
//   concurrentSessions   not per message: the gateway asks TenantSessions when a session opens.
//
// Both counters are checked before either is charged, and only an admitted call is counted, so a
// refused call costs the tenant nothing. When both refuse, the one that frees up last is reported.
// The refusal is -32013, the rate_limit code, so a client that backs off for retryAfterMs on that
// code handles quotas unchanged; `stage` tells the two apart:
//
//   data = {"stage":"quota","reasonCode":"tenant-quota","decisionId":"<inv>:quota",
//           "retryAfterMs":N,"reason":"tenant-quota",
//           "quota":"callsPerMinute"|"costBudgetUsdPerDay","tenant":…[,"spentUsd":x,"budgetUsd":y]}
//
// Decisions: a refused call adds {quota, deny, tenant-quota}; an admitted call adds
// {quota, allow, tenant-quota:allowed} when a calls or cost quota applied, and nothing otherwise.
// In observe mode the refusal is computed, recorded (enforced: false) and counted, and the call
// goes on uncounted, as rate_limit does.
//
// Spend is known only once the cost stage has run its OnComplete, which comes after this stage's
// (OnComplete runs in chain order). So the stage has two parts built over one QuotaState:
// QuotaStage answers requests after rate_limit, and QuotaSpendStage, placed right after `cost`,
// adds each completed call's ctx.cost.usd to its tenant's day. Both are named "quota".
//
// Metrics (with a registry): mcpmw_quota_rejections_total{tenant,quota} counts refusals, observed
// ones included (observe mode is there to count what enforcing would refuse). The day's spend is
// not exported: it goes down at midnight, and the registry has no gauge; the cost stage's
// mcpmw_cost_usd_total{tenant} is the running total.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "src/common/clock.h"
#include "src/middleware/stage.h"
#include "src/telemetry/metrics.h"

namespace mcpmw::middleware {

// The wall clock the cost budget's UTC day is read from. Clock (src/common/clock.h) is steady
// time with no calendar, so the day comes from here, as the audit sink's timestamps do. Empty:
// std::chrono::system_clock.
using WallClock = std::function<std::chrono::system_clock::time_point()>;

// Per tenant: the calls window and the day's spend. Owned by the session (the gateway: by the
// reactor, so every session of a tenant on it shares one budget), not by the stage, so a reload
// keeps everybody's counts; a quota changed by the reload applies to the running counts.
//
// Memory is bounded by the tenants that are live: an entry whose window is empty and whose spend
// is from an earlier day carries nothing and is dropped by a sweep, which runs when the map
// reaches twice the size the previous sweep left (and at least the threshold), amortised O(1).
//
// Threading: one per reactor (or per session); not thread-safe, no locks, no atomics. Counts on
// one reactor are not seen by another (ARCHITECTURE.md §9: shared counters are a later step).
class QuotaState {
 public:
  static constexpr size_t kDefaultSweepThreshold = 1024;
  static constexpr int64_t kSlots = 60;  // one-second slots in the callsPerMinute window
  // No sweep runs while the map holds fewer than `sweep_threshold` entries.
  explicit QuotaState(size_t sweep_threshold = kDefaultSweepThreshold);

  // Tenants with an entry (including ones the next sweep will drop).
  size_t size() const { return tenants_.size(); }
  // What `tenant` has spent on the UTC day of `now`, as charged so far.
  double SpentUsd(std::string_view tenant, std::chrono::system_clock::time_point now) const;

 private:
  friend class QuotaStage;
  friend class QuotaSpendStage;

  struct Tenant {
    std::array<uint32_t, kSlots> slots{};  // admitted calls; slot s at index s mod kSlots
    int64_t last_slot = std::numeric_limits<int64_t>::min();  // the newest slot described
    uint64_t in_window = 0;                                   // the sum of `slots`
    int64_t spend_day = std::numeric_limits<int64_t>::min();  // UTC days since the epoch
    double spend_usd = 0;                                     // on spend_day

    // Empties the slots that left the window by `slot` (seconds on the clock's axis).
    void Advance(int64_t slot);
    double SpentOn(int64_t day) const { return spend_day == day ? spend_usd : 0; }
  };

  Tenant& Get(std::string_view tenant, int64_t slot, int64_t day);
  void MaybeSweep(int64_t slot, int64_t day);

  absl::flat_hash_map<std::string, Tenant> tenants_;
  size_t sweep_threshold_;
  size_t next_sweep_at_;
};

// The request half: admits or refuses tools/call requests.
class QuotaStage final : public Stage {
 public:
  // `bundle`, `clock`, `state` and `metrics` must outlive the stage. `state` may be null only
  // when the bundle sets no quota (BuildChain checks); `metrics` may be null.
  QuotaStage(const policy::Bundle& bundle, const Clock& clock, WallClock wall_clock,
             QuotaState* state, telemetry::Metrics* metrics);

  std::string_view name() const override { return "quota"; }
  FactSet reads() const override { return Facts({Fact::kInvocation, Fact::kPrincipal}); }
  uint8_t hooks() const override { return kOnRequest; }

  Verdict OnRequest(MessageContext& ctx) override;

 private:
  const policy::Bundle& bundle_;
  const Clock& clock_;
  WallClock wall_clock_;
  QuotaState* state_;
  telemetry::Metrics* metrics_;
};

// The accounting half, right after `cost`: charges each completed call's cost to its tenant's
// UTC day when the tenant has a cost budget.
class QuotaSpendStage final : public Stage {
 public:
  // `bundle`, `clock` and `state` (null only when the bundle sets no quota) must outlive the
  // stage.
  QuotaSpendStage(const policy::Bundle& bundle, const Clock& clock, WallClock wall_clock,
                  QuotaState* state);

  std::string_view name() const override { return "quota"; }
  FactSet reads() const override { return Facts({Fact::kPrincipal, Fact::kCost}); }
  uint8_t hooks() const override { return 0; }

  void OnComplete(MessageContext& ctx) override;

 private:
  const policy::Bundle& bundle_;
  const Clock& clock_;
  WallClock wall_clock_;
  QuotaState* state_;
};

// Open sessions per tenant, against `concurrentSessions`. The gateway calls TryOpen when a
// session opens (before any message) and Close when it ends. Counts every tenant's sessions,
// limited or not, so a limit that a reload introduces applies to what is already open (sessions
// over a lowered limit stay; new ones wait until the count is below it).
//
// Threading: single-threaded; the gateway keeps one where sessions are admitted.
class TenantSessions {
 public:
  // Counts a new session of `tenant`, or ResourceExhausted naming the tenant and its limit when
  // it already has that many open (the session must then be refused, and not Closed).
  absl::Status TryOpen(const policy::Bundle& bundle, std::string_view tenant);
  // One session of `tenant` that TryOpen admitted has ended. An unmatched Close is ignored.
  void Close(std::string_view tenant);
  // Sessions of `tenant` open now.
  uint32_t open(std::string_view tenant) const;

 private:
  absl::flat_hash_map<std::string, uint32_t> open_;
};

}  // namespace mcpmw::middleware
