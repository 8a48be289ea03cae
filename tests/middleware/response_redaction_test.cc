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
#include "tests/middleware/governed_session.h"

namespace mcpmw::middleware {
namespace {

using test_support::FindDecision;
using test_support::Session;

using ::testing::HasSubstr;
using ::testing::Not;

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

// The stage's decision for an answer it let through unchanged.
void ExpectAllowedWithNothingRedacted(const MessageContext& ctx) {
  const Decision* d = FindDecision(ctx, "response_redaction");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status, "allow");
  EXPECT_EQ(d->reason_code, "response-redaction:0");
}

TEST(ResponseRedactionStage, ReturnsACleanResultByteForByte) {
  Session s(kBundle);
  const std::string clean = Response(R"({ "content" : [ ] })");
  auto ex = s.Call(kCall, clean);
  EXPECT_EQ(ex->returned, clean);
  ExpectAllowedWithNothingRedacted(ex->ctx);
}

TEST(ResponseRedactionStage, WithholdsAResultThatIsNotValidJsonAndMayHoldASecret) {
  Session s(kBundle);
  auto ex = s.Call(kCall, Response(R"({"content": [], "to": "a@example.com", "n": tru})"));
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

TEST(ResponseRedactionStage, ForwardsAnAnswerWithNothingToRedactWithoutParsingIt) {
  Session s(kBundle);
  // Not JSON past `content`, so only a look at the bytes lets it through: nothing in them is
  // shaped like an e-mail or a card number.
  const std::string answer = Response(R"({"content": [], "n": tru})");
  auto ex = s.Call(kCall, answer);
  EXPECT_EQ(ex->response_verdict.kind, Verdict::Kind::kContinue);
  EXPECT_EQ(ex->returned, answer);
  ExpectAllowedWithNothingRedacted(ex->ctx);
}

TEST(ResponseRedactionStage, ParsesAnAnswerWithAnEscapeEvenWhenItsBytesLookClean) {
  Session s(kBundle);
  // \u0040 is '@': the raw bytes hold no e-mail, the decoded text does.
  auto ex = s.Call(
      kCall, Response(R"({"content":[{"type":"text","text":"write to bob\u0040example.com"}]})"));
  EXPECT_EQ(ex->returned,
            Response(R"({"content":[{"type":"text","text":"write to [EMAIL_REDACTED]"}]})"));
  ASSERT_EQ(ex->ctx.redactions.size(), 1u);
  EXPECT_EQ(ex->ctx.redactions[0].pointer, "/content/0/text");
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
