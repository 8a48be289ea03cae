// Test support for the stage tests: a frame held the way the session holds one, and the real
// chain (BuildChain) over one bundle, driven exactly as src/proxy/governance.cc drives it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
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

namespace mcpmw::middleware::test_support {

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
// Whether the session keeps its reports. The report stage moves the exchange's strings and rows
// into the report it hands over, so a test that reads an exchange's context afterwards runs
// without a sink (kNone), as a test of reports does with one.
enum class Reports { kNone, kCollect };

class Session {
 public:
  explicit Session(std::string_view bundle_json, std::string tenant = "",
                   Reports keep = Reports::kNone) {
    deps_.session_id = "s";
    deps_.sequence = &sequence;
    deps_.clock = &clock;
    deps_.rate_state = &rate_state;
    deps_.metrics = &metrics;
    if (keep == Reports::kCollect) {
      deps_.report = [this](const ReportDraft& draft) { reports.push_back(draft.Json()); };
    }
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
    ctx.request_document.reset();
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

// The first decision row `stage` recorded, or null.
inline const Decision* FindDecision(const MessageContext& ctx, std::string_view stage) {
  for (const Decision& d : ctx.decisions) {
    if (d.stage == stage) {
      return &d;
    }
  }
  return nullptr;
}

// A decision row the stage enforced, with this stage, status and reason code.
MATCHER_P3(EnforcedDecision, stage, status, reason_code, "") {
  return arg.stage == stage && arg.status == status && arg.reason_code == reason_code &&
         arg.enforced;
}

// The index of stage `name` in the session's chain.
inline size_t StageIndex(const Chain& chain, std::string_view name) {
  for (size_t i = 0; i < chain.size(); ++i) {
    if (chain.stage_name(i) == name) {
      return i;
    }
  }
  ADD_FAILURE() << "no stage " << name;
  return 0;
}

}  // namespace mcpmw::middleware::test_support

namespace mcpmw::middleware {

// How a decision row reads in a failure message: {stage, status, reason code, enforced|observed}.
inline void PrintTo(const Decision& d, std::ostream* os) {
  *os << "{" << d.stage << ", " << d.status << ", " << d.reason_code
      << (d.enforced ? ", enforced" : ", observed") << (d.routine ? ", routine" : "") << "}";
}

}  // namespace mcpmw::middleware
