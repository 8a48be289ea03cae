#include "src/middleware/trace.h"

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
using ::testing::HasSubstr;
using ::testing::Not;

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

constexpr std::string_view kDenyRm = R"({"bundleVersion":"v","policyRules":[
  {"ruleId":"no-rm","status":"deny","conditionDsl":"tool.name == \"rm\""}]})";

std::string Call(std::string_view tool) {
  return std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":")") +
         std::string(tool) + R"("}})";
}
constexpr std::string_view kResult = R"({"jsonrpc":"2.0","id":1,"result":{}})";
constexpr std::string_view kError = R"({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}})";

TEST(TraceStage, CountsExchangesByMethodAndOutcome) {
  Session s(kDenyRm);
  s.Call(Call("ls"), kResult, milliseconds(3));
  s.Call(Call("ls"), kResult, milliseconds(3));
  s.Call(Call("rm"), kResult);
  s.Call(Call("ls"), kError, milliseconds(40));
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"served\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"blocked\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"errored\"} 1\n"));
}

TEST(TraceStage, ObservesTheLatencyOfEachAnsweredExchange) {
  Session s(kDenyRm);
  s.Call(Call("ls"), kResult, milliseconds(3));
  s.Call(Call("ls"), kError, milliseconds(40));
  s.Call(Call("rm"), kResult);  // blocked at once: no latency to observe
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("mcpmw_request_latency_us_count{method=\"tools/call\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_request_latency_us_sum{method=\"tools/call\"} 43000\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_request_latency_us_bucket{method=\"tools/call\",le=\"5000\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_request_latency_us_bucket{method=\"tools/call\",le=\"50000\"} 2\n"));
}

TEST(TraceStage, CountsDecisionsByStageStatusAndEnforcement) {
  Session s(kDenyRm);
  s.Call(Call("rm"), kResult);
  s.Call(Call("ls"), kResult);
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("mcpmw_decisions_total{enforced=\"true\",stage=\"policy\","
                              "status=\"deny\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_decisions_total{enforced=\"true\",stage=\"policy\","
                              "status=\"allow\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_decisions_total{enforced=\"true\",stage=\"dispatch\","
                              "status=\"deny\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mcpmw_decisions_total{enforced=\"true\",stage=\"dispatch\","
                              "status=\"allow\"} 1\n"));
}

TEST(TraceStage, CountsObservedDecisionsAsNotEnforced) {
  Session s(R"({"bundleVersion":"v","mode":"observe","policyRules":[
    {"ruleId":"no-rm","status":"deny","conditionDsl":"args.force == true"}]})");
  s.Call(
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm","arguments":{"force":true}}})",
      kResult);
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("mcpmw_decisions_total{enforced=\"false\",stage=\"policy\","
                              "status=\"deny\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"tools/call\",outcome=\"served\"} 1\n"));
}

TEST(TraceStage, LabelsAnUnknownMethodOther) {
  Session s(R"({"bundleVersion":"v"})");
  s.Call(R"({"jsonrpc":"2.0","id":1,"method":"x/made-up-1"})", kResult);
  s.Call(R"({"jsonrpc":"2.0","id":2,"method":"x/made-up-2"})", kResult);
  s.Call(R"({"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"a"}})", kResult);
  std::string text = s.metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("mcpmw_requests_total{method=\"other\",outcome=\"served\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("mcpmw_requests_total{method=\"resources/read\",outcome=\"served\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("made-up")));
}

TEST(TraceStage, DoesNothingWithoutARegistry) {
  TraceStage stage(nullptr);
  MessageContext ctx;
  ctx.method = "tools/call";
  ctx.decisions.push_back({.stage = "policy", .status = "deny"});
  stage.OnComplete(ctx);
  EXPECT_EQ(ctx.decisions.size(), 1u);
}

TEST(ExchangeOutcome, TellsServedBlockedAndErroredApart) {
  MessageContext ctx;
  ctx.dispatched = true;
  EXPECT_EQ(ExchangeOutcome(ctx), "served");
  ctx.upstream_error = true;
  EXPECT_EQ(ExchangeOutcome(ctx), "errored");
  ctx.upstream_error = false;
  ctx.outcome = Verdict::Reject(kCodeRedactionFailed, "withheld");
  EXPECT_EQ(ExchangeOutcome(ctx), "errored");  // dispatched, answer withheld
  ctx.dispatched = false;
  EXPECT_EQ(ExchangeOutcome(ctx), "blocked");
}

}  // namespace
}  // namespace mcpmw::middleware
