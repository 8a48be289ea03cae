#include "src/middleware/quota.h"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"
#include "src/common/strings.h"
#include "src/middleware/chain_factory.h"
#include "src/policy/bundle.h"
#include "src/telemetry/metrics.h"
#include "tests/middleware/governed_session.h"

namespace mcpmw::middleware {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::EnforcedDecision;
using test_support::FindDecision;
using test_support::Frame;
using test_support::Reports;
using test_support::StageIndex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using WallTime = std::chrono::system_clock::time_point;

// 2026-03-01T23:00:00Z: an hour before a UTC day boundary.
constexpr WallTime kLateEvening{seconds(1'772'406'000)};

std::shared_ptr<const policy::Bundle> MustParse(std::string_view json) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle = policy::ParseBundle(json);
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  return bundle.ok() ? *bundle : std::make_shared<const policy::Bundle>();
}

// A bundle with the given `tenants` object.
std::shared_ptr<const policy::Bundle> WithTenants(std::string_view tenants) {
  return MustParse(absl::StrCat(R"({"bundleVersion":"q-1","tenants":)", Sv(tenants), "}"));
}

struct Call {
  std::string tenant = "acme";
  std::string method = "tools/call";
  jsonrpc::MessageKind kind = jsonrpc::MessageKind::kRequest;
  Direction direction = Direction::kClientToServer;
};

// The two halves of the stage over one state, driven the way the chain drives them: OnRequest
// when a call arrives, OnComplete (after cost has set ctx.cost) when it is over.
class Harness {
 public:
  explicit Harness(std::shared_ptr<const policy::Bundle> bundle) { Reload(std::move(bundle)); }

  Verdict Send(const Call& call = {}) {
    envelope_.kind = call.kind;
    ctx_ = MessageContext{};
    ctx_.direction = call.direction;
    ctx_.envelope = &envelope_;
    ctx_.invocation_id = absl::StrCat("inv-", ++sequence_);
    ctx_.method = call.method;
    ctx_.tool_name = "search";
    ctx_.principal.tenant = call.tenant;
    return request_->OnRequest(ctx_);
  }
  // Sends `n` calls and returns how many were admitted.
  int SendMany(int n, const Call& call = {}) {
    int admitted = 0;
    for (int i = 0; i < n; ++i) {
      admitted += Send(call).IsContinue() ? 1 : 0;
    }
    return admitted;
  }
  // A call of `tenant` that completed and cost `usd` (what the cost stage put in ctx.cost).
  void Complete(double usd, std::string tenant = "acme") {
    MessageContext ctx;
    ctx.method = "tools/call";
    ctx.principal.tenant = std::move(tenant);
    ctx.dispatched = true;
    ctx.cost.usd = usd;
    spend_->OnComplete(ctx);
  }
  // A new bundle (a reload): new stages over the same state, as BuildChain does it.
  void Reload(std::shared_ptr<const policy::Bundle> bundle) {
    bundle_ = std::move(bundle);
    WallClock wall = [this] { return wall_; };
    request_ = std::make_unique<QuotaStage>(*bundle_, clock_, wall, &state_, &metrics_);
    spend_ = std::make_unique<QuotaSpendStage>(*bundle_, clock_, wall, &state_);
  }

  ManualClock& clock() { return clock_; }
  WallTime& wall() { return wall_; }
  QuotaState& state() { return state_; }
  telemetry::Metrics& metrics() { return metrics_; }
  const MessageContext& ctx() const { return ctx_; }

 private:
  ManualClock clock_;
  WallTime wall_ = kLateEvening;
  QuotaState state_;
  telemetry::Metrics metrics_;
  std::shared_ptr<const policy::Bundle> bundle_;
  std::unique_ptr<QuotaStage> request_;
  std::unique_ptr<QuotaSpendStage> spend_;
  jsonrpc::Envelope envelope_;
  MessageContext ctx_;
  int sequence_ = 0;
};

constexpr std::string_view kAcme600 =
    R"({"acme":{"callsPerMinute":600,"concurrentSessions":20,"costBudgetUsdPerDay":5.0}})";

TEST(QuotaStage, RefusesThe601stCallInAMinuteWithTheTenantQuotaError) {
  Harness h(WithTenants(kAcme600));
  h.clock().Advance(milliseconds(10'250));
  EXPECT_EQ(h.SendMany(600), 600);

  Verdict v = h.Send();
  ASSERT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, kCodeQuotaExceeded);
  EXPECT_EQ(v.code, -32013);  // rate_limit's code: clients back off the same way
  EXPECT_EQ(v.message, "Tenant \"acme\" is over its quota of 600 calls per minute; retry in 60 s.");
  // The calls of second 10 leave the window when second 70 begins.
  EXPECT_EQ(v.data_json,
            R"({"stage":"quota","reasonCode":"tenant-quota","decisionId":"inv-601:quota",)"
            R"("retryAfterMs":59750,"reason":"tenant-quota","quota":"callsPerMinute",)"
            R"("tenant":"acme"})");
  EXPECT_THAT(h.ctx().decisions, ElementsAre(EnforcedDecision("quota", "deny", "tenant-quota")));
}

TEST(QuotaStage, AdmitsAgainWhenTheMinuteHasPassed) {
  Harness h(WithTenants(kAcme600));
  h.clock().Advance(milliseconds(10'250));
  EXPECT_EQ(h.SendMany(600), 600);
  h.clock().Advance(milliseconds(59'749));
  Verdict v = h.Send();
  EXPECT_FALSE(v.IsContinue());
  EXPECT_THAT(v.data_json, HasSubstr(R"("retryAfterMs":1,)"));
  h.clock().Advance(milliseconds(1));  // waiting exactly retryAfterMs is enough
  EXPECT_EQ(h.SendMany(601), 600);
}

TEST(QuotaStage, TheWindowSlidesInsteadOfResettingOnTheMinute) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":10}})"));
  EXPECT_EQ(h.SendMany(4), 4);  // second 0
  h.clock().Advance(seconds(30));
  EXPECT_EQ(h.SendMany(6), 6);  // second 30
  h.clock().Advance(seconds(15));
  Verdict v = h.Send();  // second 45: ten in the last minute
  ASSERT_FALSE(v.IsContinue());
  EXPECT_THAT(v.data_json, HasSubstr(R"("retryAfterMs":15000,)"));
  h.clock().Advance(seconds(15));  // second 60: the four of second 0 have left, the six stay
  EXPECT_EQ(h.SendMany(10), 4);
  v = h.Send();
  EXPECT_THAT(v.data_json, HasSubstr(R"("retryAfterMs":30000,)"));  // when second 30 leaves
}

TEST(QuotaStage, RefusedCallsConsumeNothing) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":3}})"));
  EXPECT_EQ(h.SendMany(3), 3);
  EXPECT_EQ(h.SendMany(100), 0);  // hammering while refused does not push the window further
  h.clock().Advance(seconds(60));
  EXPECT_EQ(h.SendMany(4), 3);
}

TEST(QuotaStage, AnotherTenantIsUnaffected) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":2},"beta":{"callsPerMinute":2}})"));
  EXPECT_EQ(h.SendMany(3, {.tenant = "acme"}), 2);
  EXPECT_EQ(h.SendMany(2, {.tenant = "beta"}), 2);
  EXPECT_TRUE(h.Send({.tenant = "gamma"}).IsContinue());  // no entry and no "*": unlimited
  EXPECT_TRUE(h.ctx().decisions.empty());                 // and no decision row
  Verdict v = h.Send({.tenant = "beta"});
  EXPECT_THAT(v.data_json, HasSubstr(R"("tenant":"beta"})"));
}

TEST(QuotaStage, TheDefaultEntryAppliesToATenantWithoutOne) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":5},"*":{"callsPerMinute":2}})"));
  EXPECT_EQ(h.SendMany(10, {.tenant = "initech"}), 2);
  EXPECT_THAT(h.Send({.tenant = "initech"}).message,
              HasSubstr("Tenant \"initech\" is over its quota of 2 calls per minute"));
  // Each unnamed tenant has its own window under the default, and a named one keeps its own.
  EXPECT_EQ(h.SendMany(10, {.tenant = "globex"}), 2);
  EXPECT_EQ(h.SendMany(10, {.tenant = "acme"}), 5);
  EXPECT_EQ(h.SendMany(10, {.tenant = ""}), 2);  // no tenant at all is "any other tenant" too
}

TEST(QuotaStage, GovernsOnlyToolCallsFromTheClient) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":0}})"));
  EXPECT_TRUE(h.Send({.method = "tools/list"}).IsContinue());
  EXPECT_TRUE(h.Send({.kind = jsonrpc::MessageKind::kNotification}).IsContinue());
  EXPECT_TRUE(h.Send({.kind = jsonrpc::MessageKind::kResponse}).IsContinue());
  EXPECT_TRUE(h.Send({.direction = Direction::kServerToClient}).IsContinue());
  EXPECT_TRUE(h.ctx().decisions.empty());
  EXPECT_EQ(h.state().size(), 0u);
  Verdict v = h.Send();
  EXPECT_FALSE(v.IsContinue());  // a limit of 0 refuses every call
  EXPECT_THAT(v.data_json, HasSubstr(R"("retryAfterMs":60000,)"));
}

TEST(QuotaStage, RecordsAnAllowRowWhenAQuotaApplied) {
  Harness h(WithTenants(kAcme600));
  ASSERT_TRUE(h.Send().IsContinue());
  EXPECT_THAT(h.ctx().decisions,
              ElementsAre(EnforcedDecision("quota", "allow", "tenant-quota:allowed")));

  // Sessions are not counted per message: a tenant with only that quota gets no row.
  Harness sessions_only(WithTenants(R"({"acme":{"concurrentSessions":1}})"));
  ASSERT_TRUE(sessions_only.Send().IsContinue());
  EXPECT_TRUE(sessions_only.ctx().decisions.empty());
}

TEST(QuotaStage, RefusesOnceTheDaysSpendReachesTheBudgetUntilTheNextUtcDay) {
  Harness h(WithTenants(R"({"acme":{"costBudgetUsdPerDay":1}})"));
  ASSERT_TRUE(h.Send().IsContinue());
  h.Complete(0.5);
  ASSERT_TRUE(h.Send().IsContinue());
  h.Complete(0.25);
  ASSERT_TRUE(h.Send().IsContinue());  // 0.75 spent: still under
  h.Complete(0.375);                   // in flight when the budget ran out: charged anyway
  EXPECT_DOUBLE_EQ(h.state().SpentUsd("acme", h.wall()), 1.125);

  h.wall() += milliseconds(1'500);  // 23:00:01.5 UTC
  Verdict v = h.Send();
  ASSERT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, kCodeQuotaExceeded);
  EXPECT_EQ(v.message,
            "Tenant \"acme\" has used its daily cost budget: $1.125 of $1; it resets at 00:00 UTC, "
            "in 3599 s.");
  EXPECT_EQ(v.data_json,
            R"({"stage":"quota","reasonCode":"tenant-quota","decisionId":"inv-4:quota",)"
            R"("retryAfterMs":3598500,"reason":"tenant-quota","quota":"costBudgetUsdPerDay",)"
            R"("tenant":"acme","spentUsd":1.125,"budgetUsd":1})");

  h.wall() += milliseconds(3'598'499);  // 23:59:59.999
  EXPECT_FALSE(h.Send().IsContinue());
  h.wall() += milliseconds(1);  // 00:00 UTC: a new day, nothing spent
  EXPECT_TRUE(h.Send().IsContinue());
  EXPECT_EQ(h.state().SpentUsd("acme", h.wall()), 0.0);
  h.Complete(0.5);
  EXPECT_DOUBLE_EQ(h.state().SpentUsd("acme", h.wall()), 0.5);
}

TEST(QuotaStage, ASpendExactlyAtTheBudgetIsUsedUp) {
  Harness h(WithTenants(R"({"*":{"costBudgetUsdPerDay":1}})"));
  h.Complete(0.5, "beta");
  h.Complete(0.5, "beta");
  Verdict v = h.Send({.tenant = "beta"});
  EXPECT_FALSE(v.IsContinue());
  EXPECT_THAT(v.data_json, HasSubstr(R"("spentUsd":1,"budgetUsd":1})"));
  EXPECT_TRUE(h.Send({.tenant = "acme"}).IsContinue());  // its own budget, untouched
}

TEST(QuotaStage, DoesNotKeepSpendForATenantWithoutABudget) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":5}})"));
  h.Complete(3.0);
  h.Complete(3.0, "beta");
  EXPECT_EQ(h.state().size(), 0u);
  EXPECT_EQ(h.state().SpentUsd("acme", h.wall()), 0.0);
}

TEST(QuotaStage, WithBothQuotasRefusingReportsTheOneThatFreesUpLast) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":1,"costBudgetUsdPerDay":1}})"));
  ASSERT_TRUE(h.Send().IsContinue());
  h.Complete(2.0);
  Verdict v = h.Send();  // the window frees in 60 s, the budget in an hour
  EXPECT_THAT(v.data_json, HasSubstr(R"("quota":"costBudgetUsdPerDay")"));

  h.wall() += hours(1) - seconds(10);  // ten seconds to midnight; the window still holds a minute
  v = h.Send();
  EXPECT_THAT(v.data_json, HasSubstr(R"("retryAfterMs":60000,)"));
  EXPECT_THAT(v.data_json, HasSubstr(R"("quota":"callsPerMinute")"));
}

TEST(QuotaStage, ABudgetRefusalDoesNotCountAgainstTheCallsWindow) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":2,"costBudgetUsdPerDay":1}})"));
  h.Complete(1.0);
  EXPECT_EQ(h.SendMany(5), 0);
  h.wall() += hours(1);  // the next day
  EXPECT_EQ(h.SendMany(5), 2);
}

TEST(QuotaStage, CountsRejectionsPerTenantAndQuota) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":1},"beta":{"costBudgetUsdPerDay":0}})"));
  EXPECT_EQ(h.SendMany(4), 1);
  EXPECT_EQ(h.SendMany(2, {.tenant = "beta"}), 0);
  telemetry::Metrics& m = h.metrics();
  EXPECT_EQ(
      m.counter("mcpmw_quota_rejections_total", {{"tenant", "acme"}, {"quota", "callsPerMinute"}})
          .value(),
      3u);
  EXPECT_EQ(m.counter("mcpmw_quota_rejections_total",
                      {{"tenant", "beta"}, {"quota", "costBudgetUsdPerDay"}})
                .value(),
            2u);
  EXPECT_THAT(m.RenderPrometheus(),
              HasSubstr("# TYPE mcpmw_quota_rejections_total counter\n"
                        "mcpmw_quota_rejections_total{quota=\"callsPerMinute\",tenant=\"acme\"} "
                        "3\n"));
}

TEST(QuotaStage, CountsSurviveABundleReload) {
  Harness h(WithTenants(R"({"acme":{"callsPerMinute":3,"costBudgetUsdPerDay":1}})"));
  EXPECT_EQ(h.SendMany(3), 3);
  h.Complete(0.75);
  h.Reload(WithTenants(R"({"acme":{"callsPerMinute":4,"costBudgetUsdPerDay":1}})"));
  EXPECT_EQ(h.SendMany(3), 1);  // a raised limit applies to the running window
  h.Complete(0.25);
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_THAT(h.Send().data_json, HasSubstr(R"("quota":"costBudgetUsdPerDay")"));
}

TEST(QuotaStage, SweepingDropsTenantsWithNothingLeftToCount) {
  ManualClock clock;
  WallTime wall = kLateEvening;
  QuotaState state(/*sweep_threshold=*/4);
  auto bundle = WithTenants(R"({"*":{"callsPerMinute":1,"costBudgetUsdPerDay":10}})");
  QuotaStage stage(
      *bundle, clock, [&] { return wall; }, &state, nullptr);
  QuotaSpendStage spend(
      *bundle, clock, [&] { return wall; }, &state);
  jsonrpc::Envelope envelope;
  envelope.kind = jsonrpc::MessageKind::kRequest;
  auto send = [&](std::string tenant) {
    MessageContext ctx;
    ctx.envelope = &envelope;
    ctx.method = "tools/call";
    ctx.principal.tenant = std::move(tenant);
    return stage.OnRequest(ctx).IsContinue();
  };
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(send(absl::StrCat("t", i)));
  }
  MessageContext spent;
  spent.principal.tenant = "t0";
  spent.cost.usd = 1;
  spend.OnComplete(spent);
  EXPECT_EQ(state.size(), 8u);  // all live: nothing swept
  clock.Advance(seconds(60));
  EXPECT_TRUE(send("fresh"));  // windows over; t0 still has today's spend
  EXPECT_EQ(state.size(), 2u);
  EXPECT_DOUBLE_EQ(state.SpentUsd("t0", wall), 1.0);
}

TEST(TenantSessions, RefusesASessionPastTheTenantsLimitUntilOneCloses) {
  auto bundle = WithTenants(R"({"acme":{"concurrentSessions":2},"beta":{"callsPerMinute":1}})");
  TenantSessions sessions;
  EXPECT_TRUE(sessions.TryOpen(*bundle, "acme").ok());
  EXPECT_TRUE(sessions.TryOpen(*bundle, "acme").ok());
  absl::Status refused = sessions.TryOpen(*bundle, "acme");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(),
            "tenant \"acme\" already has 2 sessions open, its concurrentSessions limit of 2; close "
            "one or raise tenants.acme.concurrentSessions");
  EXPECT_EQ(sessions.open("acme"), 2u);

  // Other tenants are unaffected, limited on something else or not named at all.
  EXPECT_TRUE(sessions.TryOpen(*bundle, "beta").ok());
  EXPECT_TRUE(sessions.TryOpen(*bundle, "beta").ok());
  EXPECT_TRUE(sessions.TryOpen(*bundle, "gamma").ok());

  sessions.Close("acme");
  EXPECT_EQ(sessions.open("acme"), 1u);
  EXPECT_TRUE(sessions.TryOpen(*bundle, "acme").ok());
  EXPECT_EQ(sessions.TryOpen(*bundle, "acme").code(), absl::StatusCode::kResourceExhausted);
}

TEST(TenantSessions, TheDefaultLimitAppliesToEachOtherTenantApart) {
  auto bundle = WithTenants(R"({"*":{"concurrentSessions":1}})");
  TenantSessions sessions;
  EXPECT_TRUE(sessions.TryOpen(*bundle, "x").ok());
  EXPECT_TRUE(sessions.TryOpen(*bundle, "y").ok());
  absl::Status refused = sessions.TryOpen(*bundle, "x");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(),
            "tenant \"x\" already has 1 session open, its concurrentSessions limit of 1; close one "
            "or raise tenants.*.concurrentSessions");
}

TEST(TenantSessions, ALimitAddedByAReloadCountsSessionsAlreadyOpen) {
  auto unlimited = WithTenants(R"({"acme":{"callsPerMinute":5}})");
  auto limited = WithTenants(R"({"acme":{"concurrentSessions":2}})");
  TenantSessions sessions;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(sessions.TryOpen(*unlimited, "acme").ok());
  }
  EXPECT_EQ(sessions.TryOpen(*limited, "acme").code(), absl::StatusCode::kResourceExhausted);
  sessions.Close("acme");
  EXPECT_EQ(sessions.TryOpen(*limited, "acme").code(), absl::StatusCode::kResourceExhausted);
  sessions.Close("acme");
  EXPECT_TRUE(sessions.TryOpen(*limited, "acme").ok());
}

TEST(TenantSessions, IgnoresACloseWithoutAnOpen) {
  auto bundle = WithTenants(R"({"acme":{"concurrentSessions":1}})");
  TenantSessions sessions;
  sessions.Close("acme");
  EXPECT_EQ(sessions.open("acme"), 0u);
  EXPECT_TRUE(sessions.TryOpen(*bundle, "acme").ok());
  sessions.Close("acme");
  sessions.Close("acme");
  EXPECT_EQ(sessions.open("acme"), 0u);
  EXPECT_TRUE(sessions.TryOpen(*bundle, "acme").ok());
  EXPECT_FALSE(sessions.TryOpen(*bundle, "acme").ok());
}

// The real chain (BuildChain) with quota state, as the session (src/proxy/governance.cc) runs
// it: the request, then — when it went through — the response and completion.
class GovernedSession {
 public:
  GovernedSession(std::string_view bundle_json, std::string tenant, Reports keep = Reports::kNone)
      : bundle_(MustParse(bundle_json)) {
    claimed_.tenant = tenant;
    deps_ = {.session_id = "s",
             .sequence = &sequence_,
             .clock = &clock_,
             .rate_state = &rate_state_,
             .metrics = &metrics_,
             .tenant = std::move(tenant),
             .quota_state = &quota_state_,
             .wall_clock = [this] { return wall_; }};
    if (keep == Reports::kCollect) {
      deps_.report = [this](const ReportDraft& d) { reports_.push_back(d.Json()); };
    }
    absl::StatusOr<std::shared_ptr<ChainSnapshot>> built = BuildChain(bundle_, deps_);
    EXPECT_TRUE(built.ok()) << built.status();
    snapshot_ = built.ok() ? *built : nullptr;
  }

  // One tools/call; `result` is what the server answers when the call reaches it.
  std::unique_ptr<MessageContext> Call(std::string_view result = R"({"content":[]})") {
    auto ctx = std::make_unique<MessageContext>();
    std::string request = absl::StrCat(R"({"jsonrpc":"2.0","id":)", ++id_,
                                       R"(,"method":"tools/call","params":{"name":"search"}})");
    Frame req(request);
    ctx->envelope = &req.envelope();
    ctx->payload = req.view();
    ctx->bundle = bundle_.get();
    ctx->claimed = &claimed_;
    ctx->started = clock_.Now();
    Verdict v = snapshot_->chain.OnRequest(*ctx);
    ctx->request_document.reset();
    if (v.IsContinue()) {
      ++forwarded_;
      Frame resp(absl::StrCat(R"({"jsonrpc":"2.0","id":)", id_, R"(,"result":)", Sv(result), "}"));
      ctx->direction = Direction::kServerToClient;
      ctx->envelope = &resp.envelope();
      ctx->payload = resp.view();
      ctx->rewritten.reset();
      snapshot_->chain.OnResponse(*ctx);
      snapshot_->chain.OnComplete(*ctx);
    } else {
      snapshot_->chain.OnComplete(*ctx);
    }
    ctx->envelope = nullptr;
    ctx->payload = {};
    return ctx;
  }

  const Chain& chain() const { return snapshot_->chain; }
  int forwarded() const { return forwarded_; }
  QuotaState& quota_state() { return quota_state_; }
  telemetry::Metrics& metrics() { return metrics_; }
  const std::vector<std::string>& reports() const { return reports_; }
  WallTime wall() const { return wall_; }

 private:
  std::shared_ptr<const policy::Bundle> bundle_;
  ManualClock clock_;
  WallTime wall_ = kLateEvening;
  uint64_t sequence_ = 1;
  RateLimitState rate_state_;
  QuotaState quota_state_;
  telemetry::Metrics metrics_;
  Principal claimed_;
  ChainDeps deps_;
  std::shared_ptr<ChainSnapshot> snapshot_;
  std::vector<std::string> reports_;
  int id_ = 0;
  int forwarded_ = 0;
};

TEST(QuotaChain, RunsQuotaAfterRateLimitAndChargesSpendAfterCost) {
  GovernedSession s(R"({"bundleVersion":"v","tenants":{"acme":{"costBudgetUsdPerDay":1}}})",
                    "acme");
  std::vector<std::string_view> names;
  for (size_t i = 0; i < s.chain().size(); ++i) {
    names.push_back(s.chain().stage_name(i));
  }
  EXPECT_THAT(names,
              ::testing::ElementsAre("normalize", "auth", "policy", "tool_filter", "rate_limit",
                                     "quota", "request_redaction", "dispatch", "response_redaction",
                                     "trace", "cost", "quota", "report"));
}

TEST(QuotaChain, RefusesACallOnceTheCostStagesChargesReachTheBudget) {
  GovernedSession s(R"({"bundleVersion":"v","pricing":{"requestBaseFeeUsd":0.5},
                        "tenants":{"acme":{"costBudgetUsdPerDay":1}}})",
                    "acme", Reports::kCollect);
  s.Call();
  s.Call();
  EXPECT_DOUBLE_EQ(s.quota_state().SpentUsd("acme", s.wall()), 1.0);
  std::unique_ptr<MessageContext> third = s.Call();
  EXPECT_EQ(s.forwarded(), 2);
  EXPECT_EQ(third->outcome.code, kCodeQuotaExceeded);
  EXPECT_EQ(third->stopped_by, "quota");
  EXPECT_THAT(third->outcome.data_json,
              HasSubstr(R"("quota":"costBudgetUsdPerDay","tenant":"acme","spentUsd":1,)"));
  // A refused call costs nothing, so the spend stays where it was.
  EXPECT_DOUBLE_EQ(s.quota_state().SpentUsd("acme", s.wall()), 1.0);
  ASSERT_EQ(s.reports().size(), 3u);
  EXPECT_THAT(s.reports()[0], HasSubstr(R"("decisions":["tool_filter","quota","dispatch"])"));
  EXPECT_THAT(s.reports()[2], HasSubstr(R"("outcome":"blocked","error":{"code":-32013,)"
                                        R"("stage":"quota","reasonCode":"tenant-quota"})"));
}

TEST(QuotaChain, ObserveModeLetsTheCallThroughAndRecordsTheDecision) {
  GovernedSession s(R"({"bundleVersion":"v","stages":{"quota":{"mode":"observe"}},
                        "tenants":{"acme":{"callsPerMinute":1}}})",
                    "acme");
  s.Call();
  std::unique_ptr<MessageContext> second = s.Call();
  EXPECT_EQ(s.forwarded(), 2);
  EXPECT_TRUE(second->outcome.IsContinue());
  EXPECT_TRUE(second->dispatched);
  const Decision* d = FindDecision(*second, "quota");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "deny");
  EXPECT_EQ(d->reason_code, "tenant-quota");
  EXPECT_FALSE(d->enforced);
  size_t quota = StageIndex(s.chain(), "quota");
  EXPECT_EQ(s.chain().counters(quota).observed, 1u);
  EXPECT_EQ(s.chain().counters(quota).rejected, 0u);
  EXPECT_EQ(s.metrics()
                .counter("mcpmw_quota_rejections_total",
                         {{"tenant", "acme"}, {"quota", "callsPerMinute"}})
                .value(),
            1u);
}

TEST(QuotaChain, ATenantsObserveModeAppliesToItsQuota) {
  constexpr std::string_view kBundle = R"({"bundleVersion":"v",
      "tenants":{"trial":{"mode":"observe"},"*":{"callsPerMinute":1}}})";
  GovernedSession trial(kBundle, "trial");
  trial.Call();
  trial.Call();
  EXPECT_EQ(trial.forwarded(), 2);
  GovernedSession other(kBundle, "other");
  other.Call();
  EXPECT_EQ(other.Call()->outcome.code, kCodeQuotaExceeded);
  EXPECT_EQ(other.forwarded(), 1);
}

TEST(QuotaChain, BuildChainRefusesQuotasWithoutStateToKeepThem) {
  std::shared_ptr<const policy::Bundle> bundle =
      MustParse(R"({"bundleVersion":"v","tenants":{"*":{"callsPerMinute":10}}})");
  ManualClock clock;
  RateLimitState rate;
  uint64_t sequence = 1;
  ChainDeps deps{.sequence = &sequence, .clock = &clock, .rate_state = &rate};
  absl::StatusOr<std::shared_ptr<ChainSnapshot>> built = BuildChain(bundle, deps);
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(built.status().message(), HasSubstr("ChainDeps::quota_state"));
  // Without quotas there is nothing to keep.
  EXPECT_TRUE(BuildChain(MustParse(R"({"bundleVersion":"v"})"), deps).ok());
  QuotaState quota;
  deps.quota_state = &quota;
  EXPECT_TRUE(BuildChain(bundle, deps).ok());
}

}  // namespace
}  // namespace mcpmw::middleware
