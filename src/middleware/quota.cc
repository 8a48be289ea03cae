#include "src/middleware/quota.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "src/common/strings.h"
#include "src/jsonrpc/errors.h"
#include "src/middleware/message_edit.h"

namespace mcpmw::middleware {
namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kMsPerDay = 86'400'000;
constexpr std::string_view kReason = "tenant-quota";

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

size_t SlotIndex(int64_t slot) {
  // Slots before the clock's epoch (never on a steady clock) would still land in range.
  int64_t index = slot % QuotaState::kSlots;
  return static_cast<size_t>(index < 0 ? index + QuotaState::kSlots : index);
}

int64_t NowNs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock.Now().time_since_epoch())
      .count();
}

int64_t WallMs(const WallClock& wall) {
  std::chrono::system_clock::time_point now = wall ? wall() : std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
}

// A tools/call request from the client: what rate_limit counts by default and cost meters.
bool Governed(const MessageContext& ctx) {
  return ctx.direction == Direction::kClientToServer && ctx.envelope != nullptr &&
         ctx.envelope->kind == jsonrpc::MessageKind::kRequest && ctx.MethodIs("tools/call");
}

// The shortest text that reads back as `v` (as the report writes USD).
void AppendDouble(double v, std::string* out) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, ec == std::errc() ? end : buf);
}

// Whole seconds rounded up: never tells a caller to come back before it would be admitted.
uint64_t CeilSeconds(uint64_t ms) { return std::max<uint64_t>(1, (ms + 999) / 1000); }

// One quota's refusal, between the check and the verdict.
struct Refusal {
  std::string_view quota;  // callsPerMinute | costBudgetUsdPerDay
  uint64_t retry_after_ms = 0;
};

}  // namespace

QuotaState::QuotaState(size_t sweep_threshold)
    : sweep_threshold_(std::max<size_t>(sweep_threshold, 1)), next_sweep_at_(sweep_threshold_) {}

void QuotaState::Tenant::Advance(int64_t slot) {
  if (slot <= last_slot) {
    return;
  }
  if (last_slot == std::numeric_limits<int64_t>::min() || slot - last_slot >= kSlots) {
    slots.fill(0);
    in_window = 0;
  } else {
    for (int64_t s = last_slot + 1; s <= slot; ++s) {
      uint32_t& leaving = slots[SlotIndex(s)];  // s - kSlots left the window; s takes its place
      in_window -= leaving;
      leaving = 0;
    }
  }
  last_slot = slot;
}

double QuotaState::SpentUsd(std::string_view tenant,
                            std::chrono::system_clock::time_point now) const {
  auto it = tenants_.find(Sv(tenant));
  if (it == tenants_.end()) {
    return 0;
  }
  int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  return it->second.SpentOn(FloorDiv(ms, kMsPerDay));
}

QuotaState::Tenant& QuotaState::Get(std::string_view tenant, int64_t slot, int64_t day) {
  if (auto it = tenants_.find(Sv(tenant)); it != tenants_.end()) {
    return it->second;
  }
  MaybeSweep(slot, day);
  return tenants_[std::string(tenant)];
}

void QuotaState::MaybeSweep(int64_t slot, int64_t day) {
  if (tenants_.size() < next_sweep_at_) {
    return;
  }
  for (auto it = tenants_.begin(); it != tenants_.end();) {
    const Tenant& t = it->second;
    bool window_empty = t.last_slot <= slot - kSlots || t.in_window == 0;
    if (window_empty && t.spend_day < day) {
      tenants_.erase(it++);
    } else {
      ++it;
    }
  }
  next_sweep_at_ = std::max(sweep_threshold_, 2 * tenants_.size());
}

QuotaStage::QuotaStage(const policy::Bundle& bundle, const Clock& clock, WallClock wall_clock,
                       QuotaState* state, telemetry::Metrics* metrics)
    : bundle_(bundle),
      clock_(clock),
      wall_clock_(std::move(wall_clock)),
      state_(state),
      metrics_(metrics) {
  if (metrics_ != nullptr) {
    metrics_->Describe("mcpmw_quota_rejections_total",
                       "Tool calls refused by a tenant quota (observe mode: would have been).");
  }
}

Verdict QuotaStage::OnRequest(MessageContext& ctx) {
  if (state_ == nullptr || !Governed(ctx)) {
    return Verdict::Continue();
  }
  const policy::TenantQuota* quota = bundle_.QuotaFor(ctx.principal.tenant);
  if (quota == nullptr || (!quota->calls_per_minute && !quota->cost_budget_usd_per_day)) {
    return Verdict::Continue();
  }
  int64_t now_ns = NowNs(clock_);
  int64_t slot = FloorDiv(now_ns, kNsPerSecond);
  int64_t wall_ms = WallMs(wall_clock_);
  int64_t day = FloorDiv(wall_ms, kMsPerDay);
  QuotaState::Tenant& t = state_->Get(ctx.principal.tenant, slot, day);

  std::optional<Refusal> refusal;
  double spent = t.SpentOn(day);
  if (quota->cost_budget_usd_per_day && spent >= *quota->cost_budget_usd_per_day) {
    refusal = Refusal{.quota = "costBudgetUsdPerDay",
                      .retry_after_ms = static_cast<uint64_t>((day + 1) * kMsPerDay - wall_ms)};
  }
  t.Advance(slot);
  if (quota->calls_per_minute && t.in_window >= *quota->calls_per_minute) {
    // The first moment the window holds fewer than the limit: drop slots oldest first until
    // enough calls have left. With a limit of 0 no such moment exists; the answer is when the
    // current second leaves the window (the bundle may have raised the limit by then).
    uint64_t must_leave = t.in_window - *quota->calls_per_minute + 1;
    int64_t free_at_ns = (slot + QuotaState::kSlots) * kNsPerSecond;
    uint64_t left = 0;
    for (int64_t s = slot - QuotaState::kSlots + 1; s <= slot; ++s) {
      left += t.slots[SlotIndex(s)];
      if (left >= must_leave) {
        free_at_ns = (s + QuotaState::kSlots) * kNsPerSecond;
        break;
      }
    }
    auto retry_ms = static_cast<uint64_t>((free_at_ns - now_ns + kNsPerMs - 1) / kNsPerMs);
    if (!refusal || retry_ms > refusal->retry_after_ms) {
      refusal = Refusal{.quota = "callsPerMinute", .retry_after_ms = retry_ms};
    }
  }

  if (!refusal) {
    if (quota->calls_per_minute) {
      ++t.slots[SlotIndex(slot)];
      ++t.in_window;
    }
    ctx.decisions.push_back({.stage = name(),
                             .status = "allow",
                             .reason_code = "tenant-quota:allowed",
                             .routine = true});
    return Verdict::Continue();
  }

  std::string_view tenant = ctx.principal.tenant;
  bool budget = refusal->quota == "costBudgetUsdPerDay";
  if (metrics_ != nullptr) {
    metrics_
        ->counter("mcpmw_quota_rejections_total", {{"tenant", tenant}, {"quota", refusal->quota}})
        .Increment();
  }
  std::string message =
      budget
          ? absl::StrCat("Tenant \"", Sv(tenant), "\" has used its daily cost budget: $", spent,
                         " of $", *quota->cost_budget_usd_per_day, "; it resets at 00:00 UTC, in ",
                         CeilSeconds(refusal->retry_after_ms), " s.")
          : absl::StrCat("Tenant \"", Sv(tenant), "\" is over its quota of ",
                         *quota->calls_per_minute, " calls per minute; retry in ",
                         CeilSeconds(refusal->retry_after_ms), " s.");
  Verdict v = Deny(ctx, name(), kCodeQuotaExceeded, std::move(message), kReason, {},
                   refusal->retry_after_ms);
  // Deny wrote the common members; the quota's own follow before the closing brace.
  std::string& data = v.data_json;
  data.pop_back();
  data += ",\"reason\":";
  jsonrpc::AppendJsonString(kReason, &data);
  data += ",\"quota\":";
  jsonrpc::AppendJsonString(refusal->quota, &data);
  data += ",\"tenant\":";
  jsonrpc::AppendJsonString(tenant, &data);
  if (budget) {
    data += ",\"spentUsd\":";
    AppendDouble(spent, &data);
    data += ",\"budgetUsd\":";
    AppendDouble(*quota->cost_budget_usd_per_day, &data);
  }
  data += '}';
  return v;
}

QuotaSpendStage::QuotaSpendStage(const policy::Bundle& bundle, const Clock& clock,
                                 WallClock wall_clock, QuotaState* state)
    : bundle_(bundle), clock_(clock), wall_clock_(std::move(wall_clock)), state_(state) {}

void QuotaSpendStage::OnComplete(MessageContext& ctx) {
  // The cost stage leaves 0 for everything but a metered call that reached the server.
  if (state_ == nullptr || !(ctx.cost.usd > 0) || !std::isfinite(ctx.cost.usd)) {
    return;
  }
  const policy::TenantQuota* quota = bundle_.QuotaFor(ctx.principal.tenant);
  if (quota == nullptr || !quota->cost_budget_usd_per_day) {
    return;  // nothing to hold the spend against: no entry, no memory
  }
  int64_t day = FloorDiv(WallMs(wall_clock_), kMsPerDay);
  QuotaState::Tenant& t =
      state_->Get(ctx.principal.tenant, FloorDiv(NowNs(clock_), kNsPerSecond), day);
  if (t.spend_day != day) {
    t.spend_day = day;
    t.spend_usd = 0;
  }
  t.spend_usd += ctx.cost.usd;
}

absl::Status TenantSessions::TryOpen(const policy::Bundle& bundle, std::string_view tenant) {
  auto it = open_.find(Sv(tenant));
  uint32_t open = it != open_.end() ? it->second : 0;
  const policy::TenantQuota* quota = bundle.QuotaFor(tenant);
  if (quota != nullptr && quota->concurrent_sessions && open >= *quota->concurrent_sessions) {
    return absl::ResourceExhaustedError(
        absl::StrCat("tenant \"", Sv(tenant), "\" already has ", open, " session",
                     open == 1 ? "" : "s", " open, its concurrentSessions limit of ",
                     *quota->concurrent_sessions, "; close one or raise tenants.",
                     Sv(bundle.tenants.count(tenant) != 0 ? tenant : "*"), ".concurrentSessions"));
  }
  if (it == open_.end()) {
    open_.emplace(std::string(tenant), 1);
  } else {
    ++it->second;
  }
  return absl::OkStatus();
}

void TenantSessions::Close(std::string_view tenant) {
  auto it = open_.find(Sv(tenant));
  if (it == open_.end()) {
    return;
  }
  if (--it->second == 0) {
    open_.erase(it);
  }
}

uint32_t TenantSessions::open(std::string_view tenant) const {
  auto it = open_.find(Sv(tenant));
  return it != open_.end() ? it->second : 0;
}

}  // namespace mcpmw::middleware
