#include "src/middleware/dispatch.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/common/clock.h"
#include "src/jsonrpc/envelope.h"
#include "src/middleware/chain_factory.h"
#include "src/policy/bundle.h"
#include "src/telemetry/metrics.h"

namespace mcpmw::middleware {
namespace {

using std::chrono::milliseconds;

// A JSON-RPC message held the way a session holds a frame: simdjson's padding after the bytes,
// and the envelope read from them by the session's EnvelopeReader.
class Frame {
 public:
  explicit Frame(std::string_view json) : bytes_(json) {
    jsonrpc::EnvelopeReader reader;
    reader.Read(view(), &envelope_);
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

  std::string_view view() const { return {bytes_.data(), bytes_.size()}; }
  const jsonrpc::Envelope& envelope() const { return envelope_; }

 private:
  simdjson::padded_string bytes_;
  jsonrpc::Envelope envelope_;
};

// One exchange and what the chain made of it.
struct Exchange {
  MessageContext ctx;
  Verdict request_verdict;
  std::string forwarded;  // what the server receives; empty when the chain stopped the request
  Verdict response_verdict;
  std::string returned;  // what the client receives when the response went through
};

// The real chain (BuildChain) over one bundle, driven the way src/proxy/governance.cc drives it.
class Session {
 public:
  explicit Session(std::string_view bundle_json, std::string tenant = "") {
    deps_.session_id = "s";
    deps_.sequence = &sequence;
    deps_.clock = &clock;
    deps_.rate_state = &rate_state;
    deps_.metrics = &metrics;
    deps_.report = [this](std::string report) { reports.push_back(std::move(report)); };
    deps_.tenant = std::move(tenant);
    Load(bundle_json);
  }

  // Parses `bundle_json` and rebuilds the chain over it with the same state.
  void Load(std::string_view bundle_json) {
    absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle = policy::ParseBundle(bundle_json);
    if (!bundle.ok()) {
      ADD_FAILURE() << bundle.status();
      bundle = policy::ParseBundle(R"({"bundleVersion":"unparsable"})");
    }
    absl::StatusOr<std::shared_ptr<ChainSnapshot>> built = BuildChain(*bundle, deps_);
    if (!built.ok()) {
      ADD_FAILURE() << built.status();
      return;
    }
    snapshot = *std::move(built);
  }

  std::unique_ptr<Exchange> Begin(std::string_view request) {
    auto ex = std::make_unique<Exchange>();
    Frame frame(request);
    MessageContext& ctx = ex->ctx;
    ctx.direction = Direction::kClientToServer;
    ctx.envelope = &frame.envelope();
    ctx.payload = frame.view();
    ctx.bundle = snapshot->bundle.get();
    ctx.claimed = &claimed;
    ctx.server_id = server_id;
    ctx.started = clock.Now();
    ex->request_verdict = snapshot->chain.OnRequest(ctx);
    if (ex->request_verdict.IsContinue()) {
      ex->forwarded = std::string(ctx.current());
    } else {
      snapshot->chain.OnComplete(ctx);
    }
    ctx.envelope = nullptr;
    ctx.payload = {};
    return ex;
  }

  void Respond(Exchange& ex, std::string_view response) {
    Frame frame(response);
    MessageContext& ctx = ex.ctx;
    ctx.direction = Direction::kServerToClient;
    ctx.envelope = &frame.envelope();
    ctx.payload = frame.view();
    ctx.rewritten.reset();
    ex.response_verdict = snapshot->chain.OnResponse(ctx);
    if (ex.response_verdict.IsContinue()) {
      ex.returned = std::string(ctx.current());
    }
    snapshot->chain.OnComplete(ctx);
    ctx.envelope = nullptr;
    ctx.payload = {};
  }

  // A request and, when the chain lets it through, the server's `response` after `latency`.
  std::unique_ptr<Exchange> Call(std::string_view request, std::string_view response,
                                 Duration latency = std::chrono::milliseconds(3)) {
    std::unique_ptr<Exchange> ex = Begin(request);
    if (ex->request_verdict.IsContinue()) {
      clock.Advance(latency);
      Respond(*ex, response);
    }
    return ex;
  }

  ManualClock clock;
  uint64_t sequence = 1;
  RateLimitState rate_state;
  telemetry::Metrics metrics;
  std::vector<std::string> reports;
  Principal claimed;
  std::string server_id = "fs";
  std::shared_ptr<ChainSnapshot> snapshot;

 private:
  ChainDeps deps_;
};

const Decision* FindDecision(const MessageContext& ctx, std::string_view stage) {
  for (const Decision& d : ctx.decisions) {
    if (d.stage == stage) {
      return &d;
    }
  }
  return nullptr;
}

constexpr std::string_view kDenyRm = R"({"bundleVersion":"v","policyRules":[
  {"ruleId":"no-rm","status":"deny","conditionDsl":"tool.name == \"rm\""}]})";
constexpr std::string_view kCallLs =
    R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ls"}})";
constexpr std::string_view kCallRm =
    R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm"}})";
constexpr std::string_view kResult = R"({"jsonrpc":"2.0","id":1,"result":{"content":[]}})";

TEST(DispatchStage, MarksAForwardedRequestDispatchedAndCountsItsBytes) {
  Session s(kDenyRm);
  std::unique_ptr<Exchange> ex = s.Begin(kCallLs);
  EXPECT_TRUE(ex->ctx.dispatched);
  EXPECT_EQ(ex->ctx.request_bytes, kCallLs.size());
  EXPECT_TRUE(ex->ctx.blocked_by.empty());
  const Decision* d = FindDecision(ex->ctx, "dispatch");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "dispatch:dispatched");
}

TEST(DispatchStage, MeasuresLatencyOnTheInjectedClock) {
  Session s(kDenyRm);
  s.clock.Advance(milliseconds(1000));
  auto ex = s.Call(kCallLs, kResult, milliseconds(42));
  EXPECT_EQ(ex->ctx.finished - ex->ctx.started, milliseconds(42));
  EXPECT_EQ(ex->ctx.response_bytes, kResult.size());
  EXPECT_FALSE(ex->ctx.upstream_error);
}

TEST(DispatchStage, NotesAnErrorAnswerFromTheServer) {
  Session s(kDenyRm);
  auto ex = s.Call(kCallLs, R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}})");
  EXPECT_TRUE(ex->ctx.dispatched);
  EXPECT_TRUE(ex->ctx.upstream_error);
}

TEST(DispatchStage, RecordsWhichStageBlockedARejectedRequest) {
  Session s(kDenyRm);
  s.clock.Advance(milliseconds(5));
  auto ex = s.Begin(kCallRm);
  ASSERT_EQ(ex->request_verdict.code, kCodePolicyDenied);
  EXPECT_FALSE(ex->ctx.dispatched);
  EXPECT_EQ(ex->ctx.request_bytes, 0u);
  EXPECT_EQ(ex->ctx.blocked_by, "policy");
  ASSERT_FALSE(ex->ctx.decisions.empty());
  const Decision& last = ex->ctx.decisions.back();
  EXPECT_EQ(last.stage, "dispatch");
  EXPECT_EQ(last.status, "deny");
  EXPECT_EQ(last.reason_code, "dispatch:blocked-by-policy");
  // Completed at once: no time passed.
  EXPECT_EQ(ex->ctx.finished, ex->ctx.started);
  EXPECT_EQ(ex->ctx.finished.time_since_epoch(), milliseconds(5));
}

TEST(DispatchStage, DoesNotBlameAnObservedDeny) {
  ManualClock clock;
  clock.Advance(milliseconds(7));
  DispatchStage stage(clock);
  MessageContext ctx;
  ctx.decisions.push_back(
      {.stage = "policy", .status = "deny", .reason_code = "policy-deny", .enforced = false});
  stage.OnComplete(ctx);
  EXPECT_TRUE(ctx.blocked_by.empty());
  EXPECT_EQ(ctx.decisions.back().reason_code, "dispatch:not-dispatched");
  EXPECT_EQ(ctx.finished.time_since_epoch(), milliseconds(7));
}

TEST(DispatchStage, BlamesTheLastEnforcedDeny) {
  ManualClock clock;
  DispatchStage stage(clock);
  MessageContext ctx;
  ctx.decisions.push_back({.stage = "auth", .status = "allow"});
  ctx.decisions.push_back({.stage = "rate_limit", .status = "deny"});
  ctx.decisions.push_back({.stage = "trace", .status = "deny", .enforced = false});
  stage.OnComplete(ctx);
  EXPECT_EQ(ctx.blocked_by, "rate_limit");
  EXPECT_EQ(ctx.decisions.back().reason_code, "dispatch:blocked-by-rate_limit");
}

TEST(DispatchStage, KeepsTheFinishTimeTheResponseSet) {
  ManualClock clock;
  DispatchStage stage(clock);
  Frame frame(kResult);
  MessageContext ctx{.direction = Direction::kServerToClient,
                     .envelope = &frame.envelope(),
                     .payload = frame.view()};
  ctx.dispatched = true;
  clock.Advance(milliseconds(10));
  stage.OnResponse(ctx);
  clock.Advance(milliseconds(10));
  stage.OnComplete(ctx);
  EXPECT_EQ(ctx.finished.time_since_epoch(), milliseconds(10));
  EXPECT_EQ(ctx.decisions.size(), 0u);
}

}  // namespace
}  // namespace mcpmw::middleware
