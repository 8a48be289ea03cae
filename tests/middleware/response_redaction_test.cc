#include "src/middleware/response_redaction.h"

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

constexpr std::string_view kBundle = R"({"bundleVersion":"v","redactionRules":[
  {"ruleId":"mail","direction":"response","detector":"email"},
  {"ruleId":"card","direction":"both","detector":"card_number"},
  {"ruleId":"req-only","direction":"request","pattern":"internal-[0-9]+"}]})";

constexpr std::string_view kCall =
    R"({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"lookup","arguments":{}}})";

std::string Response(std::string_view result) {
  return std::string(R"({"jsonrpc": "2.0", "id": 8, "result": )") + std::string(result) + "}";
}

TEST(ResponseRedactionStage, RedactsEmailAndCardInTextContentAndStructuredContent) {
  Session s(kBundle);
  auto ex = s.Call(kCall, Response(R"({"content": [{"type": "text", "text": "Mail )"
                                   R"(alice@example.com, card 5500-0000-0000-0004, internal-7"}],)"
                                   R"( "structuredContent": {"email": "bob@example.com",)"
                                   R"( "card": "4111111111111111", "n": 2}, "isError": false})"));
  ASSERT_TRUE(ex->response_verdict.IsContinue());
  EXPECT_EQ(ex->returned,
            Response(R"({"content":[{"type":"text","text":"Mail [EMAIL_REDACTED], card )"
                     R"([CARD_REDACTED], internal-7"}],"structuredContent":{"email":)"
                     R"("[EMAIL_REDACTED]","card":"[CARD_REDACTED]","n":2},"isError":false})"));
  const std::vector<RedactionNote>& notes = ex->ctx.redactions;
  // One note per detector per string: the text held both an e-mail and a card.
  ASSERT_EQ(notes.size(), 4u);
  EXPECT_EQ(notes[0].direction, Direction::kServerToClient);
  EXPECT_EQ(notes[0].pointer, "/content/0/text");
  EXPECT_EQ(notes[0].action, "redact");
  EXPECT_EQ(notes[1].pointer, "/content/0/text");
  EXPECT_EQ(notes[0].rule_id + "," + notes[1].rule_id, "mail,card");
  EXPECT_EQ(notes[2].rule_id, "mail");
  EXPECT_EQ(notes[2].pointer, "/structuredContent/email");
  EXPECT_EQ(notes[3].rule_id, "card");
  EXPECT_EQ(notes[3].pointer, "/structuredContent/card");
  for (const RedactionNote& n : notes) {
    EXPECT_THAT(n.pointer + n.rule_id + n.action, Not(HasSubstr("example.com")));
  }
  const Decision* d = FindDecision(ex->ctx, "response_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "transform");
  EXPECT_EQ(d->reason_code, "response-redaction:4");
}

TEST(ResponseRedactionStage, RedactsResourceContents) {
  Session s(kBundle);
  auto ex =
      s.Call(R"({"jsonrpc":"2.0","id":8,"method":"resources/read","params":{"uri":"file:///a"}})",
             Response(R"({"contents": [{"uri": "file:///a", "mimeType": "text/plain",)"
                      R"( "text": "owner: carol@example.net"}]})"));
  EXPECT_EQ(ex->returned, Response(R"({"contents":[{"uri":"file:///a","mimeType":"text/plain",)"
                                   R"("text":"owner: [EMAIL_REDACTED]"}]})"));
  ASSERT_EQ(ex->ctx.redactions.size(), 1u);
  EXPECT_EQ(ex->ctx.redactions[0].pointer, "/contents/0/text");
}

TEST(ResponseRedactionStage, LeavesAnswersToOtherMethodsUntouched) {
  Session s(kBundle);
  const std::string list =
      Response(R"({"tools": [{"name": "t", "description": "mail dave@example.com"}]})");
  auto ex = s.Call(R"({"jsonrpc":"2.0","id":8,"method":"tools/list"})", list);
  EXPECT_EQ(ex->returned, list);
  EXPECT_TRUE(ex->ctx.redactions.empty());
  EXPECT_EQ(FindDecision(ex->ctx, "response_redaction"), nullptr);
}

TEST(ResponseRedactionStage, LeavesAnErrorAnswerUntouched) {
  Session s(kBundle);
  const std::string error =
      R"({"jsonrpc":"2.0","id":8,"error":{"code":-1,"message":"no such user eve@example.com"}})";
  auto ex = s.Call(kCall, error);
  EXPECT_EQ(ex->returned, error);
  EXPECT_TRUE(ex->ctx.upstream_error);
}

TEST(ResponseRedactionStage, ReturnsACleanResultByteForByte) {
  Session s(kBundle);
  const std::string clean = Response(R"({ "content" : [ ] })");
  auto ex = s.Call(kCall, clean);
  EXPECT_EQ(ex->returned, clean);
  const Decision* d = FindDecision(ex->ctx, "response_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "response-redaction:0");
}

TEST(ResponseRedactionStage, WithholdsAResultThatIsNotValidJson) {
  Session s(kBundle);
  auto ex = s.Call(kCall, Response(R"({"content": [], "n": tru})"));
  const Verdict& v = ex->response_verdict;
  EXPECT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.code, -32014);
  EXPECT_EQ(v.message,
            "The server's answer is not valid JSON, so it cannot be checked for secrets; it was "
            "withheld.");
  EXPECT_EQ(v.data_json, R"({"stage":"response_redaction","reasonCode":"redaction-unreadable",)"
                         R"("decisionId":"s-1:response_redaction"})");
  EXPECT_EQ(ex->returned, "");
  EXPECT_EQ(ex->ctx.outcome.code, kCodeRedactionFailed);
}

TEST(ResponseRedactionStage, DoesNotRunWithoutResponseRules) {
  Session s(R"({"bundleVersion":"v","redactionRules":[
      {"ruleId":"mail","direction":"request","detector":"email"}]})");
  const std::string answer = Response(R"({"content":[{"type":"text","text":"a@example.com"}]})");
  auto ex = s.Call(kCall, answer);
  EXPECT_EQ(ex->returned, answer);
  EXPECT_EQ(FindDecision(ex->ctx, "response_redaction"), nullptr);
}

}  // namespace
}  // namespace mcpmw::middleware
