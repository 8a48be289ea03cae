#include "src/middleware/rate_limit.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"
#include "src/policy/bundle.h"

namespace mcpmw::middleware {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

std::shared_ptr<const policy::Bundle> MustParse(std::string_view json) {
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle = policy::ParseBundle(json);
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  return bundle.ok() ? *bundle : std::make_shared<const policy::Bundle>();
}

// A bundle with the given rateLimitRules array.
std::shared_ptr<const policy::Bundle> WithRules(std::string_view rules) {
  return MustParse(
      absl::StrCat(R"({"bundleVersion":"test-1","rateLimitRules":)", std::string(rules), "}"));
}

// One request as the chain hands it to the stage after normalize and auth.
struct Call {
  std::string tenant = "acme";
  std::string user = "alice";
  std::string agent = "agent-1";
  std::string tool = "search";
  std::string method = "tools/call";
  jsonrpc::MessageKind kind = jsonrpc::MessageKind::kRequest;
  Direction direction = Direction::kClientToServer;
};

// Owns what a context points to, so a test reads as a sequence of calls.
class Harness {
 public:
  explicit Harness(std::shared_ptr<const policy::Bundle> bundle)
      : bundle_(std::move(bundle)),
        stage_(std::make_unique<RateLimitStage>(*bundle_, clock_, &state_)) {}

  Verdict Send(const Call& call = {}) {
    envelope_.kind = call.kind;
    ctx_ = MessageContext{};
    ctx_.direction = call.direction;
    ctx_.envelope = &envelope_;
    ctx_.invocation_id = absl::StrCat("inv-", ++sequence_);
    ctx_.method = call.method;
    ctx_.tool_name = call.tool;
    ctx_.principal.tenant = call.tenant;
    ctx_.principal.user = call.user;
    ctx_.principal.agent = call.agent;
    return stage_->OnRequest(ctx_);
  }
  // Sends `n` calls and returns how many were admitted.
  int SendMany(int n, const Call& call = {}) {
    int admitted = 0;
    for (int i = 0; i < n; ++i) {
      admitted += Send(call).IsContinue() ? 1 : 0;
    }
    return admitted;
  }
  // A new bundle (a reload): a new stage over the same state, as the session does it.
  void Reload(std::shared_ptr<const policy::Bundle> bundle) {
    bundle_ = std::move(bundle);
    stage_ = std::make_unique<RateLimitStage>(*bundle_, clock_, &state_);
  }

  ManualClock& clock() { return clock_; }
  RateLimitState& state() { return state_; }
  const MessageContext& ctx() const { return ctx_; }

 private:
  ManualClock clock_;
  RateLimitState state_;
  std::shared_ptr<const policy::Bundle> bundle_;
  std::unique_ptr<RateLimitStage> stage_;
  jsonrpc::Envelope envelope_;
  MessageContext ctx_;
  int sequence_ = 0;
};

constexpr std::string_view kUserPerMinute =
    R"([{"ruleId":"user-rate-limit","dimension":"user","limit":3,"windowSeconds":60}])";

TEST(RateLimitStage, RefusesTheCallPastTheLimitWithTheTimeLeftInTheWindow) {
  Harness h(WithRules(kUserPerMinute));
  h.clock().Advance(milliseconds(47'700));
  EXPECT_EQ(h.SendMany(3), 3);

  Verdict v = h.Send();
  ASSERT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, kCodeRateLimited);
  EXPECT_EQ(v.code, -32013);
  EXPECT_EQ(v.message,
            "Rate limit exceeded for user alice: 3 calls per 60 s (rule user-rate-limit); retry "
            "in 12.3 s.");
  EXPECT_EQ(v.data_json, R"({"stage":"rate_limit","reasonCode":"rate-limit-exceeded","decisionId":)"
                         R"("inv-4:rate_limit","ruleId":"user-rate-limit","retryAfterMs":12300})");
  EXPECT_TRUE(h.ctx().rate.limited);
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 12'300u);
  EXPECT_EQ(h.ctx().rate.rule_id, "user-rate-limit");
  EXPECT_EQ(h.ctx().rate.key, "acme:alice");
}

TEST(RateLimitStage, RoundsTheRetryUpToAWholeMillisecond) {
  Harness h(WithRules(kUserPerMinute));
  h.clock().Advance(nanoseconds(47'700'000'001));
  EXPECT_EQ(h.SendMany(3), 3);
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 12'300u);  // 12 299.999 999 ms left

  h.clock().Advance(nanoseconds(12'299'999'998));  // one nanosecond left in the window
  Verdict v = h.Send();
  EXPECT_FALSE(v.IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 1u);
  EXPECT_THAT(v.message, ::testing::EndsWith("retry in 1 ms."));
}

TEST(RateLimitStage, AdmitsAgainWhenTheAlignedWindowRollsOver) {
  Harness h(WithRules(kUserPerMinute));
  h.clock().Advance(seconds(30));  // windows are [0, 60 s), [60 s, 120 s): not from the 1st call
  EXPECT_EQ(h.SendMany(3), 3);
  h.clock().Advance(nanoseconds(seconds(30)) - nanoseconds(1));
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 1u);
  h.clock().Advance(nanoseconds(1));
  EXPECT_EQ(h.SendMany(4), 3);
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 60'000u);
}

TEST(RateLimitStage, RefusedCallsConsumeNothing) {
  Harness h(WithRules(kUserPerMinute));
  EXPECT_EQ(h.SendMany(3), 3);
  EXPECT_EQ(h.SendMany(50), 0);  // hammering while refused does not push the limit further
  h.clock().Advance(seconds(60));
  EXPECT_EQ(h.SendMany(3), 3);
}

TEST(RateLimitStage, ACallRefusedByOneRuleIsNotChargedToAnother) {
  Harness h(WithRules(R"([
    {"ruleId":"tenant-cap","dimension":"tenant","limit":5,"windowSeconds":60},
    {"ruleId":"per-user","dimension":"user","limit":1,"windowSeconds":60}])"));
  EXPECT_TRUE(h.Send({.user = "alice"}).IsContinue());
  EXPECT_FALSE(h.Send({.user = "alice"}).IsContinue());
  EXPECT_EQ(h.ctx().rate.rule_id, "per-user");
  // alice's refused call did not count against the tenant: four more users fit in its five.
  for (std::string user : {"bob", "carol", "dave", "erin"}) {
    EXPECT_TRUE(h.Send({.user = user}).IsContinue()) << user;
  }
  Verdict v = h.Send({.user = "frank"});
  EXPECT_FALSE(v.IsContinue());
  EXPECT_EQ(h.ctx().rate.rule_id, "tenant-cap");
  EXPECT_EQ(h.ctx().rate.key, "acme");
  EXPECT_EQ(v.message,
            "Rate limit exceeded for tenant acme: 5 calls per 60 s (rule tenant-cap); retry in "
            "60 s.");
}

TEST(RateLimitStage, TokenBucketAllowsABurstThenRefillsContinuously) {
  Harness h(WithRules(R"([{"ruleId":"bucket","dimension":"user","algorithm":"token-bucket",
                           "burst":3,"refillPerSecond":2}])"));
  EXPECT_EQ(h.SendMany(3), 3);
  Verdict v = h.Send();
  ASSERT_FALSE(v.IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 500u);
  EXPECT_EQ(v.message,
            "Rate limit exceeded for user alice: 3 calls at once, refilling 2 per second (rule "
            "bucket); retry in 500 ms.");

  h.clock().Advance(milliseconds(499));
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 1u);
  h.clock().Advance(milliseconds(1));  // waiting exactly retryAfterMs is enough
  EXPECT_TRUE(h.Send().IsContinue());
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 500u);

  h.clock().Advance(milliseconds(250));  // half a token: still refused, 250 ms to go
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 250u);

  // A long idle period refills to the burst, never beyond.
  h.clock().Advance(seconds(10));
  EXPECT_EQ(h.SendMany(10), 3);
}

TEST(RateLimitStage, TokenBucketWithAFractionalRateReportsTheWholeRefill) {
  Harness h(WithRules(R"([{"ruleId":"slow","algorithm":"token-bucket","limit":1,
                           "refillPerSecond":0.3}])"));
  EXPECT_TRUE(h.Send().IsContinue());
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 3'334u);  // 3.333… s, rounded up
  h.clock().Advance(milliseconds(3'334));
  EXPECT_TRUE(h.Send().IsContinue());
}

TEST(RateLimitStage, DefaultKeySeparatesUsersOfOneTenant) {
  Harness h(
      WithRules(R"([{"ruleId":"per-user","dimension":"user","limit":1,"windowSeconds":60}])"));
  EXPECT_TRUE(h.Send({.user = "alice"}).IsContinue());
  EXPECT_TRUE(h.Send({.user = "bob"}).IsContinue());
  EXPECT_TRUE(h.Send({.tenant = "beta", .user = "alice"}).IsContinue());
  EXPECT_FALSE(h.Send({.user = "alice"}).IsContinue());
  EXPECT_EQ(h.ctx().rate.key, "acme:alice");
}

TEST(RateLimitStage, KeyTemplateByTenantSharesOneCounter) {
  Harness h(WithRules(R"([{"ruleId":"per-tenant","dimension":"user","keyTemplate":"t/{tenant}",
                           "limit":2,"windowSeconds":60}])"));
  EXPECT_TRUE(h.Send({.user = "alice"}).IsContinue());
  EXPECT_TRUE(h.Send({.user = "bob"}).IsContinue());
  Verdict v = h.Send({.user = "carol"});
  EXPECT_FALSE(v.IsContinue());
  EXPECT_EQ(h.ctx().rate.key, "t/acme");
  EXPECT_THAT(v.message, ::testing::StartsWith("Rate limit exceeded for key \"t/acme\": 2 calls"));
  EXPECT_TRUE(h.Send({.tenant = "beta", .user = "carol"}).IsContinue());
}

TEST(RateLimitStage, KeyTemplateByToolAndMethodCountsEachToolApart) {
  Harness h(WithRules(R"([{"ruleId":"per-tool","dimension":"tool",
                           "keyTemplate":"{tenant}|{agent}|{tool}|{method}",
                           "limit":1,"windowSeconds":1}])"));
  EXPECT_TRUE(h.Send({.tool = "search"}).IsContinue());
  EXPECT_TRUE(h.Send({.tool = "fetch"}).IsContinue());
  EXPECT_FALSE(h.Send({.user = "bob", .tool = "search"}).IsContinue());
  EXPECT_EQ(h.ctx().rate.key, "acme|agent-1|search|tools/call");
}

TEST(RateLimitStage, ValuesWithSeparatorsNeverShareACounter) {
  Harness h(
      WithRules(R"([{"ruleId":"per-user","dimension":"user","limit":1,"windowSeconds":60}])"));
  EXPECT_TRUE(h.Send({.tenant = "a:b", .user = "c"}).IsContinue());
  EXPECT_TRUE(h.Send({.tenant = "a", .user = "b:c"}).IsContinue());
  EXPECT_FALSE(h.Send({.tenant = "a", .user = "b:c"}).IsContinue());
  EXPECT_EQ(h.ctx().rate.key, "a:b%3Ac");
}

TEST(RateLimitStage, CountsOnlyTheMethodsARuleLists) {
  Harness h(WithRules(kUserPerMinute));  // methods default to tools/call
  EXPECT_EQ(h.SendMany(20, {.method = "tools/list"}), 20);
  EXPECT_TRUE(h.ctx().decisions.empty());  // no applicable rule: no decision row
  EXPECT_EQ(h.state().size(), 0u);
  EXPECT_EQ(h.SendMany(4), 3);

  Harness listing(WithRules(R"([{"ruleId":"lists","limit":1,"windowSeconds":60,
                                 "methods":["tools/list","resources/list"]}])"));
  EXPECT_TRUE(listing.Send({.method = "tools/list"}).IsContinue());
  EXPECT_FALSE(listing.Send({.method = "tools/list"}).IsContinue());
  // Both listed methods count against the key's one counter ({tenant}:{user}).
  EXPECT_FALSE(listing.Send({.method = "resources/list"}).IsContinue());
  EXPECT_TRUE(listing.Send({.user = "bob", .method = "resources/list"}).IsContinue());
  EXPECT_EQ(listing.SendMany(5), 5);  // tools/call is not listed
}

TEST(RateLimitStage, IgnoresNotificationsResponsesAndServerRequests) {
  Harness h(WithRules(R"([{"ruleId":"r","limit":0,"windowSeconds":60,"methods":["tools/call"]}])"));
  EXPECT_TRUE(h.Send({.kind = jsonrpc::MessageKind::kNotification}).IsContinue());
  EXPECT_TRUE(h.Send({.kind = jsonrpc::MessageKind::kResponse}).IsContinue());
  EXPECT_TRUE(h.Send({.direction = Direction::kServerToClient}).IsContinue());
  EXPECT_TRUE(h.ctx().decisions.empty());
  EXPECT_FALSE(h.Send().IsContinue());
}

TEST(RateLimitStage, WithTwoRefusingRulesReportsTheLongerRetry) {
  Harness h(WithRules(R"([
    {"ruleId":"per-second","limit":1,"windowSeconds":1},
    {"ruleId":"per-minute","limit":1,"windowSeconds":60}])"));
  h.clock().Advance(milliseconds(250));
  EXPECT_TRUE(h.Send().IsContinue());
  Verdict v = h.Send();
  ASSERT_FALSE(v.IsContinue());
  EXPECT_EQ(h.ctx().rate.rule_id, "per-minute");
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 59'750u);
  EXPECT_THAT(v.data_json, ::testing::HasSubstr(R"("ruleId":"per-minute","retryAfterMs":59750})"));
  EXPECT_EQ(v.message,
            "Rate limit exceeded for user alice: 1 call per 60 s (rule per-minute); retry in "
            "59.8 s.");

  // After the per-second window only the per-minute rule refuses.
  h.clock().Advance(seconds(1));
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 58'750u);
}

TEST(RateLimitStage, CountersSurviveABundleReload) {
  Harness h(WithRules(kUserPerMinute));
  EXPECT_EQ(h.SendMany(3), 3);
  h.Reload(MustParse(R"({"bundleVersion":"test-2","rateLimitRules":[
    {"ruleId":"user-rate-limit","dimension":"user","limit":3,"windowSeconds":60},
    {"ruleId":"new-rule","dimension":"user","limit":10,"windowSeconds":60}]})"));
  EXPECT_FALSE(h.Send().IsContinue());
  EXPECT_EQ(h.ctx().rate.rule_id, "user-rate-limit");

  // A raised limit takes effect on the running counters.
  h.Reload(MustParse(R"({"bundleVersion":"test-3","rateLimitRules":[
    {"ruleId":"user-rate-limit","dimension":"user","limit":4,"windowSeconds":60}]})"));
  EXPECT_EQ(h.SendMany(3), 1);
}

TEST(RateLimitStage, ARuleThatChangesAlgorithmOnReloadStartsAfresh) {
  Harness h(WithRules(R"([{"ruleId":"r","limit":1,"windowSeconds":60}])"));
  EXPECT_EQ(h.SendMany(2), 1);
  h.Reload(
      WithRules(R"([{"ruleId":"r","algorithm":"token-bucket","burst":2,"refillPerSecond":1}])"));
  EXPECT_EQ(h.SendMany(3), 2);
  EXPECT_EQ(h.ctx().rate.retry_after_ms, 1'000u);
}

TEST(RateLimitStage, ALimitOfZeroRefusesEveryCall) {
  Harness window(WithRules(R"([{"ruleId":"off","limit":0,"windowSeconds":60}])"));
  window.clock().Advance(seconds(45));
  Verdict v = window.Send();
  ASSERT_FALSE(v.IsContinue());
  EXPECT_EQ(window.ctx().rate.retry_after_ms, 15'000u);  // the end of the current window
  EXPECT_EQ(v.message,
            "Rate limit exceeded for user alice: 0 calls per 60 s (rule off); retry in 15 s.");
  EXPECT_EQ(window.state().size(), 0u);

  Harness bucket(WithRules(
      R"([{"ruleId":"off","algorithm":"token-bucket","burst":0,"refillPerSecond":0.5}])"));
  EXPECT_FALSE(bucket.Send().IsContinue());
  EXPECT_EQ(bucket.ctx().rate.retry_after_ms, 2'000u);  // one refill interval
  bucket.clock().Advance(seconds(100));
  EXPECT_FALSE(bucket.Send().IsContinue());
}

TEST(RateLimitStage, WindowsShorterThanASecondAreNamedInTheMessage) {
  Harness h(WithRules(R"([{"ruleId":"burst","limit":2,"windowSeconds":0.25}])"));
  EXPECT_EQ(h.SendMany(2), 2);
  Verdict v = h.Send();
  EXPECT_EQ(v.message,
            "Rate limit exceeded for user alice: 2 calls per 0.25 s (rule burst); retry in 250 "
            "ms.");
}

TEST(RateLimitStage, RecordsADecisionRowForAdmittedAndRefusedCalls) {
  Harness h(
      WithRules(R"([{"ruleId":"per-user","dimension":"user","limit":1,"windowSeconds":60}])"));
  ASSERT_TRUE(h.Send().IsContinue());
  ASSERT_EQ(h.ctx().decisions.size(), 1u);
  const Decision& allow = h.ctx().decisions[0];
  EXPECT_EQ(allow.stage, "rate_limit");
  EXPECT_EQ(allow.status, "allow");
  EXPECT_EQ(allow.reason_code, "rate-limit:allowed");
  EXPECT_EQ(h.ctx().DecisionId(allow.stage), "inv-1:rate_limit");
  EXPECT_FALSE(h.ctx().rate.limited);

  ASSERT_FALSE(h.Send().IsContinue());
  ASSERT_EQ(h.ctx().decisions.size(), 1u);
  const Decision& deny = h.ctx().decisions[0];
  EXPECT_EQ(deny.stage, "rate_limit");
  EXPECT_EQ(deny.status, "deny");
  EXPECT_EQ(deny.reason_code, "rate-limit-exceeded");
  EXPECT_EQ(h.ctx().DecisionId(deny.stage), "inv-2:rate_limit");
}

TEST(RateLimitStage, SweepingKeepsMemoryBoundedAcrossManyUsersAndWindows) {
  Harness h(WithRules(R"([
    {"ruleId":"per-user","dimension":"user","limit":5,"windowSeconds":1},
    {"ruleId":"bucket","dimension":"agent","keyTemplate":"{user}","algorithm":"token-bucket",
     "burst":5,"refillPerSecond":10}])"));
  size_t max_size = 0;
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(h.Send({.user = absl::StrCat("user-", i)}).IsContinue()) << i;
    max_size = std::max(max_size, h.state().size());
    if (i % 500 == 499) {
      h.clock().Advance(seconds(1));  // a new window; the buckets are full again
    }
  }
  // Two entries per user and 500 users per window: 1000 live entries at most, and the sweep
  // runs once the map reaches the default threshold.
  EXPECT_LE(max_size, RateLimitState::kDefaultSweepThreshold);
  EXPECT_GE(max_size, 1'000u);
}

TEST(RateLimitStage, SweepingKeepsEntriesThatAreStillLive) {
  ManualClock clock;
  RateLimitState state(/*sweep_threshold=*/4);
  auto bundle =
      WithRules(R"([{"ruleId":"per-user","dimension":"user","limit":1,"windowSeconds":60}])");
  RateLimitStage stage(*bundle, clock, &state);
  jsonrpc::Envelope envelope;
  envelope.kind = jsonrpc::MessageKind::kRequest;
  auto send = [&](std::string user) {
    MessageContext ctx;
    ctx.envelope = &envelope;
    ctx.method = "tools/call";
    ctx.principal.tenant = "acme";
    ctx.principal.user = std::move(user);
    return stage.OnRequest(ctx).IsContinue();
  };
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(send(absl::StrCat("u", i)));
  }
  EXPECT_EQ(state.size(), 8u);  // all live: nothing swept, the sweep mark doubled
  EXPECT_FALSE(send("u0"));
  clock.Advance(seconds(60));
  EXPECT_TRUE(send("fresh"));  // 9 >= 8: the sweep drops the eight expired windows
  EXPECT_EQ(state.size(), 1u);
}

}  // namespace
}  // namespace mcpmw::middleware
