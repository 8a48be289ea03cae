#include "src/middleware/request_redaction.h"

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
#include "src/jsonrpc/errors.h"
#include "src/middleware/chain_factory.h"
#include "src/policy/bundle.h"
#include "src/telemetry/metrics.h"

namespace mcpmw::middleware {
namespace {

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

const Decision* FindDecision(const MessageContext& ctx, std::string_view stage) {
  for (const Decision& d : ctx.decisions) {
    if (d.stage == stage) {
      return &d;
    }
  }
  return nullptr;
}

std::string ToolCall(std::string_view arguments) {
  return std::string(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"send",)") +
         R"("arguments":)" + std::string(arguments) + R"(,"_meta":{"progressToken":"p"}}})";
}

constexpr std::string_view kOk = R"({"jsonrpc":"2.0","id":5,"result":{"content":[]}})";

constexpr std::string_view kBundle = R"({"bundleVersion":"v","redactionRules":[
  {"ruleId":"mail","direction":"request","detector":"email"},
  {"ruleId":"card","direction":"both","detector":"card_number"},
  {"ruleId":"pw","direction":"request","matchPath":"$.password"},
  {"ruleId":"ticket","direction":"response","pattern":"TICKET-[0-9]+"}]})";

TEST(RequestRedactionStage, RedactsAnEmailAndACardInToolArgumentsBeforeForwarding) {
  Session s(kBundle);
  auto ex = s.Call(ToolCall(R"({"to": "alice@example.com", "note": "card 4111 1111 1111 1111 ok",)"
                            R"( "password": "hunter2", "n": 1, "ref": "TICKET-42"})"),
                   kOk);
  ASSERT_TRUE(ex->request_verdict.IsContinue());
  EXPECT_EQ(ex->forwarded, ToolCall(R"({"to":"[EMAIL_REDACTED]","note":"card [CARD_REDACTED] ok",)"
                                    R"("password":"[REDACTED]","n":1,"ref":"TICKET-42"})"));
  EXPECT_EQ(ex->ctx.request_bytes, ex->forwarded.size());

  const std::vector<RedactionNote>& notes = ex->ctx.redactions;
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_EQ(notes[0].direction, Direction::kClientToServer);
  EXPECT_EQ(notes[0].rule_id, "mail");
  EXPECT_EQ(notes[0].pointer, "/to");
  EXPECT_EQ(notes[0].action, "redact");
  EXPECT_EQ(notes[1].rule_id, "card");
  EXPECT_EQ(notes[1].pointer, "/note");
  EXPECT_EQ(notes[1].action, "redact");
  EXPECT_EQ(notes[2].rule_id, "pw");
  EXPECT_EQ(notes[2].pointer, "/password");
  EXPECT_EQ(notes[2].action, "mask");
  for (const RedactionNote& n : notes) {
    for (const std::string& field : {n.rule_id, n.pointer, n.action}) {
      EXPECT_THAT(field, Not(HasSubstr("alice")));
      EXPECT_THAT(field, Not(HasSubstr("4111")));
      EXPECT_THAT(field, Not(HasSubstr("hunter2")));
    }
  }
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "transform");
  EXPECT_EQ(d->reason_code, "request-redaction:3");
}

TEST(RequestRedactionStage, ForwardsCleanArgumentsByteForByte) {
  Session s(kBundle);
  const std::string request = ToolCall(R"({ "q" : "nothing to see" })");
  auto ex = s.Call(request, kOk);
  EXPECT_EQ(ex->forwarded, request);
  EXPECT_TRUE(ex->ctx.redactions.empty());
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "request-redaction:0");
}

TEST(RequestRedactionStage, RedactsWhatAPolicyTransformAdded) {
  Session s(R"({"bundleVersion":"v","policyRules":[{"ruleId":"cc","status":"transform",
      "conditionDsl":"*","patches":[{"op":"set","path":"/cc","value":"bob@example.org"}]}],
      "redactionRules":[{"ruleId":"mail","direction":"request","detector":"email"}]})");
  auto ex = s.Call(ToolCall(R"({"to":"x"})"), kOk);
  EXPECT_EQ(ex->forwarded, ToolCall(R"({"to":"x","cc":"[EMAIL_REDACTED]"})"));
  ASSERT_EQ(ex->ctx.redactions.size(), 1u);
  EXPECT_EQ(ex->ctx.redactions[0].pointer, "/cc");
}

TEST(RequestRedactionStage, CannotBeBypassedWithASecondArgumentsMember) {
  Session s(kBundle);
  auto ex = s.Call(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"send",)"
                   R"("arguments":{"a":"x"},"arguments":{"to":"alice@example.com"}}})",
                   kOk);
  EXPECT_EQ(ex->request_verdict.code, jsonrpc::kInvalidParams);
  EXPECT_EQ(ex->forwarded, "");
  EXPECT_EQ(ex->ctx.blocked_by, "normalize");
}

TEST(RequestRedactionStage, LeavesMethodsOtherThanToolsCallAlone) {
  Session s(kBundle);
  const std::string request =
      R"({"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"p",)"
      R"("arguments":{"to":"alice@example.com"}}})";
  auto ex = s.Call(request, kOk);
  EXPECT_EQ(ex->forwarded, request);
  EXPECT_EQ(FindDecision(ex->ctx, "request_redaction"), nullptr);
}

TEST(RequestRedactionStage, RefusesArgumentsThatAreNotValidJson) {
  Session s(kBundle);
  auto ex = s.Call(ToolCall(R"({"to": "alice@example.com", "n": tru})"), kOk);
  const Verdict& v = ex->request_verdict;
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, -32014);
  EXPECT_EQ(v.message,
            "The tool arguments are not valid JSON, so they cannot be checked for secrets; the "
            "call was not sent.");
  EXPECT_EQ(v.data_json, R"({"stage":"request_redaction","reasonCode":"redaction-unreadable",)"
                         R"("decisionId":"s-1:request_redaction"})");
  EXPECT_EQ(ex->forwarded, "");
  EXPECT_FALSE(ex->ctx.dispatched);
  EXPECT_TRUE(ex->ctx.redactions.empty());
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "deny");
  EXPECT_EQ(d->reason_code, "redaction-unreadable");
}

TEST(RequestRedactionStage, RefusesArgumentsWithANumberItCannotHold) {
  Session s(kBundle);
  auto ex = s.Call(ToolCall(R"({"n": 123456789012345678901234567890})"), kOk);
  EXPECT_EQ(ex->request_verdict.code, kCodeRedactionFailed);
}

TEST(RequestRedactionStage, InObserveModeRecordsNotesButForwardsTheOriginal) {
  Session s(R"({"bundleVersion":"v","stages":{"request_redaction":{"mode":"observe"}},
      "redactionRules":[{"ruleId":"mail","direction":"request","detector":"email"}]})");
  const std::string request = ToolCall(R"({"to":"alice@example.com"})");
  auto ex = s.Call(request, kOk);
  EXPECT_EQ(ex->forwarded, request);
  ASSERT_EQ(ex->ctx.redactions.size(), 1u);
  EXPECT_EQ(ex->ctx.redactions[0].rule_id, "mail");
  const Decision* d = FindDecision(ex->ctx, "request_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "transform");
  EXPECT_FALSE(d->enforced);
}

}  // namespace
}  // namespace mcpmw::middleware
